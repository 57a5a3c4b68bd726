"""Decoding on a reader thread: frames in order and complete for files, the newest frame for cameras,
errors and early exits handled, the source always released."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from edgepose.errors import VideoError
from edgepose.io.frame_reader import FrameReader
from edgepose.io.video import VideoSource
from tests.conftest import DATA_DIR


class FakeSource:
    """A VideoSource stand-in: `n` numbered frames, optionally produced every `period_s` like a camera."""

    def __init__(self, n: int, live: bool = False, period_s: float = 0.0, fail_at: int | None = None):
        self.name = "fake"
        self.live = live
        self.n = n
        self.period_s = period_s
        self.fail_at = fail_at
        self.released = threading.Event()
        self.read = 0

    def frames(self, max_frames=None):
        try:
            for i in range(self.n if max_frames is None else min(self.n, max_frames)):
                if self.fail_at == i:
                    raise VideoError("fake: decoding failed")
                if self.period_s:
                    time.sleep(self.period_s)
                self.read += 1
                yield i, i * 10.0, np.full((4, 4, 3), i % 256, dtype=np.uint8)
        finally:
            self.released.set()

    def release(self):
        self.released.set()


def test_a_file_is_read_whole_and_in_order_even_by_a_slow_consumer():
    src = FakeSource(50)
    seen = []
    for frame in FrameReader(src, depth=2):
        time.sleep(0.001)  # slower than the decoder: the decoder waits, nothing is dropped
        seen.append((frame.index, frame.t_ms, int(frame.rgb[0, 0, 0])))
    assert seen == [(i, i * 10.0, i) for i in range(50)]
    assert src.released.is_set()


def test_the_queue_is_bounded():
    src = FakeSource(100)
    reader = FrameReader(src, depth=3)
    it = iter(reader)
    next(it)
    time.sleep(0.2)  # let the decoder run ahead as far as it may
    # One frame handed out, `depth` queued, and one decoded frame waiting for room.
    assert src.read <= 1 + 3 + 1
    reader.close()
    assert src.released.is_set()


def test_a_camera_drops_its_oldest_frames_when_inference_is_slower():
    src = FakeSource(60, live=True, period_s=0.002)
    reader = FrameReader(src, depth=1)
    indices = []
    for frame in reader:
        time.sleep(0.01)  # inference 5x slower than the camera
        indices.append(frame.index)
    assert indices == sorted(indices) and indices[-1] == 59  # in order, and the newest frame is not lost
    assert reader.dropped > 0
    assert len(indices) + reader.dropped == 60  # every frame is either used or counted as dropped


def test_a_decoding_error_reaches_the_consumer_after_the_good_frames():
    src = FakeSource(10, fail_at=4)
    seen = []
    with pytest.raises(VideoError, match="decoding failed"):
        for frame in FrameReader(src):
            seen.append(frame.index)
    assert seen == [0, 1, 2, 3]
    assert src.released.is_set()


def test_leaving_the_loop_early_stops_the_thread_and_releases_the_source():
    src = FakeSource(10_000)
    reader = FrameReader(src, depth=2)
    for frame in reader:
        if frame.index == 3:
            break
    reader.close()
    assert not reader._thread.is_alive()
    assert src.released.is_set()
    assert src.read < 20


def test_an_exception_in_the_consumer_stops_the_thread():
    src = FakeSource(10_000)
    reader = FrameReader(src, depth=2)
    with pytest.raises(KeyboardInterrupt):
        for frame in reader:
            if frame.index == 2:
                raise KeyboardInterrupt  # Ctrl-C in the main thread
    assert not reader._thread.is_alive()
    assert src.released.is_set()


def test_a_reader_never_started_releases_its_source():
    src = FakeSource(5)
    FrameReader(src).close()
    assert src.released.is_set()


def test_the_real_video_gives_the_same_frames_through_the_thread(demo_video):
    direct = list(VideoSource.open_file(demo_video).frames())
    threaded = list(FrameReader(VideoSource.open_file(demo_video)))
    assert [f.index for f in threaded] == [i for i, _, _ in direct]
    assert [f.t_ms for f in threaded] == [t for _, t, _ in direct]
    assert all(np.array_equal(f.rgb, rgb) for f, (_, _, rgb) in zip(threaded, direct))
    assert all(a.captured <= b.captured for a, b in zip(threaded, threaded[1:]))


def test_a_camera_run_reports_dropped_frames_and_never_a_file(monkeypatch, tmp_path, capsys):
    # A "camera" whose frames arrive faster than inference (a video file read as a live source): the newest
    # frame wins, each JSON line is a frame that was estimated, and the drop count is one line on stderr.
    from edgepose.cli import main
    from edgepose.io import video

    squats = DATA_DIR / "fitness" / "pose_squats.mp4"

    def fake_camera(index: int) -> VideoSource:
        src = VideoSource.open_file(squats)
        return VideoSource(f"camera:{index}", src.fps, None, src._cap, live=True)

    monkeypatch.setattr(video.VideoSource, "open_camera", staticmethod(fake_camera))
    out = tmp_path / "cam.jsonl"
    for argv, name in ((["--camera", "0"], "camera:0"), ([str(squats)], str(squats))):
        monkeypatch.setattr("sys.argv", ["edgepose", "run", *argv, "-o", str(out)])
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 0
        frames = [json.loads(line)["frame"] for line in out.read_text().splitlines()]
        err = capsys.readouterr().err
        if name == "camera:0":
            dropped = int(err.split("edgepose: camera:0: ")[1].split(" frame(s) dropped")[0])
            assert dropped > 0 and len(frames) + dropped == 65  # every frame estimated or counted
            assert frames == sorted(frames) and frames[-1] == 64  # in order; the newest is never lost
        else:
            assert frames == list(range(65)) and "dropped" not in err  # a file: every frame, in order


def test_a_reader_closed_from_another_thread_ends_the_loop():
    src = FakeSource(10_000, live=True, period_s=0.05)  # a slow camera: the consumer mostly waits
    reader = FrameReader(src)
    threading.Timer(0.2, reader.close).start()
    t0 = time.perf_counter()
    seen = [frame.index for frame in reader]
    assert time.perf_counter() - t0 < 2.0 and len(seen) < 20
    assert src.released.is_set()
    assert list(reader) == []  # iterating a closed reader ends at once


def test_a_source_that_fails_to_start_reaches_the_consumer():
    class Broken(FakeSource):
        def frames(self, max_frames=None):
            raise VideoError("fake: cannot start decoding")

    src = Broken(5)
    with pytest.raises(VideoError, match="cannot start"):
        list(FrameReader(src))
    assert src.released.is_set()
