"""`edgepose run` and `edgepose models list` on the real model and photos, through a real subprocess.

The helpers at the top (`Cli`, `cli_env`, `json_lines`) are shared with test_bad_input.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edgepose.assets.registry import DEFAULT_MODEL, REGISTRY
from tests.conftest import DATA_DIR, Cli, cli_env, gt_for, json_lines, oks

FRAME_KEYS = ["source", "frame", "width", "height", "model", "poses", "timings_ms"]
POSE_KEYS = ["id", "score", "bbox", "keypoints"]
TIMING_KEYS = {"preprocess", "inference", "postprocess", "tracking"}


def no_hidden_files(folder: Path) -> bool:
    """Atomic writers use dot-prefixed temporaries beside the target; none may survive a run."""
    return not any(p.name.startswith(".") for p in folder.iterdir())


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="module")
def photo_run(cli: Cli, one_person_photo: Path) -> subprocess.CompletedProcess[str]:
    """`edgepose run PHOTO` once; several tests read its output."""
    return cli("run", one_person_photo)


@pytest.fixture(scope="module")
def photo_frame(photo_run: subprocess.CompletedProcess[str]) -> dict:
    assert photo_run.returncode == 0, photo_run.stderr
    (frame,) = json_lines(photo_run.stdout)
    return frame


def without_timings(frame: dict) -> dict:
    """A frame's JSON minus the per-run timings, which differ between otherwise identical runs."""
    return {k: v for k, v in frame.items() if k != "timings_ms"}


# `edgepose run PHOTO` ------------------------------------------------------------------------------


def test_photo_run_is_quiet_and_prints_one_json_line(photo_run):
    assert photo_run.returncode == 0
    assert photo_run.stderr == ""  # no progress bar, no runtime chatter for a single photo
    assert len(photo_run.stdout.splitlines()) == 1


def test_photo_json_schema(photo_frame, one_person_photo):
    assert list(photo_frame) == FRAME_KEYS
    assert photo_frame["source"] == str(one_person_photo)
    assert photo_frame["frame"] == 0
    assert photo_frame["model"] == DEFAULT_MODEL
    assert set(photo_frame["timings_ms"]) == TIMING_KEYS
    # Durations vary from run to run: only their type and sign are pinned.
    assert all(isinstance(v, float) and v >= 0 for v in photo_frame["timings_ms"].values())
    (pose,) = photo_frame["poses"]
    assert list(pose) == POSE_KEYS
    assert pose["id"] is None  # no tracking on a still image
    assert 0.0 < pose["score"] <= 1.0
    kps = np.array(pose["keypoints"], dtype=float)
    assert kps.shape == (17, 3)
    assert ((kps[:, 2] >= 0) & (kps[:, 2] <= 1)).all()
    x0, y0, x1, y1 = pose["bbox"]
    assert x0 < x1 and y0 < y1


def test_photo_size_and_keypoints_inside_it(photo_frame, one_person_photo):
    with Image.open(one_person_photo) as im:
        w, h = im.size
    assert (photo_frame["width"], photo_frame["height"]) == (w, h)
    kps = np.array(photo_frame["poses"][0]["keypoints"])
    assert ((kps[:, 0] >= 0) & (kps[:, 0] < w) & (kps[:, 1] >= 0) & (kps[:, 1] < h)).all(), kps


def test_photo_pose_matches_ground_truth(photo_frame, coco):
    kps = np.array(photo_frame["poses"][0]["keypoints"])
    score = oks(kps[:, :2], gt_for(coco, "000000000785.jpg")[0])
    assert score >= 0.80, score


# Output files ----------------------------------------------------------------------------------


