"""`edgepose run`: photos, folders, videos and cameras through the estimator; JSON lines and overlays."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.bindings import BACKENDS
from edgepose.cli.common import fail, stderr
from edgepose.errors import EdgeposeError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.image import is_image_file, load_image
from edgepose.io.atomic import atomic_path
from edgepose.io.drawing import draw_poses
from edgepose.io.video import VideoSource, VideoWriter, is_video_file

_DEBUG = False


@dataclass
class Batch:
    """The inputs of one `run`, and what went wrong with some of them."""

    items: list[Path]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def failed(self, source: str, message: str) -> None:
        self.failures.append((source, message))
        stderr.print(f"edgepose: error: {message}", markup=False, soft_wrap=True)


def expand_inputs(inputs: list[Path], batch: Batch) -> list[Path]:
    """Files as given; directories expanded to the images and videos directly inside them, sorted."""
    out: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if c.is_file() and (is_image_file(c) or is_video_file(c)))
            if not found:
                batch.failed(str(p), f"{p}: directory has no images or videos")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            batch.failed(str(p), f"{p}: no such file or directory")
    return out


def run_command(
    inputs: list[Path] | None = typer.Argument(None, help="Image files, directories, video files."),
    camera: int | None = typer.Option(None, "--camera", help="Read camera N (OpenCV) instead."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Registry name or .tflite/.onnx path."),
    mode: str = typer.Option(
        "single", "--mode", help="single | multi (top-down for MoveNet/BlazePose models, bottom-up for PoseNet)"
    ),
    backend: str = typer.Option("auto", "--backend", help=" | ".join(BACKENDS)),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads."),
    output: Path | None = typer.Option(None, "--output", "-o", help="JSON lines file (default: stdout)."),
    draw: Path | None = typer.Option(
        None, "--draw", help="Overlay: an image file, a folder (several inputs) or a video file."
    ),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="One-Euro smoothing on video."),
    min_score: float = typer.Option(0.15, "--min-score", help="Drop poses scoring below this."),
    max_people: int = typer.Option(10, "--max-people", help="At most this many people per frame (multi mode)."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop videos after N frames."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
) -> None:
    """Estimate poses in images, folders, videos or a camera; one JSON object per frame."""
    global _DEBUG
    _DEBUG = debug
    if backend not in BACKENDS:
        raise fail(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not inputs and camera is None:
        raise fail("give at least one INPUT (image, folder, video) or --camera N")

    batch = Batch(items=[])
    batch.items = expand_inputs(list(inputs or []), batch)
    options = PoseEstimatorOptions(
        model=model,
        mode=mode,
        backend=backend,
        threads=threads,
        smoothing=smooth,
        min_pose_score=min_score,
        max_people=max_people,
    )
    try:
        estimator = PoseEstimator.create_from_options(options)
    except EdgeposeError as e:
        if debug:
            traceback.print_exc()
        raise fail(str(e)) from None

    n_sources = len(batch.items) + (camera is not None)
    with _json_sink(output) as sink:
        runner = _Runner(estimator, sink, draw, n_sources, max_frames, batch)
        with _progress(n_sources) as progress:
            runner.progress = progress
            for path in batch.items:
                runner.run_path(path)
            if camera is not None:
                runner.run_video(None, camera)
    if batch.failures:
        if n_sources > 1 or len(batch.failures) > 1:
            names = ", ".join(s for s, _ in batch.failures[:5]) + (" …" if len(batch.failures) > 5 else "")
            stderr.print(f"edgepose: {len(batch.failures)} input(s) failed: {names}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


class _Runner:
    def __init__(
        self,
        estimator: PoseEstimator,
        sink: IO[str],
        draw: Path | None,
        n_sources: int,
        max_frames: int | None,
        batch: Batch,
    ):
        self.est = estimator
        self.sink = sink
        self.draw = draw
        self.draw_is_dir = draw is not None and (n_sources > 1 or draw.is_dir())
        self.max_frames = max_frames
        self.batch = batch
        self.progress: Progress | None = None

    def _emit(self, result, source: str, frame: int) -> None:
        self.sink.write(json.dumps(result.to_dict(source, frame, self.est.model_name)) + "\n")
        self.sink.flush()

    def _draw_target(self, source: Path | None, video: bool) -> Path | None:
        if self.draw is None:
            return None
        if not self.draw_is_dir:
            return self.draw
        stem = source.stem if source is not None else "camera"
        name = f"{stem}.mp4" if video else (source.name if source is not None else f"{stem}.jpg")
        return self.draw / name

    def run_path(self, path: Path) -> None:
        if is_video_file(path):
            self.run_video(path, None)
        else:
            self.run_image(path)

    def run_image(self, path: Path) -> None:
        try:
            rgb = load_image(path)
            result = self.est.estimate_frame(rgb)
            target = self._draw_target(path, video=False)
            if target is not None:
                overlay = draw_poses(rgb, result.poses, self.est.options.min_keypoint_score, self.est.skeleton)
                with atomic_path(target) as tmp:
                    overlay.save(tmp, format=_pil_format(target))
            self._emit(result, str(path), 0)
        except EdgeposeError as e:
            self._fail(str(path), str(e))
        except BrokenPipeError:  # `edgepose run ... | head`: click ends the run quietly
            raise
        except (OSError, ValueError) as e:
            self._fail(str(path), f"{path}: {e}")
        finally:
            self._advance()

    def run_video(self, path: Path | None, camera: int | None) -> None:
        source_name = str(path) if path is not None else f"camera:{camera}"
        writer: VideoWriter | None = None
        task = None
        try:
            src = VideoSource.open_file(path) if path is not None else VideoSource.open_camera(camera or 0)
            target = self._draw_target(path, video=True)
            writer = VideoWriter(target, src.fps) if target is not None else None
            if self.progress is not None:
                total = (
                    src.frame_count
                    if self.max_frames is None
                    else min(src.frame_count or self.max_frames, self.max_frames)
                )
                task = self.progress.add_task(Path(source_name).name, total=total)
            self.est.reset()
            for i, t_ms, rgb in src.frames(self.max_frames):
                result = self.est.estimate_video_frame(rgb, t_ms)
                if writer is not None:
                    overlay = draw_poses(rgb, result.poses, self.est.options.min_keypoint_score, self.est.skeleton)
                    writer.write(np.asarray(overlay))
                self._emit(result, source_name, i)
                if task is not None:
                    self.progress.advance(task)
            if writer is not None:
                writer.close()
        except EdgeposeError as e:
            self._fail(source_name, str(e))
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:  # e.g. the overlay video's disk is full
            self._fail(source_name, f"{source_name}: {e}")
        finally:
            if writer is not None:
                writer.abort()  # removes the partial file unless close() already renamed it
            if task is not None:
                self.progress.remove_task(task)
            self._advance()

    def _fail(self, source: str, message: str) -> None:
        if _DEBUG:
            traceback.print_exc()
        self.batch.failed(source, message)

    def _advance(self) -> None:
        if self.progress is not None and self.progress.task_ids:
            self.progress.advance(self.progress.task_ids[0])


def _pil_format(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}.get(ext, "PNG")


@contextlib.contextmanager
def _json_sink(output: Path | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f


@contextlib.contextmanager
def _progress(n_sources: int) -> Iterator[Progress | None]:
    """A bar on stderr for folders, batches and videos; nothing for a single photo."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )
    with progress:
        progress.add_task("inputs", total=n_sources, visible=n_sources > 1)
        yield progress
