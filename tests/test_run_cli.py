"""`edgepose run` and `edgepose models list` end to end, in a subprocess, on the real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from edgepose.registry import REGISTRY
from PIL import Image

from tests.conftest import DATA_DIR, gt_for, oks


def edgepose(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGEPOSE_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "edgepose.cli", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120,
    )  # fmt: skip


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_photo_json_schema_and_accuracy(one_person_photo, coco):
    res = edgepose("run", one_person_photo)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    (obj,) = lines(res.stdout)
    assert list(obj) == ["source", "frame", "width", "height", "model", "poses", "timings_ms"]
    assert (obj["source"], obj["frame"], obj["width"], obj["height"]) == (str(one_person_photo), 0, 640, 425)
    assert obj["model"] == "movenet-lightning-int8"
    assert set(obj["timings_ms"]) == {"preprocess", "inference", "postprocess"}
    assert all(v > 0 for v in obj["timings_ms"].values())
    (pose,) = obj["poses"]
    assert list(pose) == ["id", "score", "bbox", "keypoints"] and pose["id"] is None
    kps = np.array(pose["keypoints"])
    assert kps.shape == (17, 3)
    assert (kps[:, 0] >= 0).all() and (kps[:, 0] < 640).all() and (kps[:, 1] >= 0).all() and (kps[:, 1] < 425).all()
    assert oks(kps[:, :2], gt_for(coco, "000000000785.jpg")[0]) >= 0.90


def test_output_file_and_overlay(tmp_path, one_person_photo):
    out, overlay = tmp_path / "poses.jsonl", tmp_path / "overlay.png"
    res = edgepose("run", one_person_photo, "--output", out, "--draw", overlay)
    assert res.returncode == 0 and res.stdout == "", res.stderr
    assert len(lines(out.read_text())) == 1
    drawn = np.asarray(Image.open(overlay).convert("RGB")).astype(int)
    original = np.asarray(Image.open(one_person_photo).convert("RGB")).astype(int)
    assert drawn.shape == original.shape
    assert (np.abs(drawn - original).sum(axis=2) > 60).sum() > 500  # a skeleton was drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.png", "poses.jsonl"]  # no temp files


def test_folder_and_video_batch(tmp_path, demo_video):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("000000000785.jpg", "000000196141.jpg"):
        shutil.copy(DATA_DIR / "coco" / name, photos / name)
    out_dir = tmp_path / "drawn"
    res = edgepose("run", photos, demo_video, "--draw", out_dir, "-o", tmp_path / "all.jsonl")
    assert res.returncode == 0, res.stderr
    objs = lines((tmp_path / "all.jsonl").read_text())
    assert [(Path(o["source"]).name, o["frame"]) for o in objs] == [
        ("000000000785.jpg", 0), ("000000196141.jpg", 0), *[("demo.mp4", i) for i in range(5)]
    ]  # fmt: skip
    assert all((o["width"], o["height"]) == (960, 540) for o in objs[2:])
    assert sorted(p.name for p in out_dir.iterdir()) == ["000000000785.jpg", "000000196141.jpg", "demo.mp4"]
    import cv2

    cap = cv2.VideoCapture(str(out_dir / "demo.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 960


def test_backends_agree_and_wrong_backend_is_one_line(one_person_photo):
    auto = lines(edgepose("run", one_person_photo, "--backend", "auto").stdout)[0]["poses"]
    lite = lines(edgepose("run", one_person_photo, "--backend", "litert", "--threads", "1").stdout)[0]["poses"]
    assert auto[0]["keypoints"] == lite[0]["keypoints"]
    res = edgepose("run", one_person_photo, "--backend", "onnxruntime")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        f"edgepose: error: {REGISTRY['movenet-lightning-int8'].filename} is not an ONNX model; "
        "onnxruntime runs .onnx files"
    ]


def test_models_list_marks_present_files():
    res = edgepose("models", "list")
    assert res.returncode == 0, res.stderr
    rows = {line.split("│")[1].strip(): line for line in res.stdout.splitlines() if line.count("│") > 3}
    assert set(REGISTRY) <= set(rows)
    assert "yes" in rows["movenet-lightning-int8"] and "yes" in rows["movenet-lightning-int8-edgetpu"]
    assert "unpinned" in rows["movenet-thunder-int8"] and " no " in rows["movenet-thunder-int8"]
