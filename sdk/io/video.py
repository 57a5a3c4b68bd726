"""Video files and cameras through OpenCV (the `edgepose[video]` extra), written atomically."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.bindings.native_stderr import quiet_native_stderr
from edgepose.errors import VideoError
from edgepose.image import check_input_file
from edgepose.io.atomic import PendingFile, check_output_path, output_error

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


def _cv2():
    # FFmpeg reports damaged data on stderr from its decoder threads, outside any redirect of ours;
    # edgepose says what went wrong itself (see VideoSource.shortfall). Read when OpenCV first opens a
    # video, so it works even where cv2 was imported earlier; set it yourself to see FFmpeg's lines.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    # OpenCV's own warnings (a camera's select() timeout, a container's guessed frame count) likewise;
    # read when cv2 is first imported. Reads are not wrapped in an fd-2 redirect: from the decoding
    # thread it would hide the main thread's messages.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        import cv2
    except ImportError as e:
        raise VideoError('video and camera input need OpenCV: pip install "edgepose[video]"') from e
    return cv2


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoSource:
    """Frames of a file or camera as (index, timestamp_ms, RGB array).

    A file that stops decoding before the frame count its container declares (cut short, damaged) is
    not an error while reading: after `frames()`, `shortfall` says (decoded, expected), for the caller
    to report.
    """

    name: str
    fps: float
    frame_count: int | None  # None for cameras and files that do not say
    _cap: object
    decoded: int = 0
    _limit: int | None = None
    live: bool = False  # a camera: timestamps from the capture clock, frames may be dropped when behind

    @classmethod
    def open_file(cls, path: str | os.PathLike) -> VideoSource:
        cv2 = _cv2()
        path = Path(path)
        check_input_file(path, VideoError)
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise VideoError(f"{path}: cannot open as a video (corrupt file or unsupported codec)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        return cls(str(path), _fps(cap, cv2), count if count > 0 else None, cap)

    @classmethod
    def open_camera(cls, index: int) -> VideoSource:
        cv2 = _cv2()
        with quiet_native_stderr():
            cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            raise VideoError(f"camera {index}: cannot open (no such device, or it is busy)")
        return cls(f"camera:{index}", _fps(cap, cv2), None, cap, live=True)

    def frames(self, max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, timestamp ms, RGB) per frame: a file's timestamps are index / fps, a camera's are
        measured from its first frame."""
        cv2 = _cv2()
        cap = self._cap
        self.decoded = 0
        self._limit = max_frames
        start = None
        try:
            # No fd-2 redirect per read: OPENCV_FFMPEG_LOGLEVEL (set in _cv2) already quiets FFmpeg, and a
            # redirect of the process's fd 2 from a decoding thread would hide the main thread's messages.
            while max_frames is None or self.decoded < max_frames:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                i = self.decoded
                self.decoded += 1
                if self.live:
                    now = time.perf_counter()
                    start = now if start is None else start
                    t_ms = (now - start) * 1000.0
                else:
                    t_ms = i * 1000.0 / self.fps
                yield i, t_ms, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
        if self.decoded == 0:
            raise VideoError(f"{self.name}: no frame could be decoded")

    def release(self) -> None:
        """Close the file or camera without reading it (frames() releases it when it ends)."""
        self._cap.release()

    @property
    def shortfall(self) -> tuple[int, int] | None:
        """(frames decoded, frames expected) when decoding stopped before the declared count, else None.

        A count the container only estimates (from its duration; an MP4 trimmed without re-encoding)
        can be a little off, so up to 1% of it (at least one frame) missing is tolerated; `--max-frames`
        stopping the read is not a shortfall.
        """
        expected = self.frame_count
        if self._limit is not None and expected is not None:
            expected = min(expected, self._limit)
        if expected is None or self.decoded >= expected - max(1, expected // 100):
            return None
        return self.decoded, expected


def _fps(cap, cv2) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0


class VideoWriter:
    """Writes RGB frames to a temporary file of its own beside `path` (two writers of one output never
    share it), renamed onto `path` only by `close()`."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self._pending: PendingFile | None = None

    def write(self, rgb: np.ndarray) -> None:
        cv2 = _cv2()
        if self._writer is None:
            if self.path.suffix.lower() not in VIDEO_SUFFIXES:
                raise VideoError(f"{self.path}: not a video file name (use .mp4 or .avi)")
            check_output_path(self.path)
            try:
                self._pending = PendingFile(self.path)
            except OSError as e:
                raise output_error(self.path, e) from None
            h, w = rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            with quiet_native_stderr():
                self._writer = cv2.VideoWriter(str(self._pending.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise VideoError(f"{self.path}: OpenCV cannot write a video with this extension (try .mp4)")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            try:
                self._pending.commit()
            except OSError as e:
                raise output_error(self.path, e) from None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._pending is not None:
            self._pending.discard()
