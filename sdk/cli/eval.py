"""`edgepose eval`: COCO keypoint AP/AR and mean OKS of a model, or of two models side by side.

Registered by the main app as `app.command("eval")(eval_command)`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.bindings import BACKENDS
from edgepose.cli.common import (
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
from edgepose.io.atomic import atomic_output, check_output_path
from edgepose.models.families import MODES

if TYPE_CHECKING:
    from rich.console import Console

    from edgepose.estimator import PoseEstimatorOptions

# COCO AP ranks predictions by score, so a low-scoring pose can only add recall at the tail of the
# precision/recall curve, never lower the precision above it: a high floor would understate AP (the
# usual detector protocol keeps everything above 0.05). Not 0: the mean OKS takes each person's best
# match, and a floor keeps near-zero-score guesses from inflating it.
DEFAULT_MIN_SCORE = 0.05
# COCOeval's keypoint AP counts at most 20 detections per image (params.maxDets).
DEFAULT_MAX_PEOPLE = 20


def eval_command(
    annotations: Path = typer.Option(..., "--annotations", help="COCO person-keypoints JSON (ground truth)."),
    images: Path = typer.Option(..., "--images", help="Folder holding the images the annotations list."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Registry name or .tflite/.onnx path."),
    compare: str | None = typer.Option(
        None, "--compare", help="A second model (name or path) on the same images; the table shows the delta."
    ),
    mode: str = typer.Option("single", "--mode", help="single | multi (multi-person photos need multi)"),
    backend: str = typer.Option("auto", "--backend", help=" | ".join(BACKENDS)),
    threads: int | None = typer.Option(None, "--threads", min=1, help="Inference threads (with --ray: 1 per worker)."),
    min_score: float = typer.Option(
        DEFAULT_MIN_SCORE, "--min-score", min=0.0, help="Drop poses scoring below this (low keeps AP honest)."
    ),
    max_people: int = typer.Option(DEFAULT_MAX_PEOPLE, "--max-people", min=1, help="Poses per image (multi mode)."),
    json_out: str | None = typer.Option(None, "--json", help="Write the full result as JSON here ('-': stdout)."),
    use_ray: bool = ray_option("Find the poses spread", "Same numbers as without."),
    ray_address: str | None = ray_address_option("The images must be at the same path on every node."),
    ray_workers: int | None = ray_workers_option(),
    ray_batch: int | None = ray_batch_option("images"),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
) -> None:
    """COCO keypoint accuracy (AP, AP50, AP75, AR, mean OKS) of a model on annotated photos."""
    from rich.console import Console

    if backend not in BACKENDS:
        raise fail(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if mode not in MODES:
        raise fail(f"unknown --mode {mode!r}; choose single or multi")
    if not use_ray:
        refuse_ray_options(ray_address, ray_workers, ray_batch)
    else:
        threads = ray_threads(ray_address, threads)
    from edgepose.estimator import PoseEstimatorOptions
    from edgepose.eval.coco import evaluate, evaluate_compare, require_pycocotools

    def options(name: str) -> PoseEstimatorOptions:
        return PoseEstimatorOptions(
            model=name,
            mode=mode,
            backend=backend,
            threads=threads,
            smoothing=False,
            min_pose_score=min_score,
            max_people=max_people,
        )

    try:
        if json_out not in (None, "-"):
            check_output_path(json_out)  # before the model runs on every photo
        require_pycocotools()
        models = [options(model)] if compare is None else [options(model), options(compare)]
        estimate = _ray_estimate(models, ray_address, ray_workers, ray_batch, debug) if use_ray else None
        with _progress() as progress:
            if compare is None:
                result: Any = evaluate(models[0], annotations, images, progress, estimate)
            else:
                result = evaluate_compare(models[0], models[1], annotations, images, progress, estimate)
    except EdgeposeError as e:
        if debug:
            traceback.print_exc()
        raise fail(str(e)) from None

    document = json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
    # With the JSON on stdout the table moves to stderr, so that stdout parses as one document.
    table_console = stderr.console if json_out == "-" else Console(width=None if sys.stdout.isatty() else 120)
    if json_out == "-":
        sys.stdout.write(document)
        sys.stdout.flush()
    elif json_out is not None:
        try:
            with atomic_output(json_out) as tmp:
                tmp.write_text(document, encoding="utf-8")
        except EdgeposeError as e:
            raise fail(str(e)) from None
    _print_table(result, table_console)


def _ray_estimate(
    models: list[PoseEstimatorOptions], address: str | None, workers: int | None, per_task: int | None, debug: bool
) -> Callable[..., Any]:
    """`--ray`: the per-image half of the evaluation on Ray workers, each holding every model; called by
    run_evaluation once the models loaded here (their errors are the local run's) and the images checked."""

    def estimate(coco: Any, images_dir: Path, progress: Callable[[int, int], None] | None) -> Any:
        from edgepose.cluster.ray_pool import TaskLost, worker_pool
        from edgepose.eval.coco import EstimateJob, Estimates

        images = list(coco.images)

        def split(size: int) -> list:
            return [(images[i : i + size], images_dir, coco.path.name) for i in range(0, len(images), size)]

        threads = models[0].threads
        with worker_pool(address, workers, threads, debug, EstimateJob, (models,), len(images), per_task, split) as run:
            pool, tasks = run
            done = [0]

            def on_done(index: int) -> None:
                done[0] += len(tasks[index][0])
                if progress is not None:
                    progress(done[0], len(images))

            found = Estimates([{} for _ in models], [0.0] * len(models))
            for task, part in zip(tasks, pool.map(tasks, on_done)):
                if isinstance(part, TaskLost):
                    # Not a smaller benchmark: the whole run fails, as for an unreadable image.
                    names = ", ".join(i.file_name for i in task[0])
                    raise EdgeposeError(f"{names}: {part.message}")
                found.add(part)
            return found

    return estimate


def _print_table(result: Any, console: Console) -> None:
    from rich.table import Table

    from edgepose.eval.coco import CompareResult

    runs = [result.model, result.compare] if isinstance(result, CompareResult) else [result]
    first = runs[0]
    table = Table(title=f"COCO keypoints: {first.images} images, {first.people} people ({first.mode} mode)")
    table.add_column("metric")
    for r in runs:
        table.add_column(r.model, justify="right")
    if len(runs) == 2:
        table.add_column("delta", justify="right")
    labels = {"ap": "AP", "ap50": "AP50", "ap75": "AP75", "ar": "AR", "mean_oks": "mean OKS"}
    for key, label in labels.items():
        row = [label] + [f"{getattr(r, key):.4f}" for r in runs]
        if len(runs) == 2:
            row.append(f"{result.delta[key]:+.4f}")
        table.add_row(*row)
    table.add_row("poses found", *[str(r.predictions) for r in runs], *([""] if len(runs) == 2 else []))
    table.add_row("s / image", *[f"{r.seconds_per_image:.3f}" for r in runs], *([""] if len(runs) == 2 else []))
    console.print(table)


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A bar on stderr when it is a terminal; nothing in pipes and logs."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("images"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr.console,
        transient=True,
    )
    task = bar.add_task("images", total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance
