"""The JSON document `edgepose bench` writes (--json), stores (--db) and imports: one run, many results.

One run = one `edgepose bench` invocation on one device: its fingerprint, the input, the settings,
and one result per (model, backend, threads). Latency statistics are milliseconds per frame.
Bump SCHEMA when a field changes meaning; readers refuse documents of another schema.
"""

from __future__ import annotations

SCHEMA = "edgepose-bench/1"
STAGES = ("decode", "preprocess", "inference", "postprocess", "tracking")
STAT_KEYS = ("n", "mean", "std", "min", "p50", "p90", "p99", "max")

_number = {"type": "number"}
_nullable_number = {"type": ["number", "null"]}
_nullable_string = {"type": ["string", "null"]}

LATENCY_SCHEMA = {
    "type": "object",
    "required": list(STAT_KEYS),
    "additionalProperties": False,
    "properties": {"n": {"type": "integer", "minimum": 1}, **{k: _number for k in STAT_KEYS[1:]}},
}

DEVICE_SCHEMA = {
    "type": "object",
    "required": [
        "device_id",
        "hostname",
        "os",
        "kernel",
        "machine",
        "cpu",
        "cores",
        "ram_mb",
        "board",
        "coral",
        "python",
        "numpy",
        "backends",
        "thermal_zones",
    ],
    "properties": {
        "device_id": {"type": "string"},  # stable across runs on one board: hash of the hardware fields
        "hostname": {"type": "string"},
        "os": {"type": "string"},
        "kernel": {"type": "string"},
        "machine": {"type": "string"},
        "cpu": {"type": "string"},
        "cores": {"type": "integer"},
        "ram_mb": _nullable_number,
        "board": _nullable_string,  # /proc/device-tree/model, e.g. "Raspberry Pi 5 Model B Rev 1.0"
        "coral": {"type": "object"},  # {"usb": int, "pcie": int}: Edge TPUs seen on the buses
        "python": {"type": "string"},
        "numpy": {"type": "string"},
        "backends": {"type": "object"},  # package -> version, for the runtimes that are installed
        "thermal_zones": {"type": "array"},
    },
}

THERMAL_SCHEMA = {
    "type": "object",
    "required": ["before_c", "after_c", "max_c", "throttled_before", "throttled_after", "throttled"],
    "properties": {
        "before_c": _nullable_number,  # hottest thermal zone, degrees C, before the timing
        "after_c": _nullable_number,
        "max_c": _nullable_number,  # hottest reading of the run (taken after every timed block)
        "throttled_before": _nullable_string,  # `vcgencmd get_throttled`, e.g. "0x50005"
        "throttled_after": _nullable_string,
        # Under-voltage, frequency capping or throttling seen in any reading during the run.
        "throttled": {"type": "boolean"},
    },
}

