"""Live-stream mode (`running_mode="live_stream"`, `estimate_async`): the contract on the real squat clip.

A producer far faster than inference; results in timestamp order; offered == delivered + dropped; memory
that does not grow with the frames offered; close() that drains and returns fast; callback errors reported
once and not fatal; the same poses as the synchronous stream when nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc

import numpy as np
import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.errors import EdgeposeError, ImageError
from edgepose.io.video import VideoSource
from tests.conftest import DATA_DIR

SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [rgb for _, _, rgb in VideoSource.open_file(SQUATS).frames()]


def live(callback, **kwargs) -> PoseEstimator:
    options = PoseEstimatorOptions(running_mode="live_stream", result_callback=callback, threads=1, **kwargs)
    return PoseEstimator.create_from_options(options)


def test_a_fast_producer_gets_ordered_results_and_every_frame_is_accounted_for(frames):
    got: list[float] = []
    est = live(lambda result, ts: got.append(ts))
    offered = 0
    for rep in range(3):
        for i, rgb in enumerate(frames):
            est.estimate_async(rgb, timestamp_ms=(rep * len(frames) + i) * 200.0)
            offered += 1
    last = (offered - 1) * 200.0
    est.close()
    stats = est.live_stats
    assert stats.offered == offered == 195
    assert stats.delivered == len(got) and stats.delivered + est.dropped_frames == offered
    assert est.dropped_frames == stats.replaced > 0  # far faster than inference: most frames replaced
    assert got == sorted(got) and len(set(got)) == len(got)  # timestamp order, each once
    assert got[-1] == last  # the newest frame is never the one dropped: close() processed it


def test_memory_stays_flat_however_many_frames_are_offered(frames):
    # 300 frames of 720x1280x3 are 830 MB; one in flight and one waiting are 5.5 MB.
    est = live(lambda result, ts: None)
    est.estimate_async(frames[0], 0.0)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(1, 301):
            est.estimate_async(frames[i % len(frames)], i * 10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        est.close()
    frame_bytes = frames[0].nbytes
    assert (peak - base) < 6 * frame_bytes, (peak - base) / frame_bytes
    assert est.live_stats.delivered + est.dropped_frames == 301


def test_close_drains_and_returns_within_a_second_even_behind_a_stuck_callback(frames, caplog):
    release = threading.Event()
    est = live(lambda result, ts: release.wait(10))
    est.estimate_async(frames[0], 0.0)
    est.estimate_async(frames[1], 1.0)
    time.sleep(0.2)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="edgepose"):
        est.close()
    assert time.monotonic() - t0 < 3.0  # bounded by JOIN_TIMEOUT_S (1 s), with room for a busy machine
    assert "still busy" in caplog.text
    release.set()
    with pytest.raises(EdgeposeError, match="closed"):
        est.estimate_async(frames[2], 2.0)


def test_timestamps_are_optional_and_a_non_increasing_one_is_dropped_not_raised(frames):
    got: list[float] = []
    est = live(lambda result, ts: got.append(ts))
    assert est.estimate_async(frames[0]) is True  # a monotonic clock
    assert est.estimate_async(frames[1], timestamp_ms=0.0) is False  # before the clock's reading: dropped
    time.sleep(0.05)
    assert est.estimate_async(frames[2]) is True
    est.close()
    assert est.live_stats.out_of_order == 1 and got == sorted(got)
    assert len(got) + est.dropped_frames == 3
    est = live(lambda result, ts: None)
    with est:
        for bad in (float("nan"), "soon", True):
            with pytest.raises(EdgeposeError, match="timestamp_ms"):
                est.estimate_async(frames[0], timestamp_ms=bad)
        with pytest.raises(ImageError):
            est.estimate_async(b"not an image", timestamp_ms=1.0)  # bad input raises here, at once
    assert est.live_stats.offered == 0


def test_callback_errors_are_reported_once_and_the_stream_goes_on(frames, caplog):
    calls = []

    def callback(result, ts):
        calls.append(ts)
        raise ValueError("bug in the app")

    est = live(callback)
    with caplog.at_level(logging.WARNING, logger="edgepose"):
        for i in range(5):
            est.estimate_async(frames[i], i * 1000.0)
            deadline = time.monotonic() + 10
            while len(calls) <= i and time.monotonic() < deadline:  # one at a time: nothing replaced
                time.sleep(0.005)
        est.close()
    assert len(calls) == 5 and est.live_stats.callback_errors == 5
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "bug in the app" in caplog.text and errors[0].exc_info is not None
    assert "raised 5 times" in caplog.text


def test_results_equal_the_synchronous_stream_when_nothing_is_dropped(frames):
    with PoseEstimator.create_from_model("movenet-lightning-int8", threads=1) as est:
        expected = [est.estimate_video_frame(rgb, i * 200.0).poses[0].to_dict() for i, rgb in enumerate(frames)]
    got = []
    done = threading.Event()

    def callback(result, ts):
        got.append(result.poses[0].to_dict())
        done.set()

    est = live(callback)
    for i, rgb in enumerate(frames):
        done.clear()
        est.estimate_async(rgb, i * 200.0)
        assert done.wait(10)
    est.close()
    assert got == expected and est.dropped_frames == 0


def test_modes_are_not_mixed():
    with pytest.raises(EdgeposeError, match="needs result_callback"):
        PoseEstimator.create_from_options(PoseEstimatorOptions(running_mode="live_stream"))
    with pytest.raises(EdgeposeError, match="only called in running_mode='live_stream'"):
        PoseEstimator.create_from_options(PoseEstimatorOptions(result_callback=print))
    with pytest.raises(EdgeposeError, match="choose video or live_stream"):
        PoseEstimator.create_from_options(PoseEstimatorOptions(running_mode="LIVE"))
    frame = np.zeros((64, 64, 3), np.uint8)
    with PoseEstimator.create_from_model() as est, pytest.raises(EdgeposeError, match="running_mode='live_stream'"):
        est.estimate_async(frame)
    with live(lambda r, t: None) as est:
        with pytest.raises(EdgeposeError, match="give frames to estimate_async"):
            est.estimate_for_video(frame, 0.0)
        assert est.estimate(frame) == []  # stills still work: no stream state is touched


def fake_camera(index: int) -> VideoSource:
    """The squat clip read as a live source: frames come as fast as they decode, far faster than inference."""
    src = VideoSource.open_file(SQUATS)
    return VideoSource(f"camera:{index}", src.fps, None, src._cap, live=True)


def dropped_count(stderr: str) -> int:
    """The count of the run's "N frame(s) dropped: inference was slower" line (0 without one)."""
    for line in stderr.splitlines():
        if "frame(s) dropped: inference was slower" in line:
            return int(line.split(": ")[2].split(" ")[0])
    return 0


