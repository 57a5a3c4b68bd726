"""`edgepose run`: photos, folders, videos and cameras through the estimator; JSON lines and overlays."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import typer

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.bindings import BACKENDS
from edgepose.cli.common import (
    CAMERA_HELP,
    check_camera,
    fail,
    ray_address_option,
    ray_batch_option,
    ray_option,
    ray_threads,
    ray_workers_option,
    refuse_ray_options,
    stderr,
)
from edgepose.errors import EdgeposeError
from edgepose.image import is_image_file, load_image
from edgepose.io.atomic import (
    PendingFile,
    atomic_output,
    check_not_an_input,
    check_output_dir,
    check_output_path,
    output_error,
    remove_stale_temps,
)
from edgepose.io.cameras import open_camera
from edgepose.io.frame_reader import FrameReader
from edgepose.io.picamera import parse_camera
from edgepose.io.video import VideoSource, VideoWriter, is_video_file

if TYPE_CHECKING:
    from rich.progress import Progress

    from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
    from edgepose.fitness import Exercise

# The estimator, drawing and rich's progress bar are imported where a run needs them, not when the
# command line starts: `edgepose --help` and a mistyped option answer without loading the pipelines.

_DEBUG = False
# What the CLI calls the options it validates, for their one-line errors.
CLI_NAMES = {
    "model_sha256": "--model-sha256",
    "mode": "--mode",
    "threads": "--threads",
    "min_pose_score": "--min-score",
    "max_people": "--max-people",
}


@dataclass
class Batch:
    """The inputs of one `run`, and what went wrong with some of them."""

    items: list[Path]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def failed(self, source: str, message: str, level: str = "error") -> None:
        self.failures.append((source, message))
        stderr.print(f"edgepose: {level}: {message}", markup=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        stderr.print(f"edgepose: warning: {message}", markup=False, soft_wrap=True)

    def trace(self, text: str) -> None:
        """A failure's traceback (--debug)."""
        sys.stderr.write(text)


def expand_inputs(inputs: list[Path], batch: Batch) -> list[Path]:
    """Files as given; directories expanded to the images and videos directly inside them, sorted.

    What cannot be read (missing, unreadable, a FIFO or device) is one failure line here or when its
    turn comes; the other inputs still run.
    """
    out: list[Path] = []
    for p in inputs:
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            if p.is_symlink():  # a dangling link: its turn says what is wrong
                out.append(p)
            else:
                batch.failed(str(p), f"{p}: no such file or directory")
            continue
        except OSError as e:  # e.g. inside a folder we may not enter
            batch.failed(str(p), f"{p}: cannot read: {e.strerror or e}")
            continue
        if not stat.S_ISDIR(mode):
            out.append(p)
            continue
        try:
            children = sorted(p.iterdir())
            found = [c for c in children if (is_image_file(c) or is_video_file(c)) and c.is_file()]
        except OSError as e:
            batch.failed(str(p), f"{p}: cannot list directory: {e.strerror or e}")
            continue
        if not found:
            batch.failed(str(p), f"{p}: directory has no images or videos")
        out.extend(found)
    return out