RESULT_SCHEMA = {
    "type": "object",
    "required": [
        "model",
        "model_path",
        "model_sha256",
        "model_size_bytes",
        "family",
        "precision",
        "backend",
        "delegate",
        "detector",
        "threads",
        "mode",
        "frames",
        "invoke_ms",
        "invoke_input_shapes",
        "pipeline_ms",
        "stages_ms",
        "fps",
        "cpu_util",
        "peak_rss_mb",
        "model_rss_mb",
        "poses_per_frame",
        "thermal",
        "warnings",
    ],
    "properties": {
        "model": {"type": "string"},  # registry name, or the file name of a model given by path
        "model_path": {"type": "string"},
        "model_sha256": {"type": "string"},
        "model_size_bytes": {"type": "integer"},
        "family": {"type": "string"},  # movenet, blazepose, posenet, rtmpose, ...
        "precision": {"type": "string"},  # int8, fp16, fp32, ...
        "backend": {"type": "string"},  # litert, tflite-runtime, onnxruntime, edgetpu
        "delegate": _nullable_string,  # "edgetpu" when the Edge TPU delegate ran the model
        # Top-down pipelines: the person detector timed as part of every frame that runs it.
        "detector": {
            "type": ["object", "null"],
            "required": ["model", "sha256", "size_bytes"],
            "properties": {
                "model": {"type": "string"},
                "sha256": {"type": "string"},
                "size_bytes": {"type": "integer"},
            },
        },
        "threads": {"type": "integer"},
        "mode": {"enum": ["single", "multi"]},
        "frames": {"type": "integer"},  # timed pipeline frames
        # The pose model's backend invoke alone, on one person's real preprocessed input (batch 1).
        "invoke_ms": LATENCY_SCHEMA,
        "invoke_input_shapes": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        "pipeline_ms": LATENCY_SCHEMA,  # one whole frame: decode -> ... -> Pose objects
        "stages_ms": {
            "type": "object",
            "required": list(STAGES),
            "additionalProperties": False,
            "properties": {s: LATENCY_SCHEMA for s in STAGES},
        },
        "fps": _number,  # 1000 / mean pipeline ms
        # A frame's capture (a video's decoded frame, a still's arrival) to its poses. A video is decoded on
        # a reader thread while the pipeline runs, as `edgepose run` does, so throughput_fps (1000 / the mean
        # time from one frame's poses to the next's) can exceed fps; a video file is read ahead, so its
        # frames also wait in the queue. Absent from runs stored before they were measured.
        "latency_ms": LATENCY_SCHEMA,
        "throughput_fps": _number,
        # `--exercise`: the exercise whose reps were counted on every frame's first pose, and the fitness
        # layer's time per frame (its rep counter), also inside pipeline_ms and latency_ms. Not one of the
        # STAGES (the DB's columns): null without an exercise, absent from runs stored before it existed.
        "exercise": _nullable_string,
        "fitness_ms": {"anyOf": [LATENCY_SCHEMA, {"type": "null"}]},
        # A .tflite model's operators (edgepose.assets.op_map): for an Edge TPU build, the TPU's custom ops
        # and what stays on the CPU. Null for ONNX; absent from runs stored before it was recorded.
        "operators": {
            "anyOf": [
                {
                    "type": "object",
                    "required": ["operators", "edgetpu_custom_ops", "cpu_operators", "cpu_operator_types"],
                    "properties": {
                        "operators": {"type": "integer", "minimum": 0},
                        "edgetpu_custom_ops": {"type": "integer", "minimum": 0},
                        "edgetpu_code_bytes": {"type": "integer", "minimum": 0},
                        "cpu_operators": {"type": "integer", "minimum": 0},
                        "cpu_operator_types": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "cpu_model": _nullable_string,
                        "cpu_model_operators": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                        "mapped_to_tpu": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    },
                },
                {"type": "null"},
            ]
        },
        "cpu_util": _number,  # process CPU time / wall time over the timed frames; 2.0 = two cores busy
        # All configurations of a run are loaded together (timed interleaved): peak_rss_mb is the process's
        # high-water mark for the whole run, the same in every result; model_rss_mb is this configuration's
        # own resident-set growth from loading and warming up (runtimes are imported before, not charged).
        "peak_rss_mb": _number,
        "model_rss_mb": _number,
        "poses_per_frame": _number,
        "thermal": THERMAL_SCHEMA,
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

RUN_SCHEMA = {
    "type": "object",
    "required": [
        "schema",
        "run_id",
        "created_utc",
        "edgepose_version",
        "label",
        "device",
        "input",
        "settings",
        "results",
    ],
    "properties": {
        "schema": {"const": SCHEMA},
        "run_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},  # uuid4 hex: merging DBs keys on it
        "created_utc": {"type": "string"},  # ISO 8601, e.g. "2026-11-26T02:30:00Z"
        "edgepose_version": {"type": "string"},
        "label": {"type": "string"},  # --label, default the hostname
        "device": DEVICE_SCHEMA,
        "input": {
            "type": "object",
            "required": ["kind", "path", "width", "height", "frames"],
            "properties": {
                "kind": {"enum": ["image", "video", "generated"]},
                "path": _nullable_string,
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "frames": {"type": "integer"},  # distinct frames cycled through
            },
        },
        "settings": {
            "type": "object",
            "required": ["runs", "warmup", "duration_s", "mode", "stills"],
            "properties": {
                "runs": {"type": ["integer", "null"]},
                "warmup": {"type": "integer"},
                "duration_s": _nullable_number,
                "mode": {"enum": ["single", "multi"]},
                "stills": {"type": "boolean"},  # each frame as a still photo (no tracking) instead of a stream
                "exercise": _nullable_string,  # --exercise (absent from runs stored before it existed)
            },
        },
        "results": {"type": "array", "items": RESULT_SCHEMA},
    },
}
