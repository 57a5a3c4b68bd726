"""`edgepose run --mode multi` end to end on the real photos and video, through a real subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import DATA_DIR, gt_for, oks
from tests.test_cli import FRAME_KEYS, POSE_KEYS, Cli, cli_env, json_lines, read_video_shapes

GROUP_PHOTO = DATA_DIR / "coco" / "000000196141.jpg"  # 640x429, four annotated people


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def one_frame(res: subprocess.CompletedProcess[str]) -> dict:
    assert res.returncode == 0, res.stderr
    (frame,) = json_lines(res.stdout)
    assert list(frame) == FRAME_KEYS
    return frame


def keypoints(frame: dict) -> list[np.ndarray]:
    return [np.array(p["keypoints"], dtype=float) for p in frame["poses"]]


def test_multi_mode_finds_the_four_people(cli, coco):
    frame = one_frame(cli("run", GROUP_PHOTO, "--mode", "multi"))
    assert frame["model"] == "movenet-lightning-int8"
    assert (frame["width"], frame["height"]) == (640, 429)
    poses = frame["poses"]
    assert len(poses) >= 4  # measured exactly 4
    assert all(list(p) == POSE_KEYS and p["id"] is None for p in poses)  # no tracking on a still
    assert all(k.shape == (17, 3) for k in keypoints(frame))
    assert [p["score"] for p in poses] == sorted((p["score"] for p in poses), reverse=True)
    # The JSON carries the same people the API finds: each annotated person matched by its own pose.
    anns = [a for a in gt_for(coco, GROUP_PHOTO.name) if a["num_keypoints"] >= 5]
    best = [max(range(len(poses)), key=lambda i, a=a: oks(keypoints(frame)[i][:, :2], a)) for a in anns]
    assert len(set(best)) == 4
    assert all(oks(keypoints(frame)[i][:, :2], a) >= 0.5 for i, a in zip(best, anns))


def test_multi_mode_with_blazepose_gives_33_keypoints(cli):
    frame = one_frame(cli("run", GROUP_PHOTO, "--mode", "multi", "--model", "blazepose-full"))
    assert frame["model"] == "blazepose-full"
    assert len(frame["poses"]) >= 4  # measured 4
    assert all(k.shape == (33, 3) for k in keypoints(frame))
    assert all(p["id"] is None for p in frame["poses"])


def test_multi_mode_with_posenet(cli):
    frame = one_frame(cli("run", GROUP_PHOTO, "--model", "posenet-mobilenet", "--mode", "multi"))
    assert frame["model"] == "posenet-mobilenet"
    assert len(frame["poses"]) >= 4  # measured 7: the four people and three weak fragments (0.16-0.21)
    assert all(k.shape == (17, 3) for k in keypoints(frame))
    assert sum(p["score"] >= 0.5 for p in frame["poses"]) == 4  # measured 0.931, 0.883, 0.716, 0.581


def test_max_people_and_min_score_options(cli):
    two = one_frame(cli("run", GROUP_PHOTO, "--mode", "multi", "--max-people", "2"))
    assert len(two["poses"]) == 2
    strong = one_frame(cli("run", GROUP_PHOTO, "--mode", "multi", "--model", "posenet-mobilenet", "--min-score", "0.5"))
    assert len(strong["poses"]) == 4 and all(p["score"] >= 0.5 for p in strong["poses"])


def test_video_in_multi_mode_tracks_ids_and_draws_every_frame(cli, demo_video, tmp_path):
    out = tmp_path / "out.mp4"
    res = cli("run", demo_video, "--mode", "multi", "--draw", out)
    assert res.returncode == 0, res.stderr
    frames = json_lines(res.stdout)
    assert [f["frame"] for f in frames] == [0, 1, 2, 3, 4]
    assert all((f["width"], f["height"]) == (960, 540) for f in frames)
    for f in frames:
        ids = [p["id"] for p in f["poses"]]
        assert len(ids) >= 3 and all(type(i) is int for i in ids) and len(set(ids)) == len(ids), ids
    # Measured: ids 1, 2 and 3 in all five frames.
    assert len(set.intersection(*({p["id"] for p in f["poses"]} for f in frames))) >= 3
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert read_video_shapes(out) == [(540, 960, 3)] * 5
    # The overlay is the video with skeletons on it, not a blank or unrelated picture.
    cap = cv2.VideoCapture(str(demo_video))
    ok, original = cap.read()
    cap.release()
    cap = cv2.VideoCapture(str(out))
    ok2, drawn = cap.read()
    cap.release()
    assert ok and ok2
    diff = np.abs(drawn.astype(int) - original.astype(int)).sum(axis=2)
    assert np.median(diff) < 30  # mostly the same picture (both lossy)
    assert (diff > 150).sum() > 500  # plus the drawn skeletons


def test_draw_jpeg_with_blazepose(cli, tmp_path):
    overlay = tmp_path / "overlay.jpg"
    frame = one_frame(cli("run", GROUP_PHOTO, "--mode", "multi", "--model", "blazepose-full", "--draw", overlay))
    assert len(frame["poses"]) >= 4
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.jpg"]
    assert overlay.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(overlay) as im, Image.open(GROUP_PHOTO) as src:
        assert im.format == "JPEG"
        assert im.size == src.size == (640, 429)
        drawn = np.asarray(im.convert("RGB")).astype(int)
        original = np.asarray(src.convert("RGB")).astype(int)
    diff = np.abs(drawn - original).sum(axis=2)
    assert (diff > 150).sum() > 500  # the 33-point skeletons were drawn
    # ... inside the people's boxes, give or take the line width and labels (JPEG noise elsewhere is small).
    inside = np.zeros(diff.shape, bool)
    for p in frame["poses"]:
        x0, y0, x1, y1 = (int(v) for v in p["bbox"])
        inside[max(y0 - 25, 0) : y1 + 25, max(x0 - 25, 0) : x1 + 25] = True
    assert (diff[~inside] > 150).sum() < 50
