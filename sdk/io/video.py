"""Video files and cameras through OpenCV (the `edgepose[video]` extra), written atomically."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.bindings.native_stderr import quiet_native_stderr
from edgepose.errors import VideoError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise VideoError('video and camera input need OpenCV: pip install "edgepose[video]"') from e
    return cv2


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoSource:
    """Frames of a file or camera as (index, timestamp_ms, RGB array)."""

    name: str
    fps: float
    frame_count: int | None  # None for cameras and files that do not say
    _cap: object

    @classmethod
    def open_file(cls, path: Path) -> VideoSource:
        cv2 = _cv2()
        if not path.is_file():
            raise VideoError(f"{path}: no such file")
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
        return cls(f"camera:{index}", _fps(cap, cv2), None, cap)

    def frames(self, max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        cv2 = _cv2()
        cap = self._cap
        i = 0
        try:
            while max_frames is None or i < max_frames:
                with quiet_native_stderr():
                    ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                yield i, i * 1000.0 / self.fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise VideoError(f"{self.name}: no frame could be decoded")


def _fps(cap, cv2) -> float:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0


class VideoWriter:
    """Writes RGB frames to a temporary file beside `path`, renamed onto `path` only by `close()`."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")

    def write(self, rgb: np.ndarray) -> None:
        cv2 = _cv2()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise VideoError(f"{self.path}: cannot write a video with this extension (try .mp4)")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._tmp.replace(self.path)
            self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
