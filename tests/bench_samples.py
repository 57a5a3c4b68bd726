"""Schema-valid `edgepose bench` run documents with plausible, seeded numbers, for tests of anything that
reads them (the results DB, compare, export, charts). No timing or hardware is involved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from edgepose.bench.schema import SCHEMA, STAGES

DEFAULT_MODELS = ("movenet-lightning-int8", "blazepose-full")
# Rough single-thread invoke milliseconds on a Raspberry Pi 5; other devices scale from these.
_BASE_INVOKE_MS = {"movenet": 18.0, "blazepose": 45.0, "posenet": 60.0, "rtmpose": 80.0}
# The pose model's input, batch 1 (NHWC for TFLite, NCHW for RTMPose's ONNX).
_INPUT_SHAPE = {
    "movenet": [1, 192, 192, 3],
    "blazepose": [1, 256, 256, 3],
    "posenet": [1, 257, 257, 3],
    "rtmpose": [1, 3, 256, 192],
}
_INPUT_PATH = {"video": "/home/pi/clips/walk.mp4", "image": "/home/pi/clips/person.jpg"}
_BOARDS = {
    "pi5": ("Raspberry Pi 5 Model B Rev 1.0", "Cortex-A76", "aarch64", 4, 1.0),
    "pi4": ("Raspberry Pi 4 Model B Rev 1.4", "Cortex-A72", "aarch64", 4, 2.6),
    "laptop": (None, "Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", "x86_64", 8, 0.35),
}


def sample_run(
    label: str = "pi5",
    device_id: str | None = None,
    models: Sequence[str] = DEFAULT_MODELS,
    threads: Sequence[int] = (1, 2, 4),
    seed: int = 0,
    created_utc: str = "2026-01-15T10:00:00Z",
    run_id: str | None = None,
    throttled: bool = False,
    mode: str = "single",
    input_kind: str = "generated",
    size: tuple[int, int] = (640, 480),
    stills: bool = False,
) -> dict:
    """One run: a result per (model, threads). Same arguments, same document; run_id defaults to a hash
    of label, seed, created_utc and the input, device_id to a hash of the label (one device per label).

    input_kind and size (width, height) describe the input; stills: each frame timed as a still photo.
    A blazepose model carries its person detector (timed as part of the pipeline), other models none.
    """
    rng = np.random.default_rng(seed)
    board, cpu, machine, cores, slowness = _BOARDS.get(label, _BOARDS["pi5"])
    device_id = device_id or hashlib.sha256(f"device:{label}".encode()).hexdigest()[:16]
    run_id = run_id or hashlib.md5(f"{label}:{seed}:{created_utc}:{input_kind}:{size}:{stills}".encode()).hexdigest()
    device = {
        "device_id": device_id,
        "hostname": label,
        "os": "Linux",
        "kernel": "6.6.51+rpt-rpi-2712",
        "machine": machine,
        "cpu": cpu,
        "cores": cores,
        "ram_mb": 8064.0,
        "board": board,
        "coral": {"usb": 0, "pcie": 0},
        "python": "3.11.2",
        "numpy": np.__version__,
        "backends": {"ai-edge-litert": "1.2.0"},
        "thermal_zones": ["cpu-thermal"],
    }
    results = [_result(rng, model, n_threads, slowness, throttled, mode) for model in models for n_threads in threads]
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "created_utc": created_utc,
        "edgepose_version": "0.1.0",
        "label": label,
        "device": device,
        "input": {
            "kind": input_kind,
            "path": _INPUT_PATH.get(input_kind),
            "width": size[0],
            "height": size[1],
            "frames": 300 if input_kind == "video" else 1,
        },
        "settings": {"runs": 50, "warmup": 5, "duration_s": None, "mode": mode, "stills": stills},
        "results": results,
    }


def _result(rng: np.random.Generator, model: str, threads: int, slowness: float, throttled: bool, mode: str) -> dict:
    family = model.split("-")[0]
    precision = next((p for p in ("int8", "fp16", "fp32") if p in model), "fp32")
    edgetpu = model.endswith("-edgetpu")
    invoke = _BASE_INVOKE_MS.get(family, 30.0) * slowness / threads**0.7 * rng.uniform(0.9, 1.1)
    invoke = invoke * 0.25 if edgetpu else invoke
    stages = {
        "decode": rng.uniform(0.5, 1.5) * slowness,
        "preprocess": rng.uniform(0.8, 2.0) * slowness,
        "inference": invoke * rng.uniform(1.0, 1.05),
        "postprocess": rng.uniform(0.05, 0.3) * slowness,
        "tracking": rng.uniform(0.01, 0.1) if mode == "multi" else 0.0,
    }
    frames = 50
    pipeline = sum(stages.values()) + rng.uniform(0.1, 0.5)
    pipeline_stats = _stats(rng, pipeline, frames)
    before_c, after_c = float(rng.uniform(45, 55)), float(rng.uniform(60, 82))
    detector = None
    if family == "blazepose":
        detector = {
            "model": "blazepose-detector",
            "sha256": hashlib.sha256(b"blazepose-detector").hexdigest(),
            "size_bytes": 7_600_000,
        }
    return {
        "model": model,
        "model_path": f"/home/pi/.cache/edgepose/models/{model}.tflite",
        "model_sha256": hashlib.sha256(model.encode()).hexdigest(),
        "model_size_bytes": int(rng.integers(2_000_000, 30_000_000)),
        "family": family,
        "precision": precision,
        "backend": "litert",
        "delegate": "edgetpu" if edgetpu else None,
        "detector": detector,
        "threads": threads,
        "mode": mode,
        "frames": frames,
        "invoke_ms": _stats(rng, invoke, frames),
        "invoke_input_shapes": [_INPUT_SHAPE.get(family, [1, 224, 224, 3])],
        "pipeline_ms": pipeline_stats,
        "stages_ms": {s: _stats(rng, max(ms, 0.001), frames) for s, ms in stages.items() if s in STAGES},
        "fps": 1000.0 / pipeline_stats["mean"],
        "cpu_util": float(min(threads, 4) * rng.uniform(0.7, 0.98)),
        "peak_rss_mb": float(rng.uniform(90, 250)),
        "model_rss_mb": float(rng.uniform(5, 60)),
        "poses_per_frame": 1.0,
        "thermal": {
            "before_c": before_c,
            "after_c": after_c,
            "max_c": max(before_c, after_c) + float(rng.uniform(0, 3)),
            "throttled_before": "0x0",
            "throttled_after": "0x20002" if throttled else "0x0",
            "throttled": throttled,
        },
        "warnings": [],
    }


def _stats(rng: np.random.Generator, p50: float, n: int) -> dict:
    """Latency statistics around a median, ordered as real ones are (min <= p50 <= p90 <= p99 <= max)."""
    spread = rng.uniform(0.03, 0.12)
    return {
        "n": n,
        "mean": float(p50 * (1 + spread / 3)),
        "std": float(p50 * spread),
        "min": float(p50 * (1 - spread)),
        "p50": float(p50),
        "p90": float(p50 * (1 + spread)),
        "p99": float(p50 * (1 + 2.5 * spread)),
        "max": float(p50 * (1 + 4 * spread)),
    }
