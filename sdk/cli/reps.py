"""`edgepose reps`: count an exercise's repetitions in a video or on a camera, with per-rep form metrics."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import typer

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.bindings import BACKENDS
from edgepose.cli.common import CAMERA_HELP, check_camera, fail, stderr, write_json
from edgepose.errors import EdgeposeError
from edgepose.io.atomic import check_not_an_input, check_output_path
from edgepose.io.cameras import open_camera
from edgepose.io.video import VIDEO_SUFFIXES, VideoSource, VideoWriter, is_video_file


def reps_command(
    source: Path | None = typer.Argument(None, help="A video file (or use --camera).", readable=False),
    exercise: str | None = typer.Option(None, "--exercise", "-e", help="Exercise name (see --list)."),
    camera: str | None = typer.Option(None, "--camera", help=CAMERA_HELP, callback=check_camera),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Single-person model (name or file)."),
    backend: str = typer.Option("auto", "--backend", help=" | ".join(BACKENDS)),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads (default: automatic)."),
    json_out: str | None = typer.Option(None, "--json", help="Write the summary as JSON here ('-': stdout)."),
    draw: Path | None = typer.Option(
        None, "--draw", help="Write the video with the skeleton, count, phase and angle arc drawn (.mp4 or .avi)."
    ),
    exercises_file: Path | None = typer.Option(
        None, "--exercises-file", help="Your own exercises (JSON or TOML), added to the catalogue."
    ),
    list_: bool = typer.Option(False, "--list", help="Show the exercise catalogue and exit."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after N frames."),
) -> None:
    """Count repetitions of an exercise: joint angles from the poses, a two-threshold counter, form metrics."""
    from edgepose.fitness import CATALOGUE, get_exercise, load_exercises

    try:
        extra = load_exercises(exercises_file) if exercises_file is not None else {}
    except EdgeposeError as e:
        raise fail(str(e)) from None
    if list_:
        if source is not None or camera is not None or exercise is not None or json_out or draw is not None:
            raise fail("--list shows the catalogue and exits: give it alone (or with --exercises-file)")
        _print_catalogue({**CATALOGUE, **extra})
        return
    if exercise is None:
        raise fail(f"give --exercise NAME; one of: {', '.join(sorted({**CATALOGUE, **extra}))}")
    try:
        chosen = get_exercise(exercise, extra)
    except EdgeposeError as e:
        raise fail(str(e)) from None
    if backend not in BACKENDS:
        raise fail(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if (source is None) == (camera is None):
        raise fail("give one video file or --camera N")
    if source is not None and not is_video_file(source):
        raise fail(f"{source}: reps need a video (a photo has no repetitions)")
    json_path = Path(json_out) if json_out not in (None, "-") else None
    try:
        if json_path is not None:
            check_not_an_input(json_path, [source], "--json")
            check_output_path(json_path)
        if draw is not None:
            if draw.suffix.lower() not in VIDEO_SUFFIXES:
                raise EdgeposeError(f"{draw}: --draw writes a video: name it .mp4 or .avi")
            check_not_an_input(draw, [source], "--draw")
            if json_path is not None and os.path.realpath(draw) == os.path.realpath(json_path):
                raise EdgeposeError(f"{draw}: --draw and --json name the same file")
            check_output_path(draw)
    except EdgeposeError as e:
        raise fail(str(e)) from None

    from edgepose.estimator import PoseEstimator, PoseEstimatorOptions

    try:
        src = VideoSource.open_file(source) if source is not None else open_camera(camera)
        options = PoseEstimatorOptions(model=model, mode="single", backend=backend, threads=threads)
        with PoseEstimator.create_from_options(options) as estimator:
            summary = count_reps(estimator, src, chosen, max_frames, draw)
    except EdgeposeError as e:
        raise fail(str(e)) from None

    if not write_json(summary, json_out):
        typer.echo(_one_line(summary))
    for warning in summary["warnings"]:
        stderr.print(f"edgepose: warning: {warning}", markup=False, soft_wrap=True)


def count_reps(estimator, src: VideoSource, exercise, max_frames: int | None, draw: Path | None = None) -> dict:
    """Run the stream through the estimator and the exercise's counter; the summary document. With `draw`,
    also the overlay video, renamed into place only once the whole stream is written."""
    from edgepose.fitness import PoseRepCounter
    from edgepose.fitness.placement import PlacementCheck
    from edgepose.io.frame_reader import FrameReader

    if draw is not None:
        from edgepose.io.drawing import draw_poses
        from edgepose.io.rep_overlay import draw_rep_overlay

    counting = PoseRepCounter(exercise)
    counter = counting.counter
    placement: PlacementCheck | None = None
    frames = seen = 0
    spaces: set[str] = set()
    live = stderr.is_terminal
    writer = VideoWriter(draw, src.fps) if draw is not None else None
    # A camera run ends with Ctrl-C: the reps so far are its result, and its overlay is kept.
    ends_with_ctrl_c = (KeyboardInterrupt,) if src.live else ()
    try:
        with contextlib.suppress(*ends_with_ctrl_c), FrameReader(src, max_frames) as reader:
            for frame in reader:
                if writer is not None and frame.index == 0:
                    writer.fps = src.fps  # a Picamera2 knows its frame rate once the first frame is in
                result = estimator.estimate_video_frame(frame.rgb, frame.t_ms)
                pose = result.poses[0] if result.poses else None
                frames += 1
                seen += pose is not None
                if placement is None:
                    placement = PlacementCheck(exercise, result.width, result.height)
                if counter.count == 0 and not counter.reps:  # the placement before the first movement
                    placement.add(pose)
                counting.update(pose, frame.t_ms / 1000.0)
                if counting.reading is not None:
                    spaces.add(counting.reading.angle.space)
                if writer is not None:
                    min_score, skeleton = estimator.options.min_keypoint_score, estimator.skeleton
                    overlay = draw_rep_overlay(draw_poses(frame.rgb, result.poses, min_score, skeleton), pose, counting)
                    writer.write(np.asarray(overlay))
                if live:
                    angle = f"{counter.angle:5.1f}" if counter.angle is not None else "  -  "
                    stderr.console.print(
                        f"{exercise.name}: {counter.count} reps | angle {angle} | {counter.phase:<9}", end="\r"
                    )
        if writer is not None:
            writer.close()
    finally:
        if writer is not None:
            writer.abort()  # removes the partial file unless close() already renamed it
        if live:
            stderr.console.print(" " * 60, end="\r")
    s = counter.summary()
    warnings = [w.message for w in placement.warnings()] if placement is not None else []
    if seen == 0:
        warnings = ["nobody was found in the video: 0 reps"]
    elif counter.phase == "waiting":
        rest = exercise.thresholds(counter.space)[0]
        warnings.append(f"the start position of {exercise.name} ({rest:g} degrees) was never held")
    return {
        "exercise": exercise.name,
        # "world": 3-D angles from the model's world keypoints (BlazePose); "image": in the image plane.
        "angle_space": "+".join(sorted(spaces)) or None,
        "reps": s.count,
        "partial_reps": s.partial_reps,
        "mean_rom_deg": s.mean_rom_deg,
        "mean_duration_s": s.mean_duration_s,
        "mean_down_s": s.mean_down_s,
        "mean_up_s": s.mean_up_s,
        "rep_details": [r.to_dict() for r in s.reps],
        "warnings": warnings,
        "frames": frames,
    }


def _one_line(summary: dict) -> str:
    line = f"{summary['exercise']}: {summary['reps']} reps"
    if summary["partial_reps"]:
        line += f" ({summary['partial_reps']} partial, not counted)"
    if summary["mean_rom_deg"] is not None:
        line += f"; range {summary['mean_rom_deg']:.0f} deg, {summary['mean_duration_s']:.1f} s a rep"
        line += f" ({summary['mean_down_s']:.1f} s down, {summary['mean_up_s']:.1f} s up)"
    return line


def _print_catalogue(catalogue: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edgepose exercises")
    for col in ("name", "angle", "rest", "turn", "sides", "view", "what counts"):
        table.add_column(col, justify="right" if col in ("rest", "turn") else "left")
    for ex in sorted(catalogue.values(), key=lambda e: e.name):
        (rest, turn), (rest_3d, turn_3d) = ex.thresholds("image"), ex.thresholds("world")
        rest_text = f"{rest:g}" + ("" if rest_3d == rest else f" (3-D {rest_3d:g})")
        turn_text = f"{turn:g}" + ("" if turn_3d == turn else f" (3-D {turn_3d:g})")
        table.add_row(ex.name, ex.angle, rest_text, turn_text, ex.sides, ex.view, ex.description)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
