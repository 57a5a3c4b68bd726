"""`--camera picam` through a stand-in Picamera2 (tests/standins/picamera2) that serves the shared squat
video's real frames with Picamera2's interface and libcamera's byte orders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import VideoError
from edgepose.io.picamera import PicameraSource, parse_camera
from tests.conftest import DATA_DIR, cli_env

STANDINS = Path(__file__).resolve().parent / "standins"
SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.syspath_prepend(str(STANDINS))
    monkeypatch.setenv("EDGEPOSE_PICAM_VIDEO", str(SQUATS))
    monkeypatch.setenv("EDGEPOSE_PICAM_PACE_S", "0")
    sys.modules.pop("picamera2", None)
    yield __import__("picamera2")
    sys.modules.pop("picamera2", None)


def test_camera_names():
    assert parse_camera("0") == ("opencv", 0) and parse_camera("2") == ("opencv", 2)
    assert parse_camera("picam") == ("picam", 0) and parse_camera("picam:1") == ("picam", 1)
    for bad in ("picam:x", "usb", "-1", "picam:", "\u00b2", "\u0663"):  # superscript two, Arabic-Indic three
        with pytest.raises(VideoError, match="picam / picam:N"):
            parse_camera(bad)


def test_frames_are_the_cameras_rgb_with_sensor_timestamps(standin):
    src = PicameraSource(0)
    frames = list(src.frames(max_frames=5))
    cam = standin.Picamera2.opened[-1]
    assert cam.closed and cam.config["main"] == {"size": (640, 480), "format": "BGR888"}
    for i, t_ms, rgb in frames:
        assert rgb.shape == (480, 640, 3) and rgb.flags.c_contiguous
        np.testing.assert_array_equal(rgb, standin.frame_at(i))  # RGB, not libcamera's other byte order
        assert t_ms == pytest.approx(i * 1000 / 30, abs=0.01)  # the sensor clock, not Python's
    assert src.fps == pytest.approx(30.0, rel=1e-3)


def test_a_missing_or_absent_camera_is_one_clear_error(standin, monkeypatch):
    with pytest.raises(VideoError, match="picam:3: cannot open"):
        PicameraSource(3)
    monkeypatch.setitem(sys.modules, "picamera2", None)  # not installed (no --system-site-packages)
    with pytest.raises(VideoError, match="apt install python3-picamera2.*--system-site-packages"):
        PicameraSource(0)


def _cli(model_dir, tmp_path, *args, fps="30", pace="0.02"):
    env = cli_env(model_dir, tmp_path)
    env.update(
        PYTHONPATH=os.pathsep.join([str(STANDINS), env.get("PYTHONPATH", "")]),
        EDGEPOSE_PICAM_VIDEO=str(SQUATS),
        EDGEPOSE_PICAM_FPS=fps,
        EDGEPOSE_PICAM_PACE_S=pace,
    )
    cmd = [sys.executable, "-m", "edgepose.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_run_camera_picam_is_a_live_stream_of_real_frames(model_dir, tmp_path):
    out = tmp_path / "picam.jsonl"
    r = _cli(model_dir, tmp_path, "run", "--camera", "picam", "--max-frames", "30", "-o", out)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    dropped = int(r.stderr.split("frame(s) dropped")[0].rsplit(" ", 1)[-1]) if "dropped" in r.stderr else 0
    assert len(lines) + dropped == 30 and lines[-1]["frame"] == 29
    assert {(line["source"], line["width"], line["height"]) for line in lines} == {("picam:0", 640, 480)}
    # The squatting woman, 270 px tall in the letterboxed 640x480 frame, in every estimated frame.
    assert all(len(line["poses"]) == 1 and line["poses"][0]["score"] > 0.4 for line in lines)
    heights = [line["poses"][0]["bbox"][3] - line["poses"][0]["bbox"][1] for line in lines[:3]]
    assert all(200 < h < 290 for h in heights), heights


def test_reps_on_a_picam_count_the_squats(model_dir, tmp_path):
    # A 5 fps sensor clock (the clip's own), served faster than real time.
    r = _cli(model_dir, tmp_path, "reps", "--camera", "picam", "-e", "squat", "--max-frames", "65", "--json", "-",
             fps="5", pace="0.04")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["reps"], summary["partial_reps"]) == (2, 0), summary


def test_a_bad_camera_name_is_one_line(model_dir, tmp_path):
    for command in (("run",), ("reps", "-e", "squat")):
        r = _cli(model_dir, tmp_path, *command, "--camera", "usb0")
        assert r.returncode == 2 and "picam / picam:N" in r.stderr and r.stderr.count("\n") == 1


def test_an_opencv_camera_that_fails_on_a_pi_points_to_picam(monkeypatch):
    from edgepose.io import cameras
    from edgepose.io.video import VideoSource

    def no_camera(index):
        raise VideoError(f"camera {index}: cannot open (no such device, or it is busy)")

    monkeypatch.setattr(VideoSource, "open_camera", staticmethod(no_camera))
    monkeypatch.setattr(cameras, "_on_raspberry_pi", lambda: True)
    with pytest.raises(VideoError, match="camera 0: cannot open .*try --camera picam"):
        cameras.open_camera("0")
    monkeypatch.setattr(cameras, "_on_raspberry_pi", lambda: False)
    with pytest.raises(VideoError) as e:
        cameras.open_camera("0")
    assert "picam" not in str(e.value)


def test_picamera2_broken_by_numpy_2_says_so(monkeypatch, tmp_path):
    # apt's Picamera2 imports simplejpeg, built for Pi OS's numpy 1.24: numpy 2 in the venv breaks it
    # with a ValueError, not an ImportError (picamera2 issues #1088, #1211).
    broken = "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility')\n"
    (tmp_path / "picamera2.py").write_text(broken)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    with pytest.raises(VideoError, match="picam: Picamera2 fails to import .*numpy<2"):
        PicameraSource(0)
