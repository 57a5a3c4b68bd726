"""`edgepose bench`: latency of the whole pipeline and of the raw invoke, per model, backend and threads.

Every configuration is loaded first, then timed in interleaved rounds (config A, B, C, A, B, C, ...),
so a change of load on a shared machine, or a board warming up, hits all configurations alike and the
ratios between them (a thread sweep, int8 vs fp16) stay honest. Each round times, per configuration,
a block of raw backend invokes on a real preprocessed input captured from the pipeline, then a block of
whole frames: decode -> preprocess -> inference -> postprocess -> tracking, and with an exercise the fitness
layer's rep counter, which a fitness device runs on every frame too.
"""

from __future__ import annotations

import io
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from edgepose.assets.metadata import load_metadata
from edgepose.assets.registry import REGISTRY, resolve_model, sha256_of
from edgepose.bench.device_info import ThermalState, fingerprint, package_version, thermal_record, thermal_state
from edgepose.bench.measure import peak_rss_mb, rss_mb, summarize
from edgepose.bench.schema import SCHEMA, STAGES
from edgepose.errors import BackendError, EdgeposeError
from edgepose.estimator import MODES, PoseEstimator, PoseEstimatorOptions
from edgepose.image import is_image_file, load_image
from edgepose.io.frame_reader import FrameReader
from edgepose.io.video import VideoSource, is_video_file
from edgepose.pipelines.build import model_family

if TYPE_CHECKING:
    from edgepose.fitness import Exercise, PoseRepCounter

GENERATED_SIZE = (640, 480)
_FORMAT_PRECISION = {
    "tflite-int8": "int8",
    "tflite-fp16": "fp16",
    "tflite-fp32": "fp32",
    "onnx": "fp32",
    "onnx-int8": "int8",
}


@dataclass
class BenchOptions:
    """What to time. Each of models x backends x threads is one configuration, one result.

    runs: timed frames per configuration (and as many raw invokes). duration_s: or time whole frames
    of each configuration this long (the raw invokes then take about as long again); with both,
    whichever ends first. stills: time each frame as a still
    photo (no tracking, MoveNet's two-pass refine) instead of as a stream with the carried crop.
    exercise: also count this exercise's reps on every frame's first pose, timed as its own "fitness" time
    and inside the whole frame's; extra_exercises: user exercises (`edgepose.fitness.load_exercises`)
    added to the catalogue the name is looked up in.
    """

    models: list[str]
    backends: list[str] = field(default_factory=lambda: ["auto"])
    threads: list[int | None] = field(default_factory=lambda: [None])
    runs: int | None = 100
    warmup: int = 10
    duration_s: float | None = None
    mode: str = "single"
    input: Path | None = None
    stills: bool = False
    label: str | None = None
    rounds: int = 5
    exercise: str | None = None
    extra_exercises: dict[str, Exercise] | None = None


@dataclass
class BenchFailure:
    config: str
    message: str


@dataclass
class BenchRun:
    document: dict  # bench.schema.RUN_SCHEMA
    failures: list[BenchFailure]
    notes: list[str]


# Frames ---------------------------------------------------------------------------------------------
class _StillFrames:
    """One encoded image, decoded again for every frame (the decode a camera JPEG would cost)."""

    def __init__(self, data: bytes, name: str):
        self.data, self.name = data, name
        self.fps = 30.0

    def next(self) -> tuple[float | None, np.ndarray, float]:
        """(decode ms, frame, when it arrived): a still's latency starts before its decode."""
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(self.data)) as im:
            rgb = load_image(im)
        return (time.perf_counter() - t0) * 1000, rgb, t0

    def start(self) -> None:
        pass

    def close(self) -> None:
        pass