def run_command(
    inputs: list[Path] | None = typer.Argument(
        # Not click's readable check: an unreadable input is one failure line, not the whole batch.
        None,
        help="Image files, directories, video files.",
        readable=False,
    ),
    camera: str | None = typer.Option(None, "--camera", help=CAMERA_HELP, callback=check_camera),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Registry name or .tflite/.onnx path."),
    model_sha256: str | None = typer.Option(
        None, "--model-sha256", help="Refuse the model unless its SHA-256 starts with this (see `models info`)."
    ),
    mode: str = typer.Option(
        "single", "--mode", help="single | multi (top-down for MoveNet/BlazePose models, bottom-up for PoseNet)"
    ),
    backend: str = typer.Option("auto", "--backend", help=" | ".join(BACKENDS)),
    threads: int | None = typer.Option(
        None, "--threads", help="Inference threads (1-64; default: automatic; with --ray: 1 per worker)."
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="JSON lines file (default: stdout)."),
    draw: Path | None = typer.Option(
        None, "--draw", help="Overlay: an image file, a folder (several inputs) or a video file."
    ),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="One-Euro smoothing on video."),
    min_score: float = typer.Option(0.15, "--min-score", help="Drop poses scoring below this (0 to 1)."),
    max_people: int = typer.Option(10, "--max-people", help="At most this many people per frame (multi mode)."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop videos after N frames."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Accept a video that stops decoding early (cut short, damaged): a warning."
    ),
    exercise: str | None = typer.Option(
        None, "--exercise", "-e", help="Add the exercise's angle, phase and reps to each line (see `reps --list`)."
    ),
    exercises_file: Path | None = typer.Option(None, "--exercises-file", help="Your own exercises (JSON or TOML)."),
    use_ray: bool = ray_option("Spread the inputs", "Same output as without."),
    ray_address: str | None = ray_address_option(
        "Inputs, -o and --draw must be at the same paths on every node (a shared file system)."
    ),
    ray_workers: int | None = ray_workers_option(),
    ray_batch: int | None = ray_batch_option("photos"),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
) -> None:
    """Estimate poses in images, folders, videos or a camera; one JSON object per frame."""
    global _DEBUG
    _DEBUG = debug
    if backend not in BACKENDS:
        raise fail(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not use_ray:
        refuse_ray_options(ray_address, ray_workers, ray_batch)
    elif camera is not None:
        raise fail("--camera runs on this machine only: it cannot be used with --ray")
    if not inputs and camera is None:
        raise fail("give at least one INPUT (image, folder, video) or --camera N")
    if output is None and (sys.stdout is None or sys.stdout.closed):
        raise fail("standard output is closed; give -o FILE for the JSON lines", code=1)
    fitness = _fitness(exercise, exercises_file, mode)
    if use_ray:  # before the model loads: a missing extra says so at once
        threads = ray_threads(ray_address, threads)
    from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
    from edgepose.options import validate

    options = PoseEstimatorOptions(
        model=model,
        model_sha256=model_sha256,
        mode=mode,
        backend=backend,
        threads=threads,
        smoothing=smooth,
        min_pose_score=min_score,
        max_people=max_people,
    )
    try:
        validate(options, CLI_NAMES)
        if output is not None:
            check_output_path(output)
    except EdgeposeError as e:
        raise fail(str(e)) from None

    batch = Batch(items=[])
    batch.items = expand_inputs(list(inputs or []), batch)
    n_sources = len(batch.items) + (camera is not None)
    overlays = _Overlays(draw, batch.items, n_sources, camera=camera is not None)
    relay = _Relay()
    try:
        overlays.check(batch.items)
        if output is not None:
            check_not_an_input(output, batch.items, "--output")
        # A camera alone runs in live-stream mode from the start; after files it gets its own estimator.
        live = camera is not None and not batch.items
        estimator = PoseEstimator.create_from_options(_live_options(options, relay) if live else options)
    except EdgeposeError as e:
        if debug:
            traceback.print_exc()
        raise fail(str(e)) from None

    with _json_sink(output) as sink, _progress(n_sources) as progress:
        if use_ray:
            # The model checked above is the one every worker loads: its errors were this run's, word
            # for word, and the workers run the same _Runner.
            estimator.close()
            job = _RayJob.Args(options, max_frames, allow_partial, fitness, debug)
            try:
                _run_on_ray(job, overlays, batch, sink, progress, ray_address, ray_workers, ray_batch)
            except EdgeposeError as e:
                if debug:
                    traceback.print_exc()
                raise fail(str(e)) from None
        else:
            runner = _Runner(estimator, sink, overlays, max_frames, allow_partial, batch, fitness)
            runner.progress = progress
            for path in batch.items:
                runner.run_path(path)
            if camera is not None:
                runner.run_camera(camera, relay)
    if batch.failures:
        if n_sources > 1 or len(batch.failures) > 1:
            names = ", ".join(s for s, _ in batch.failures[:5]) + (" …" if len(batch.failures) > 5 else "")
            stderr.print(f"edgepose: {len(batch.failures)} input(s) failed: {names}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


class _Overlays:
    """Where `--draw` puts each input's overlay: the file itself for one input, else a folder holding each
    input's overlay under its own name (videos as .mp4). No overlay overwrites another: inputs whose
    names collide from different folders keep their paths relative to their common folder, and names
    that still collide (clip.avi and clip.mp4, a.JPG and a.jpg, an input called camera.mp4 next to
    --camera) get -2, -3, ... in input order."""

    def __init__(self, draw: Path | None, items: list[Path], n_sources: int, camera: bool = False):
        self.draw = draw
        self.is_dir = draw is not None and (n_sources > 1 or draw.is_dir())
        sources = list(dict.fromkeys(os.path.abspath(p) for p in items))
        names = {src: self._name(Path(os.path.basename(src))) for src in sources}
        for same in self._collisions(names).values():
            root = os.path.commonpath([os.path.dirname(src) for src in same])
            for src in same:
                names[src] = self._name(Path(os.path.relpath(src, root)))
        if camera:
            names[None] = Path("camera.mp4")
        for same in self._collisions(names).values():
            for n, src in enumerate(same[1:], start=2):
                name = names[src]
                names[src] = name.with_name(f"{name.stem}-{n}{name.suffix}")
        self.names = names

    @staticmethod
    def _name(path: Path) -> Path:
        return path.with_suffix(".mp4") if is_video_file(path) else path

    @staticmethod
    def _collisions(names: dict) -> dict[str, list]:
        # Case-insensitively: the overlay folder may be on a file system that ignores case.
        groups: dict[str, list] = {}
        for src, name in names.items():
            groups.setdefault(str(name).lower(), []).append(src)
        return {k: v for k, v in groups.items() if len(v) > 1}

    def check(self, inputs: list[Path] = ()) -> None:
        if self.draw is None:
            return
        for item in inputs:
            check_not_an_input(self.target(item), [item], "--draw")
        if self.is_dir:
            if self.draw.exists() and not self.draw.is_dir():
                raise EdgeposeError(f"{self.draw}: --draw with several inputs needs a folder, not a file")
            check_output_dir(self.draw)
        else:
            check_output_path(self.draw)

    def target(self, source: Path | None) -> Path | None:
        if self.draw is None:
            return None
        if not self.is_dir:
            return self.draw
        return self.draw / self.names[None if source is None else os.path.abspath(source)]


class _Runner:
    def __init__(
        self,
        estimator: PoseEstimator,
        sink: _JsonSink,
        overlays: _Overlays,
        max_frames: int | None,
        allow_partial: bool,
        batch: Batch,
        fitness=None,
    ):
        self.est = estimator
        self.fitness = fitness  # the exercise of --exercise, or None
        self._counting = None  # the PoseRepCounter of the current input
        self.sink = sink
        self.overlays = overlays
        self.max_frames = max_frames
        self.allow_partial = allow_partial
        self.batch = batch
        self.progress: Progress | None = None

    def _emit(self, result, source: str, frame: int, t_s: float = 0.0) -> None:
        doc = result.to_dict(source, frame, self.est.model_name)
        if self._counting is not None:
            self._counting.update(result.poses[0] if result.poses else None, t_s)
            reading, counter = self._counting.reading, self._counting.counter
            doc["fitness"] = {
                "exercise": self.fitness.name,
                "phase": counter.phase,
                # The smoothed angle the counter's phase comes from; None when not seen in this frame.
                "angle": None if reading is None or counter.angle is None else round(counter.angle, 2),
                # "world": 3-D, from the model's world keypoints (BlazePose); "image": in the image plane.
                "angle_space": None if reading is None else reading.angle.space,
                "reps": counter.count,
            }
        self.sink.write(json.dumps(doc) + "\n")

    def _start_counting(self) -> None:
        """A fresh counter per input: each video (or photo) is its own session."""
        if self.fitness is not None:
            from edgepose.fitness import PoseRepCounter

            self._counting = PoseRepCounter(self.fitness)

    @contextlib.contextmanager
    def _failing(self, source: str) -> Iterator[None]:
        """What goes wrong with one input is one line and the batch goes on: an EdgeposeError as it says,
        an OSError or ValueError (a full disk under an overlay) with the input's name. A closed pipe
        (`edgepose run ... | head`) ends the run quietly, as click does."""
        try:
            yield
        except EdgeposeError as e:
            self._fail(source, str(e))
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:
            self._fail(source, f"{source}: {e}")

    def run_path(self, path: Path) -> None:
        if is_video_file(path):
            self.run_video(path)
        else:
            self.run_image(path)

    def run_image(self, path: Path) -> None:
        try:
            with self._failing(str(path)):
                rgb = load_image(path)
                result = self.est.estimate_frame(rgb)
                self._start_counting()
                target = self.overlays.target(path)
                if target is not None:
                    from edgepose.io.drawing import draw_poses

                    overlay = draw_poses(rgb, result.poses, self.est.options.min_keypoint_score, self.est.skeleton)
                    with atomic_output(target) as tmp:
                        overlay.save(tmp, format=_pil_format(target))
                self._emit(result, str(path), 0)
        finally:
            self._advance()

    def run_camera(self, camera: str, relay: _Relay) -> None:
        """A camera in live-stream mode (`estimate_async`): capture on this thread, inference and output
        on the estimator's worker; a frame still waiting when a newer one comes is replaced (counted)."""
        kind, index = parse_camera(camera)
        source_name = f"camera:{index}" if kind == "opencv" else f"picam:{index}"
        if self.est.live_stats is None:  # after files: the camera gets a live-stream estimator of its own
            from edgepose.estimator import PoseEstimator

            self.est.close()
            try:
                self.est = PoseEstimator.create_from_options(_live_options(self.est.options, relay))
            except EdgeposeError as e:
                self._fail(source_name, str(e))
                self._advance()
                return
        est = self.est
        meter = _Meter()
        # timestamp -> (frame index, capture time, the frame when it is drawn) of the frames whose results
        # may still come: at most the one in flight, the one waiting and the one being offered.
        captured: dict[float, tuple[int, float, np.ndarray | None]] = {}
        lock = threading.Lock()  # the capture loop adds and forgets frames while the worker takes them
        problems: list[BaseException] = []  # raised while writing a result; the capture loop stops
        src = None
        writer: VideoWriter | None = None
        task = None
        if self.overlays.target(None) is not None:
            from edgepose.io.drawing import draw_poses

        def on_result(result, timestamp_ms: float) -> None:
            if problems:
                return
            try:
                with lock:
                    index, at, rgb = captured.pop(timestamp_ms)
                meter.add(at)
                if writer is not None:
                    overlay = draw_poses(rgb, result.poses, est.options.min_keypoint_score, est.skeleton)
                    writer.write(np.asarray(overlay))
                self._emit(result, source_name, index, timestamp_ms / 1000.0)
                if task is not None:
                    self.progress.update(task, advance=1, rate=meter.describe(est.dropped_frames))
            except BaseException as e:  # handed to the capture loop, which stops and raises it
                problems.append(e)

        def failed() -> None:
            stats = est.live_stats
            if stats.failed:  # an inference error (a Coral unplugged, a broken model) ends the source
                raise EdgeposeError(f"{source_name}: {stats.first_error}")

        relay.target = on_result
        # The run reports failures itself, one line each: the live stream's own log lines would repeat them.
        logging.getLogger("edgepose").addHandler(logging.NullHandler())
        try:
            with self._failing(source_name):
                src = open_camera(camera)
                target = self.overlays.target(None)
                writer = VideoWriter(target, src.fps) if target is not None else None
                if self.progress is not None:
                    task = self.progress.add_task(source_name, total=self.max_frames, rate="")
                self._start_counting()
                # Ctrl-C is how a camera session ends: the frames so far are its result (the JSON lines and
                # the overlay are kept, exit 0); a second Ctrl-C while the last results come out aborts.
                with contextlib.suppress(KeyboardInterrupt):
                    for index, t_ms, rgb in src.frames(self.max_frames):
                        if problems:
                            break
                        failed()
                        if writer is not None and index == 0:
                            writer.fps = src.fps  # a Picamera2 knows its frame rate once the first frame is in
                        with lock:
                            pending = set(est.pending_timestamps)
                            for gone in [t for t in captured if t not in pending]:  # delivered or replaced
                                del captured[gone]
                            fresh = t_ms not in captured
                            if fresh:
                                captured[t_ms] = (index, time.perf_counter(), rgb if writer is not None else None)
                        if not est.estimate_async(rgb, t_ms) and fresh:  # a timestamp that did not increase
                            with lock:
                                captured.pop(t_ms, None)
                est.close(timeout_s=None)  # every result out (the frame still waiting too) before the summary
                relay.target = None
                if problems:
                    raise problems[0]
                failed()
                if writer is not None:
                    writer.close()
        finally:
            est.close()  # on Ctrl-C, the usual way a camera run ends: the waiting frame for up to a second
            relay.target = None
            if src is not None:
                src.release()
            if not est.live_stats.failed:  # a failed inference is the source's one line; drops after it are noise
                self._say_dropped(source_name, est.live_stats, meter)
            if writer is not None:
                writer.abort()
            if task is not None:
                self.progress.remove_task(task)
            self._advance()

    @staticmethod
    def _say_dropped(source_name: str, stats, meter: _Meter) -> None:
        parts = []
        if stats.replaced:
            parts.append(
                f"{stats.replaced} frame(s) dropped: inference was slower than the camera, so the newest frame "
                f"was used ({meter.describe(stats.replaced)})"
            )
        if stats.out_of_order:
            parts.append(f"{stats.out_of_order} frame(s) with a timestamp not after the previous one dropped")
        if stats.unfinished:
            parts.append(f"{stats.unfinished} frame(s) still waiting at the end dropped")
        for part in parts:
            stderr.print(f"edgepose: {source_name}: {part}", markup=False, soft_wrap=True)

    def run_video(self, path: Path) -> None:
        source_name = str(path)
        writer: VideoWriter | None = None
        reader: FrameReader | None = None
        meter = _Meter()
        task = None
        try:
            with self._failing(source_name):
                src = VideoSource.open_file(path)
                # Made at once: closing it releases the source on every way out, a Ctrl-C included.
                reader = FrameReader(src, self.max_frames)
                target = self.overlays.target(path)
                writer = VideoWriter(target, src.fps) if target is not None else None
                if self.progress is not None:
                    total = (
                        src.frame_count
                        if self.max_frames is None
                        else min(src.frame_count or self.max_frames, self.max_frames)
                    )
                    task = self.progress.add_task(Path(source_name).name, total=total, rate="")
                self.est.reset()
                self._start_counting()
                draw = None
                if writer is not None:
                    from edgepose.io.drawing import draw_poses as draw
                for frame in reader:
                    result = self.est.estimate_video_frame(frame.rgb, frame.t_ms)
                    meter.add(frame.captured)
                    if writer is not None:
                        overlay = draw(frame.rgb, result.poses, self.est.options.min_keypoint_score, self.est.skeleton)
                        writer.write(np.asarray(overlay))
                    self._emit(result, source_name, frame.index, frame.t_ms / 1000.0)
                    if task is not None:
                        self.progress.update(task, advance=1, rate=meter.describe(reader.dropped))
                if writer is not None:
                    writer.close()
                if src.shortfall is not None:
                    self._partial(source_name, *src.shortfall)
        finally:
            if reader is not None:
                reader.close()  # a file's reader never drops a frame (cameras: run_camera)
            if writer is not None:
                writer.abort()  # removes the partial file unless close() already renamed it
            if task is not None:
                self.progress.remove_task(task)
            self._advance()

    def _partial(self, source: str, decoded: int, expected: int) -> None:
        message = (
            f"{source}: decoding stopped at frame {decoded} of the {expected} the file declares "
            f"(cut short or damaged); the {decoded} decoded frames were processed"
        )
        if self.allow_partial:
            self.batch.warn(message)
        else:
            self.batch.failed(source, f"{message} (--allow-partial accepts this)", level="warning")

    def _fail(self, source: str, message: str) -> None:
        if _DEBUG:
            self.batch.trace(traceback.format_exc())
        self.batch.failed(source, message)

    def _advance(self) -> None:
        if self.progress is not None and self.progress.task_ids:
            self.progress.advance(self.progress.task_ids[0])


class _Relay:
    """The live-stream estimator's result callback: it is made with the estimator, before the camera run
    that handles the results exists, and points at that run while it lasts."""

    def __init__(self):
        self.target = None

    def __call__(self, result, timestamp_ms: float) -> None:
        if self.target is not None:
            self.target(result, timestamp_ms)


def _live_options(options, relay: _Relay):
    from dataclasses import replace

    return replace(options, running_mode="live_stream", result_callback=relay)


class _Meter:
    """Throughput and latency (a frame's capture to its poses) over the last second of a video or camera."""

    def __init__(self, window_s: float = 1.0):
        self.window_s = window_s
        self._done: deque[tuple[float, float]] = deque()  # (finished, latency s)

    def add(self, captured: float) -> None:
        now = time.perf_counter()
        self._done.append((now, now - captured))
        while self._done and now - self._done[0][0] > self.window_s:
            self._done.popleft()

    def describe(self, dropped: int = 0) -> str:
        if not self._done:
            return ""
        span = self._done[-1][0] - self._done[0][0]
        fps = (len(self._done) - 1) / span if span > 0 else 0.0
        latency = 1000.0 * sorted(lat for _, lat in self._done)[len(self._done) // 2]
        text = f"{fps:.1f} fps, latency {latency:.0f} ms"
        return text + (f", {dropped} dropped" if dropped else "")


def _fitness(exercise: str | None, exercises_file: Path | None, mode: str):
    """The exercise `--exercise` names (single mode only: whose reps would it count in a crowd?)."""
    if exercise is None:
        if exercises_file is not None:
            raise fail("--exercises-file needs --exercise NAME")
        return None
    if mode != "single":
        raise fail("--exercise counts one person's reps: use it with --mode single")
    from edgepose.fitness import get_exercise, load_exercises

    try:
        extra = load_exercises(exercises_file) if exercises_file is not None else {}
        return get_exercise(exercise, extra)
    except EdgeposeError as e:
        raise fail(str(e)) from None


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}.get(ext, "PNG")


class _JsonSink:
    """JSON lines to stdout, or to a temporary file renamed onto `-o` at the end."""

    def __init__(self, stream: IO[str], live: bool = True):
        self.stream = stream
        self.live = live
        self.lines = 0

    def write(self, line: str) -> None:
        self.stream.write(line)
        # Each line at once on stdout, for whoever reads the stream live; the `-o` temporary file is read
        # by nobody before its rename, so it is written in the stream's own buffered blocks.
        if self.live:
            self.stream.flush()
        self.lines += 1


@contextlib.contextmanager
def _json_sink(output: Path | None) -> Iterator[_JsonSink]:
    """The `-o` file is replaced only when at least one result was written: a batch where every input
    failed leaves an existing file as it was."""
    if output is None:
        yield _JsonSink(sys.stdout)
        return
    pending = None
    try:
        pending = PendingFile(output)
        f = open(pending.path, "w", encoding="utf-8")  # noqa: SIM115 (closed below, before the rename)
    except OSError as e:
        if pending is not None:
            pending.discard()
        raise fail(str(output_error(output, e))) from None
    sink = _JsonSink(f, live=False)
    try:
        yield sink
        try:
            f.close()
            if sink.lines:  # else every input failed, each with its own line, and exit 1 says so
                pending.commit()
        except OSError as e:
            raise fail(str(output_error(output, e)), code=1) from None
    finally:
        f.close()
        pending.discard()


@contextlib.contextmanager
def _progress(n_sources: int) -> Iterator[Progress | None]:
    """A bar on stderr for folders, batches and videos (with throughput and latency) when stderr is a
    terminal; nothing for a single photo, a pipe or a log."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rate]}"),
        console=stderr.console,
        transient=True,
    )
    with progress:
        progress.add_task("inputs", total=n_sources, visible=n_sources > 1, rate="")
        yield progress


# --ray ------------------------------------------------------------------------------------------------
# Each worker runs the same _Runner as a local run, with a _Recorder in place of the JSON sink and of the
# Batch's stderr lines; the driver replays each task's record through the real ones, in input order. So
# the lines, the failures and the summary are the local run's by construction, and a task retried after
# its worker died is replayed once: only returned records produce output.


class _Recorder:
    """What a _Runner writes and reports on a Ray worker, kept in order: ("line", text, source), ("failed",
    source, message, level), ("warn", message), ("trace", text)."""

    def __init__(self):
        self.events: list[tuple[str, ...]] = []
        self.source = ""  # the input whose lines are being written: a write error there is that input's

    def write(self, line: str) -> None:
        self.events.append(("line", line, self.source))

    def failed(self, source: str, message: str, level: str = "error") -> None:
        self.events.append(("failed", source, message, level))

    def warn(self, message: str) -> None:
        self.events.append(("warn", message))

    def trace(self, text: str) -> None:
        self.events.append(("trace", text))


def _replay(events: list[tuple[str, ...]], sink: _JsonSink, batch: Batch) -> None:
    broken: set[str] = set()  # inputs whose output could not be written: as locally, one line, then no more
    for kind, *args in events:
        if kind == "line":
            line, source = args
            if source in broken:
                continue
            try:
                sink.write(line)
            except BrokenPipeError:
                raise
            except (OSError, ValueError) as e:  # a full disk under -o or stdout: the local run's line
                broken.add(source)
                batch.failed(source, f"{source}: {e}")
        elif kind == "failed":
            batch.failed(*args)
        elif kind == "warn":
            batch.warn(*args)
        else:
            batch.trace(*args)


class _TaskTargets:
    """The overlay paths of one task's inputs, as the driver's _Overlays named them (it alone sees all the
    inputs, which the names depend on)."""

    def __init__(self, targets: dict[Path, Path | None]):
        self.targets = targets

    def target(self, source: Path) -> Path | None:
        return self.targets[source]


class _RayJob:
    """One Ray worker's share of `run --ray`: its own estimator (loaded once) under a _Runner; called
    with a task (one video, or a few photos, each with its overlay path), it returns the task's record."""

    @dataclass(frozen=True)
    class Args:
        # Small: Ray keeps an actor's constructor arguments for its restarts.
        options: PoseEstimatorOptions
        max_frames: int | None
        allow_partial: bool
        fitness: Exercise | None  # of --exercise
        debug: bool

    def __init__(self, args: _RayJob.Args):
        global _DEBUG
        _DEBUG = args.debug
        from edgepose.estimator import PoseEstimator

        estimator = PoseEstimator.create_from_options(args.options)
        self.runner = _Runner(estimator, None, None, args.max_frames, args.allow_partial, None, args.fitness)

    def __call__(self, task: list[tuple[Path, Path | None]]) -> list[tuple[str, ...]]:
        recorder = _Recorder()
        self.runner.sink = self.runner.batch = recorder
        self.runner.overlays = _TaskTargets(dict(task))
        for path, _ in task:
            recorder.source = str(path)
            self.runner.run_path(path)
        return recorder.events


def _ray_tasks(items: list[Path], per_task: int) -> list[list[Path]]:
    """Inputs in order, cut into tasks: a video alone (its frames depend on each other), photos
    `per_task` at a time."""
    tasks: list[list[Path]] = []
    photos: list[Path] = []
    for item in items:
        if is_video_file(item):
            if photos:
                tasks.append(photos)
                photos = []
            tasks.append([item])
        else:
            photos.append(item)
            if len(photos) == per_task:
                tasks.append(photos)
                photos = []
    if photos:
        tasks.append(photos)
    return tasks


def _run_on_ray(
    job: _RayJob.Args,
    overlays: _Overlays,
    batch: Batch,
    sink: _JsonSink,
    progress: Progress | None,
    address: str | None,
    workers: int | None,
    per_task: int | None,
) -> None:
    if not batch.items:
        return  # every input already failed: no cluster to start
    from edgepose.cluster.ray_pool import TaskLost, worker_pool

    tasks: list[list[tuple[Path, Path | None]]] = []
    finished = 0
    photos = sum(not is_video_file(p) for p in batch.items)

    def split(size: int) -> list[list[tuple[Path, Path | None]]]:
        return [[(p, overlays.target(p)) for p in paths] for paths in _ray_tasks(batch.items, size)]

    try:
        threads = job.options.threads
        with worker_pool(address, workers, threads, job.debug, _RayJob, (job,), photos, per_task, split) as started:
            pool, tasks = started
            done = [0]

            def on_done(index: int) -> None:
                # The bar counts inputs whose task came back on any worker, in whatever order they finish.
                done[0] += 1
                if progress is not None and progress.task_ids:
                    progress.update(
                        progress.task_ids[0],
                        advance=len(tasks[index]),
                        rate=f"{done[0]}/{len(tasks)} tasks on {len(pool.actors)} Ray workers",
                    )

            for index, record in enumerate(pool.map(tasks, on_done)):
                if isinstance(record, TaskLost):
                    for path, _ in tasks[index]:
                        batch.failed(str(path), f"{path}: {record.message}")
                else:
                    _replay(record, sink, batch)
                finished = index + 1
    finally:
        # Workers stopped mid-write (Ctrl-C, SIGTERM, an error) cannot remove their temporary overlays, and
        # their processes are gone with the cluster: this host's temporaries of theirs are removed here.
        for task in tasks[finished:]:
            for _, target in task:
                if target is not None:
                    remove_stale_temps(target)
