"""The `edgepose` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import typer
from edgepose.atomic import atomic_path
from edgepose.bindings import BACKENDS
from edgepose.cli_bench import bench_app
from edgepose.cli_common import fail, stderr
from edgepose.cli_eval import eval_command
from edgepose.drawing import draw_poses
from edgepose.errors import EdgeposeError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.images import is_image_file, load_image
from edgepose.registry import DEFAULT_MODEL, REGISTRY, is_present, model_dirs
from edgepose.video import VideoSource, VideoWriter, is_video_file
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="On-device human pose estimation.")
models_app = typer.Typer(no_args_is_help=True, help="The model registry.")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.command("eval")(eval_command)

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


@app.command()
def run(
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
        model=model, mode=mode, backend=backend, threads=threads, smoothing=smooth, min_pose_score=min_score,
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
    def __init__(self, estimator: PoseEstimator, sink: IO[str], draw: Path | None, n_sources: int,
                 max_frames: int | None, batch: Batch):  # fmt: skip
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
                total = src.frame_count if self.max_frames is None else min(src.frame_count or self.max_frames,
                                                                          self.max_frames)  # fmt: skip
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
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=stderr, transient=True, disable=not stderr.is_terminal,
    )  # fmt: skip
    with progress:
        progress.add_task("inputs", total=n_sources, visible=n_sources > 1)
        yield progress


@app.command()
def convert(
    source: Path = typer.Argument(..., help="TFLite, ONNX, SavedModel folder, RTMPose .pth/.npz, OpenMMLab SDK .zip"),
    to: str = typer.Option(..., "--to", help="onnx, onnx-int8, tflite-fp32, tflite-fp16 or tflite-int8"),
    output: Path = typer.Option(..., "-o", "--output", help="the converted file (.onnx or .tflite)"),
    calib: Path = typer.Option(None, "--calib", help="folder of real photos: int8 calibration and the parity check"),
    family: str = typer.Option("auto", "--family",
                               help="movenet, blazepose, blazepose-detector, rtmpose, posenet or auto"),
    variant: str = typer.Option(None, "--variant", help="RTMPose t, s or m (checked against the weights)"),
    report: Path = typer.Option(None, "--report", help="write the parity report here as JSON"),
    min_oks: float = typer.Option(None, "--min-oks", help="parity bar (default 0.98 float, 0.90 int8)"),
    max_px_err: float = typer.Option(None, "--max-px-err", help="mean keypoint error bar, model-input pixels"),
    io_type: str = typer.Option("float", "--io-type", help="tflite-int8 input/output: float, int8 or uint8"),
    mixed_precision: bool = typer.Option(True, "--mixed-precision/--no-mixed-precision",
                                         help="when int8 misses the bar, keep the most sensitive layers in float"),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
) -> None:
    """Convert a pose model for the edge, then prove on real images how close it stays to its source."""
    try:
        from edgepose.converters.convert import ConvertOptions
        from edgepose.converters.convert import convert as run_conversion
    except ImportError as e:
        raise fail(f"edgepose convert needs the workstation extra ({e.name} missing): "
                   "pip install 'edgepose[convert]'") from None
    from edgepose.native_stderr import quiet_native_stderr

    # TensorFlow and the converters it drives write pages of native logs to fd 2, silenced; progress and
    # the report go to stdout, so stderr carries only the one-line error when there is one.
    console = Console(file=os.fdopen(os.dup(1), "w", buffering=1), highlight=False)
    opts = ConvertOptions(source=source, to=to, output=output, calib=calib, family=family, variant=variant,
                          report=report, min_oks=min_oks, max_px_err=max_px_err, io_type=io_type,
                          mixed_precision=mixed_precision,
                          progress=lambda m: console.print(f"[dim]edgepose convert:[/dim] {m}"))  # fmt: skip
    with quiet_native_stderr():
        result = run_conversion(opts)
    _print_report(result.report, console)
    if not result.report.passed:
        raise fail(f"parity below the bar (mean OKS {result.report.mean_oks:.3f} < {result.report.min_oks}"
                   + (f" or mean error > {result.report.max_mean_px_err} px" if result.report.max_mean_px_err else "")
                   + f", presence flips {result.report.presence_flips}); {result.output} kept for inspection", code=1)


def _print_report(r, console: Console) -> None:
    if r.keypoints_compared == 0 and "parity" in r.extra:  # structural parity only (PoseNet's decoder cut)
        console.print(f"parity: {r.extra['parity']}; {r.inputs} runtime inputs run; "
                      f"{r.source_size_bytes / 1e6:.2f} MB -> {r.size_bytes / 1e6:.2f} MB", markup=False)  # fmt: skip
        return
    table = Table(title=f"parity: {Path(r.output).name} ({r.format}) vs source", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("images / model inputs", f"{r.images} / {r.inputs}"),
        ("keypoints compared", str(r.keypoints_compared)),
        ("mean / max error (model-input px)", f"{r.mean_px_err:.3f} / {r.max_px_err:.3f}"),
        ("mean OKS vs source", f"{r.mean_oks:.4f} (bar {r.min_oks})"),
        ("keypoint score MAE", f"{r.score_mae:.4f}"),
        ("presence flips", str(r.presence_flips)),
        ("size source / output", f"{r.source_size_bytes / 1e6:.2f} MB / {r.size_bytes / 1e6:.2f} MB"),
        ("invoke source / output (median)", f"{r.invoke_ms['source']:.2f} ms / {r.invoke_ms['output']:.2f} ms"),
    ]
    if "plain_int8" in r.extra and r.extra.get("float_layers"):
        p = r.extra["plain_int8"]
        rows.append(("plain int8 (before the search)", f"OKS {p['mean_oks']:.3f}, {p['mean_px_err']:.2f} px mean, "
                                                       f"{p['presence_flips']} flips"))  # fmt: skip
        rows.append(("layers kept float", f"{len(r.extra['float_layers'])} (names in the --report JSON)"))
    if "vs_source_file" in r.extra:
        v = r.extra["vs_source_file"]
        rows.append(("vs the quantized source file", f"OKS {v['mean_oks']:.3f}, {v['mean_px_err']:.2f} px mean"))
    rows.append(("passed", "yes" if r.passed else "NO"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if r.extra.get("most_sensitive"):
        console.print(f"most sensitive layers: {', '.join(r.extra['most_sensitive'][:5])}", markup=False)
    if r.extra.get("fallback"):
        console.print(f"fallback: {r.extra['fallback']}", markup=False)


@models_app.command("list")
def models_list() -> None:
    """Every registry entry, and whether its file is present here."""
    table = Table(title="edgepose models")
    table.add_column("name", no_wrap=True)
    for col in ("task", "input", "precision", "present", "sha256"):
        table.add_column(col)
    for spec in REGISTRY.values():
        pin = spec.sha256[:12] if spec.sha256 else f"{spec.sha256_prefix} (prefix)" if spec.sha256_prefix else "none"
        table.add_row(
            spec.name, spec.task, f"{spec.input_size[0]}x{spec.input_size[1]}", spec.precision,
            "yes" if is_present(spec) else "no", pin,
        )  # fmt: skip
    out = Console(width=None if sys.stdout.isatty() else 120)
    out.print(table)
    for label, d in model_dirs():
        out.print(f"searched ({label}): {d}", markup=False, highlight=False)


def main() -> None:
    """Entry point: every EdgeposeError becomes one line on stderr; tracebacks only with --debug."""
    debug = "--debug" in sys.argv
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        stderr.print("edgepose: interrupted", markup=False)
        sys.exit(130)
    except EdgeposeError as e:
        if debug:
            traceback.print_exc()
        stderr.print(f"edgepose: error: {e}", markup=False, soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # a bug: still one line, the trace with --debug
        if debug:
            traceback.print_exc()
        stderr.print(f"edgepose: internal error: {type(e).__name__}: {e} (run with --debug for the trace)",
                     markup=False, soft_wrap=True)  # fmt: skip
        sys.exit(3)


if __name__ == "__main__":
    main()