def run_cli(monkeypatch, *argv: str) -> int:
    from edgepose.cli import main

    monkeypatch.setattr("sys.argv", ["edgepose", "run", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


def test_a_camera_run_is_a_live_stream_with_its_overlay(monkeypatch, tmp_path, capsys):
    import json

    import cv2

    from edgepose.io import video

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(fake_camera))
    out, overlay = tmp_path / "cam.jsonl", tmp_path / "cam.mp4"
    assert run_cli(monkeypatch, "--camera", "0", "-o", str(out), "--draw", str(overlay)) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    err = capsys.readouterr().err
    dropped = dropped_count(err)
    frames = [line["frame"] for line in lines]
    assert dropped > 0 and len(frames) + dropped == 65 and frames == sorted(frames) and frames[-1] == 64
    assert all(len(line["poses"]) == 1 for line in lines)  # the squatting woman in every estimated frame
    cap = cv2.VideoCapture(str(overlay))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)  # one overlay frame per result
    cap.release()


def test_files_then_a_camera_in_one_run(monkeypatch, tmp_path, capsys):
    import json

    from edgepose.io import video

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(fake_camera))
    out = tmp_path / "both.jsonl"
    photo = DATA_DIR / "coco" / "000000000785.jpg"
    assert run_cli(monkeypatch, str(photo), "--camera", "0", "-o", str(out)) == 0
    sources = [json.loads(line)["source"] for line in out.read_text().splitlines()]
    assert sources[0] == str(photo) and set(sources[1:]) == {"camera:0"} and len(sources) > 2
    capsys.readouterr()