def test_output_file_holds_the_stdout_json_and_no_temp_files(cli, one_person_photo, photo_frame, tmp_path):
    out = tmp_path / "out.jsonl"
    res = cli("run", one_person_photo, "--output", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # the JSON went to the file instead
    (frame,) = json_lines(out.read_text())
    assert list(frame) == FRAME_KEYS
    assert without_timings(frame) == without_timings(photo_frame)
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_draw_png_overlays_the_skeleton_on_the_person(cli, one_person_photo, photo_frame, tmp_path):
    overlay = tmp_path / "out.png"
    res = cli("run", one_person_photo, "--draw", overlay)
    assert res.returncode == 0, res.stderr
    assert json_lines(res.stdout)[0]["poses"] == photo_frame["poses"]  # drawing does not change the result
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert overlay.stat().st_mode & 0o044, oct(overlay.stat().st_mode)  # not left private like a temp file
    with Image.open(overlay) as im:
        assert im.format == "PNG"
        drawn = np.asarray(im.convert("RGB")).astype(int)
    with Image.open(one_person_photo) as im:
        original = np.asarray(im.convert("RGB")).astype(int)
    assert drawn.shape == original.shape
    # PNG is lossless, so every changed pixel was drawn: enough of them, and all near the person
    # (the bbox plus room for the line width, the keypoint dots and the score label above the box).
    changed = np.abs(drawn - original).sum(axis=2) > 0
    assert changed.sum() > 500
    x0, y0, x1, y1 = photo_frame["poses"][0]["bbox"]
    ys, xs = np.nonzero(changed)
    margin = 20
    assert xs.min() >= x0 - margin and xs.max() <= x1 + margin
    assert ys.min() >= y0 - margin and ys.max() <= y1 + margin


def test_folder_input_draws_one_overlay_per_image(cli, tmp_path):
    names = ["000000000785.jpg", "000000196141.jpg"]
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in names:
        shutil.copy(DATA_DIR / "coco" / name, photos / name)
    drawn = tmp_path / "drawn"
    res = cli("run", photos, "--draw", drawn)
    assert res.returncode == 0, res.stderr
    frames = json_lines(res.stdout)
    assert [f["source"] for f in frames] == [str(photos / n) for n in names]  # sorted folder order
    assert sorted(p.name for p in drawn.iterdir()) == names  # same names, nothing else
    for frame, name in zip(frames, names):
        assert len(frame["poses"]) >= 1, name
        with Image.open(drawn / name) as overlay, Image.open(photos / name) as src:
            assert overlay.format == "JPEG"  # the format follows the overlay's extension
            assert overlay.size == src.size == (frame["width"], frame["height"])


def test_video_gives_one_line_per_frame_and_a_readable_overlay(cli, demo_video, tmp_path):
    out = tmp_path / "out.mp4"
    res = cli("run", demo_video, "--draw", out)
    assert res.returncode == 0, res.stderr
    frames = json_lines(res.stdout)
    assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4]
    assert all(f["source"] == str(demo_video) for f in frames)
    assert all((f["width"], f["height"]) == (960, 540) for f in frames)
    assert all(list(f) == FRAME_KEYS for f in frames)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # the .partial file was renamed
    assert read_video_shapes(out) == [(540, 960, 3)] * 5


def read_video_shapes(path: Path) -> list[tuple[int, ...]]:
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened(), path
        shapes = []
        while True:
            ok, frame = cap.read()
            if not ok:
                return shapes
            shapes.append(frame.shape)
    finally:
        cap.release()


# Backends --------------------------------------------------------------------------------------


def test_onnxruntime_backend_on_a_tflite_model_is_one_line(cli, one_person_photo):
    res = cli("run", one_person_photo, "--backend", "onnxruntime")
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"edgepose: error: {REGISTRY[DEFAULT_MODEL].filename} is not an ONNX model; onnxruntime runs .onnx files"
    ]


def test_litert_and_auto_backends_give_identical_keypoints(cli, one_person_photo, photo_frame):
    results = {}
    for backend in ("litert", "auto"):
        res = cli("run", one_person_photo, "--backend", backend)
        assert res.returncode == 0, res.stderr
        results[backend] = json_lines(res.stdout)[0]["poses"][0]["keypoints"]
    assert results["litert"] == results["auto"]
    assert results["auto"] == photo_frame["poses"][0]["keypoints"]  # auto is also the default


# `edgepose models list` ------------------------------------------------------------------------


def test_models_list_names_every_model_and_which_are_present(cli, model_dir):
    res = cli("models", "list")
    assert res.returncode == 0, res.stderr
    # Table rows look like "│ name │ task │ input │ precision │ present │ sha256 │".
    rows = {}
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6:
            rows[cells[0]] = cells
    assert set(rows) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        # The cache is an empty folder of ours, so only model_dir can make a model present.
        expected = "yes" if (model_dir / spec.filename).is_file() else "no"
        assert rows[name][4] == expected, rows[name]
    assert rows["movenet-lightning-int8"][4] == "yes" and rows["movenet-lightning-int8-edgetpu"][4] == "yes"
    assert f"searched (EDGEPOSE_MODEL_DIR): {model_dir}" in res.stdout


def test_the_lazy_stderr_console_agrees_with_rich_about_terminals(monkeypatch):
    # The console is made only when needed; whether stderr counts as a terminal (progress bars, colour)
    # must still be rich's answer, FORCE_COLOR and TTY_COMPATIBLE included.
    import sys as _sys

    from rich.console import Console

    from edgepose.cli.common import _StderrConsole

    for env in ({"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0"}, {}):
        for k in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert _StderrConsole().is_terminal == Console(file=_sys.stderr).is_terminal, env


def test_version_is_shown_without_loading_anything(cli):
    from importlib.metadata import version

    r = cli("--version")
    assert r.returncode == 0 and r.stdout == f"edgepose {version('edgepose')}\n" and r.stderr == ""