class _VideoFrames:
    """A video decoded on a reader thread, as `edgepose run` reads it (the next frame is decoded while the
    pipeline works on this one); at its end it starts again within the same stream, like a cut in a
    camera feed: the pipeline keeps its tracks and finds the person again by its own fallback."""

    def __init__(self, path: Path):
        self.path = path
        self.wraps = 0
        self._open()

    def _open(self) -> None:
        source = VideoSource.open_file(self.path)
        self.fps = source.fps
        self._reader = FrameReader(source)
        self._it = iter(self._reader)
        self._first = None

    def start(self) -> None:
        """Start the reader thread and take its first frame: its thread and frame buffers are then
        counted before a configuration's model memory is measured, not in it."""
        if self._first is None:
            self._first = next(self._it)

    def next(self) -> tuple[float | None, np.ndarray, float]:
        """(decode ms, frame, when it was decoded); None instead of a time for the first frame after a
        replay, which pays the decoder's start-up: that frame still goes through the pipeline (tracking
        sees the cut) untimed."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame.decode_ms, frame.rgb, frame.captured
        try:
            frame = next(self._it)
        except StopIteration:
            self.wraps += 1
            self._open()
            frame = next(self._it)
            return None, frame.rgb, frame.captured
        return frame.decode_ms, frame.rgb, frame.captured

    def close(self) -> None:
        self._reader.close()


def generated_frame() -> bytes:
    """A fixed, person-free 640x480 JPEG: only for timing when the user gives no --input."""
    w, h = GENERATED_SIZE
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=-1)
    rgb = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _describe_input(path: Path | None) -> tuple[dict, Callable[[], object]]:
    """The input record of the result and a factory of independent frame sources (one per config)."""
    if path is None:
        data = generated_frame()
        w, h = GENERATED_SIZE
        return {"kind": "generated", "path": None, "width": w, "height": h, "frames": 1}, (
            lambda: _StillFrames(data, "generated")
        )
    if path.is_dir():
        raise EdgeposeError(f"{path}: --input is a directory; give one photo or video file")
    if not path.is_file():
        raise EdgeposeError(f"{path}: no such file")
    if is_video_file(path):
        # Count without keeping the frames: a long 1080p clip would not fit in a Pi's memory.
        count, w, h = 0, 0, 0
        for _, _, rgb in VideoSource.open_file(path).frames():
            if count == 0:
                h, w = rgb.shape[:2]
            count += 1
        return {"kind": "video", "path": str(path), "width": w, "height": h, "frames": count}, (
            lambda: _VideoFrames(path)
        )
    if not is_image_file(path):
        raise EdgeposeError(f"{path}: --input must be an image or a video file")
    rgb = load_image(path)  # refuses corrupt, truncated, absurd or non-image files with one line
    data = path.read_bytes()
    h, w = rgb.shape[:2]
    return {"kind": "image", "path": str(path), "width": w, "height": h, "frames": 1}, (
        lambda: _StillFrames(data, path.name)
    )


# Configurations ---------------------------------------------------------------------------------
@dataclass
class _Config:
    model: str
    backend: str
    threads: int | None
    est: PoseEstimator
    frames: object
    stills: bool
    counter: PoseRepCounter | None = None  # the exercise's, fed every frame (warm-up and replays included)
    invoke_inputs: list[np.ndarray] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    poses: int = 0
    stream_ms: float = 0.0
    model_rss_mb: float = 0.0
    block_start: float = 0.0  # time.perf_counter() when the current timed block began
    last_done: float | None = None  # when the previous timed frame of this block got its poses
    thermal_before: ThermalState | None = None
    thermal_readings: list[ThermalState] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model} [{self.backend}, {self.threads or 'default'} threads]"

    def frame(self) -> bool:
        """One whole frame, its stage times appended to the samples; False when it was not timed."""
        decode_ms, rgb, captured = self.frames.next()
        t0 = time.perf_counter()
        if self.stills:
            result = self.est.estimate_frame(rgb)
        else:
            self.stream_ms += 1000.0 / self.frames.fps
            result = self.est.estimate_video_frame(rgb, self.stream_ms)
        done = time.perf_counter()
        fitness_ms = None
        if self.counter is not None:
            # Part of the frame: a fitness app's answer is the rep count, not the poses.
            self.counter.update(result.poses[0] if result.poses else None, self.stream_ms / 1000)
            counted = time.perf_counter()
            fitness_ms, done = (counted - done) * 1000, counted
        if decode_ms is None:
            self.last_done = None  # a replay's start-up is not part of the stream's pace
            return False
        # The stream's pace: from one frame's poses to the next's, decoding overlapped.
        if self.last_done is not None:
            self.samples["interval"].append((done - self.last_done) * 1000)
        self.last_done = done
        total = decode_ms + (done - t0) * 1000
        # A frame decoded before its block started waited through the pause between blocks (other
        # configurations, the invoke timing), which a real stream does not have: its latency starts
        # with the block.
        self.samples["latency"].append((done - max(captured, self.block_start)) * 1000)
        t = result.timings
        for stage, ms in zip(STAGES, (decode_ms, t.preprocess, t.inference, t.postprocess, t.tracking)):
            self.samples[stage].append(ms)
        if fitness_ms is not None:
            self.samples["fitness"].append(fitness_ms)
        self.samples["pipeline"].append(total)
        self.poses += len(result.poses)
        return True

    def invoke(self) -> None:
        t0 = time.perf_counter()
        self.est.backend.run(self.invoke_inputs)
        self.samples["invoke"].append((time.perf_counter() - t0) * 1000)


def _open_config(
    model: str, backend: str, threads: int | None, opts: BenchOptions, make_frames, exercise: Exercise | None
) -> _Config:
    frames = make_frames()  # the decoder's buffers are the input's cost, not the model's
    try:
        frames.start()
    except BaseException:
        frames.close()
        raise
    rss0 = rss_mb()
    try:
        est = PoseEstimator.create_from_options(
            PoseEstimatorOptions(model=model, mode=opts.mode, backend=backend, threads=threads)
        )
    except BaseException:
        frames.close()
        raise
    cfg = _Config(model, backend, threads, est, frames, opts.stills)
    if exercise is not None:
        from edgepose.fitness import PoseRepCounter

        cfg.counter = PoseRepCounter(exercise)  # before the warm-up, which then warms it up too
    cfg.samples = {k: [] for k in ("invoke", "pipeline", "latency", "interval", "fitness", *STAGES)}
    try:
        _capture_invoke_input(cfg, opts.warmup)
    except BaseException:
        est.close()
        frames.close()
        raise
    for k in cfg.samples:
        cfg.samples[k].clear()
    cfg.poses = 0
    rss1 = rss_mb()
    cfg.model_rss_mb = round(rss1 - rss0, 1) if rss0 is not None and rss1 is not None else 0.0
    return cfg


def _capture_invoke_input(cfg: _Config, warmup: int) -> None:
    """Warm up through the pipeline while listening to what it feeds the pose model: the invoke benchmark
    then runs on a real preprocessed crop, not on zeros (quantized models can be faster on zeros)."""
    backend = cfg.est.backend

    def record(inputs) -> None:
        # Top-down pipelines batch the people of a frame; the invoke is timed for one person (batch 1).
        cfg.invoke_inputs = [np.array(x[:1], copy=True) for x in inputs]

    with backend.listening(record):
        for _ in range(warmup):
            cfg.frame()
    if not cfg.invoke_inputs:
        cfg.warnings.append("the pose model never ran during warm-up (nobody found): invoke timed on zeros")
        cfg.invoke_inputs = [np.zeros(s.shape, s.dtype) for s in backend.inputs]
    for _ in range(max(1, warmup // 2)):
        cfg.invoke()


# The run ----------------------------------------------------------------------------------------
def _block_sizes(runs: int | None, rounds: int) -> list[int | None]:
    if runs is None:
        return [None] * rounds
    rounds = max(1, min(rounds, runs))
    return [runs // rounds + (i < runs % rounds) for i in range(rounds)]


def run_bench(
    opts: BenchOptions, progress: Callable[[float], None] | None = None, on_config: Callable[[str], None] | None = None
) -> BenchRun:
    """Time every configuration; `progress(fraction_done)` after each block."""
    exercise = check_options(opts)
    input_record, make_frames = _describe_input(opts.input)
    notes = []
    if input_record["kind"] == "generated":
        notes.append(
            f"no --input: timing a generated {input_record['width']}x{input_record['height']} frame with "
            "nobody in it; pass --input PHOTO|VIDEO for real frames"
        )
    failures: list[BenchFailure] = []
    configs: list[_Config] = []
    _preload_runtimes(opts)
    opened: list[_Config] = []  # closed at the end, failed ones included
    try:
        for model in opts.models:
            for backend in opts.backends:
                for threads in opts.threads:
                    name = f"{model} [{backend}, {threads or 'default'} threads]"
                    if on_config:
                        on_config(name)
                    try:
                        configs.append(_open_config(model, backend, threads, opts, make_frames, exercise))
                        opened.append(configs[-1])
                    except EdgeposeError as e:
                        failures.append(BenchFailure(name, str(e)))
        blocks = _block_sizes(opts.runs, opts.rounds)
        budget = opts.duration_s / len(blocks) if opts.duration_s is not None else math.inf
        for cfg in configs:
            cfg.thermal_before = thermal_state()
        for i, block in enumerate(blocks):
            for cfg in list(configs):
                try:
                    _time_block(cfg, block, budget)
                except EdgeposeError as e:
                    failures.append(BenchFailure(cfg.label, str(e)))
                    configs.remove(cfg)
                    continue
                cfg.thermal_readings.append(thermal_state())
            if progress:
                progress((i + 1) / len(blocks))
        results = [_result(cfg) for cfg in configs]
    finally:
        for cfg in opened:
            cfg.est.close()
            cfg.frames.close()
    document = {
        "schema": SCHEMA,
        "run_id": uuid.uuid4().hex,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "edgepose_version": package_version("edgepose") or "unknown",
        "label": opts.label or fingerprint()["hostname"],
        "device": fingerprint(),
        "input": input_record,
        "settings": {
            "runs": opts.runs,
            "warmup": opts.warmup,
            "duration_s": opts.duration_s,
            "mode": opts.mode,
            "stills": opts.stills,
            "exercise": opts.exercise,
        },
        "results": results,
    }
    wraps = [getattr(c.frames, "wraps", 0) for c in configs]
    if input_record["kind"] == "video" and any(wraps):
        notes.append(
            f"the video has {input_record['frames']} frames: replayed {max(wraps)} times in one stream; "
            "each replay is a cut the tracking has to follow, and its first frame (decoder start-up) "
            "runs untimed: a clip longer than --warmup + --runs times a plain stream"
        )
    return BenchRun(document, failures, notes)


def check_options(opts: BenchOptions) -> Exercise | None:
    """Raise EdgeposeError (one line) for options no run can take, before anything is loaded (here, or on
    every board of a fleet); returns the exercise to count, or None."""
    if opts.mode not in MODES:
        raise EdgeposeError(f"unknown --mode {opts.mode!r}; choose single or multi")
    if opts.runs is None and opts.duration_s is None:
        raise EdgeposeError("give --runs or --duration")
    if (opts.runs is not None and opts.runs < 1) or (opts.duration_s is not None and opts.duration_s <= 0):
        raise EdgeposeError("--runs and --duration must be positive")
    if opts.warmup < 1:
        raise EdgeposeError("--warmup must be at least 1: the first frame captures the input the invoke is timed on")
    return exercise_for(opts)


def exercise_for(opts: BenchOptions) -> Exercise | None:
    """The exercise to count, or None; raises EdgeposeError (one line) for one that cannot be timed."""
    if opts.exercise is None:
        return None
    if opts.stills:
        raise EdgeposeError("--exercise counts reps over a stream of frames; it cannot be timed with --stills")
    if opts.mode != "single":
        raise EdgeposeError("--exercise counts one person's reps: use it with --mode single")
    # Imported only here: a bench without an exercise does not load the fitness layer.
    from edgepose.fitness import get_exercise

    return get_exercise(opts.exercise, opts.extra_exercises)


def _time_block(cfg: _Config, frames: int | None, budget_s: float) -> None:
    n = 0
    c0, w0 = time.process_time(), time.perf_counter()
    cfg.block_start, cfg.last_done = w0, None
    while (frames is None or n < frames) and (n == 0 or time.perf_counter() - w0 < budget_s):
        n += cfg.frame()
    cfg.cpu_s += time.process_time() - c0
    cfg.wall_s += time.perf_counter() - w0
    cfg.est.backend.run(cfg.invoke_inputs)  # untimed: back to batch 1 after a batched frame re-allocates
    for _ in range(n):
        cfg.invoke()


def _result(cfg: _Config) -> dict:
    resolved = resolve_model(cfg.model)
    backend = cfg.est.backend
    spec = resolved.spec
    family, _ = model_family(resolved, backend)
    pipeline = summarize(cfg.samples["pipeline"])
    return {
        "model": resolved.name if spec else resolved.path.name,
        "model_path": str(resolved.path),
        "model_sha256": sha256_of(resolved.path),
        "model_size_bytes": resolved.path.stat().st_size,
        "family": family,
        "precision": _precision(resolved, backend),
        "backend": backend.name.split(" ")[0],
        "delegate": "edgetpu" if backend.name.startswith("edgetpu") else None,
        "detector": _detector(cfg.est),
        # What runs where (an Edge TPU build: the TPU's custom ops and the operators left on the CPU).
        "operators": _operators(resolved),
        "threads": int(backend.threads),
        "mode": cfg.est.options.mode,
        "frames": pipeline["n"],
        "invoke_ms": summarize(cfg.samples["invoke"]),
        "invoke_input_shapes": [list(x.shape) for x in cfg.invoke_inputs],
        "pipeline_ms": pipeline,
        "stages_ms": {s: summarize(cfg.samples[s]) for s in STAGES},
        "fps": round(1000.0 / pipeline["mean"], 2) if pipeline["mean"] > 0 else 0.0,
        "latency_ms": summarize(cfg.samples["latency"]),
        "exercise": cfg.counter.counter.exercise.name if cfg.counter is not None else None,
        # The rep counter alone; it is also inside pipeline_ms and latency_ms.
        "fitness_ms": summarize(cfg.samples["fitness"]) if cfg.counter is not None else None,
        "throughput_fps": _per_second(cfg.samples["interval"]),
        "cpu_util": round(cfg.cpu_s / cfg.wall_s, 3) if cfg.wall_s > 0 else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "model_rss_mb": cfg.model_rss_mb,
        "poses_per_frame": round(cfg.poses / pipeline["n"], 3),
        "thermal": thermal_record(cfg.thermal_before, cfg.thermal_readings),
        "warnings": cfg.warnings,
    }


def _per_second(intervals_ms: list[float]) -> float:
    """Frames per second from the times between consecutive frames (1000 / their mean)."""
    if not intervals_ms:
        return 0.0
    mean = sum(intervals_ms) / len(intervals_ms)
    return round(1000.0 / mean, 2) if mean > 0 else 0.0


def _operators(resolved) -> dict | None:
    from edgepose.assets.op_map import operator_map

    ops = operator_map(resolved)
    return None if ops is None else ops.to_dict()


def _detector(est: PoseEstimator) -> dict | None:
    detector = est.backends.get("detector")
    if detector is None or detector.path is None:
        return None
    path = Path(detector.path)
    name = next((s.name for s in REGISTRY.values() if s.filename == path.name), path.name)
    return {"model": name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size}


def _preload_runtimes(opts: BenchOptions) -> None:
    """Import the inference runtimes before any configuration is loaded, so the first configuration's
    model_rss_mb is its model's, not the runtime library's."""
    from edgepose.bindings import litert, tflite_rt

    def onnxruntime():
        import onnxruntime  # noqa: F401

    loaders = {"tflite-runtime": tflite_rt.interpreter_module, "onnxruntime": onnxruntime}
    wanted = {loaders.get(b, litert.interpreter_module) for b in opts.backends}
    if any(m.lower().endswith(".onnx") for m in opts.models):
        wanted.add(onnxruntime)
    for load in wanted:
        try:
            load()
        except (BackendError, ImportError):
            continue  # opening the model says what is missing


def _precision(resolved, backend) -> str:
    if resolved.spec is not None:
        return resolved.spec.precision
    meta = load_metadata(resolved.path)
    if meta is not None and meta.format in _FORMAT_PRECISION:
        return _FORMAT_PRECISION[meta.format]
    if any(s.quantized for s in (*backend.inputs, *backend.outputs)):
        return "int8"
    stem = resolved.path.stem.lower()
    for token, precision in (("int8", "int8"), ("fp16", "fp16"), ("float16", "fp16"), ("fp32", "fp32")):
        if token in stem:
            return precision
    return "float"  # fp32 or fp16 weights: the file alone does not say which without parsing every tensor