def test_a_camera_run_whose_inference_fails_fails_its_source(monkeypatch, tmp_path, capsys):
    # An Edge TPU unplugged mid-run, a model that stops working: one line, exit 1, no growth, no output.
    from edgepose.estimator import PoseEstimator as Estimator
    from edgepose.io import video

    def broken(self, rgb, timestamp_ms):
        raise EdgeposeError("the Edge TPU went away")

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(fake_camera))
    monkeypatch.setattr(Estimator, "_live_frame", broken)
    out, overlay = tmp_path / "cam.jsonl", tmp_path / "cam.mp4"
    assert run_cli(monkeypatch, "--camera", "0", "-o", str(out), "--draw", str(overlay)) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["edgepose: error: camera:0: the Edge TPU went away"]
    assert not overlay.exists() and (not out.exists() or out.read_text() == "")


def test_repeated_camera_timestamps_are_dropped_not_fatal(monkeypatch, tmp_path, capsys):
    import json

    from edgepose.io import video

    class Stutter:  # a camera whose clock repeats every other reading
        name, live, fps = "camera:0", True, 30.0

        def frames(self, max_frames=None):
            for i, _, rgb in VideoSource.open_file(SQUATS).frames(20):
                yield i, float(i // 2), rgb

        def release(self):
            pass

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(lambda index: Stutter()))
    out = tmp_path / "cam.jsonl"
    assert run_cli(monkeypatch, "--camera", "0", "-o", str(out)) == 0
    frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    err = capsys.readouterr().err
    assert "10 frame(s) with a timestamp not after the previous one dropped" in err
    assert len(frames) + dropped_count(err) + 10 == 20 and all(f % 2 == 0 for f in frames)


def test_reset_starts_a_new_live_stream(frames):
    got: list[float] = []
    est = live(lambda result, ts: got.append(ts))
    for i in range(3):
        est.estimate_async(frames[i], 1000.0 + i)
    est.reset()  # a new clip: its timestamps start again
    for i in range(3):
        assert est.estimate_async(frames[i], float(i)) is True
    est.close()
    stats = est.live_stats
    assert got[-1] == 2.0 and stats.delivered + stats.dropped == 6 and stats.out_of_order == 0


def test_a_slow_model_close_gives_up_after_the_timeout_and_counts_the_waiting_frame(caplog):
    from edgepose.live_stream import LiveStream

    def slow(rgb, ts):
        time.sleep(0.7)
        return ts

    got = []
    stream = LiveStream(slow, lambda result, ts: got.append(ts))
    frame = np.zeros((4, 4, 3), np.uint8)
    for ts in (1.0, 2.0, 3.0):
        stream.submit(frame, ts)
        time.sleep(0.05)
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="edgepose"):
        stream.close(timeout_s=0.3)
    assert time.monotonic() - t0 < 2.0 and "still busy" in caplog.text
    time.sleep(1.0)  # the frame in flight is finished by the worker; the waiting one never runs
    s = stream.stats
    assert got == [1.0] and (s.replaced, s.unfinished) == (1, 1) and s.delivered + s.dropped == s.offered == 3


def test_close_from_inside_the_callback_is_not_an_error(frames):
    holder = {}

    def callback(result, ts):
        holder["est"].close()

    est = live(callback)
    holder["est"] = est
    est.estimate_async(frames[0], 0.0)
    deadline = time.monotonic() + 10
    while est.live_stats.delivered == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert est.live_stats.callback_errors == 0 and est.backend.closed


def test_a_camera_run_ended_with_ctrl_c_keeps_its_output(monkeypatch, tmp_path, capsys):
    # Ctrl-C is the usual end of a camera session: the JSON lines and the overlay so far are kept.
    import json

    import cv2

    from edgepose.io import video

    class Interrupted:  # the squat clip as a camera at its own pace, then Ctrl-C after 20 frames
        name, live, fps = "camera:0", True, 30.0

        def frames(self, max_frames=None):
            for i, _, rgb in VideoSource.open_file(SQUATS).frames():
                if i == 20:
                    raise KeyboardInterrupt
                time.sleep(0.03)
                yield i, i * 33.3, rgb

        def release(self):
            pass

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(lambda index: Interrupted()))
    out, overlay = tmp_path / "cam.jsonl", tmp_path / "cam.mp4"
    assert run_cli(monkeypatch, "--camera", "0", "-o", str(out), "--draw", str(overlay)) == 0
    frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
    err = capsys.readouterr().err
    assert len(frames) + dropped_count(err) == 20 and frames[-1] == 19
    cap = cv2.VideoCapture(str(overlay))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(frames)
    cap.release()
