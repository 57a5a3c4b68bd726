"""Raspberry Pi camera modules through Picamera2 (libcamera), which `cv2.VideoCapture` often cannot open on
current Raspberry Pi OS.

Picamera2 is imported only when a `picam` camera is opened: it comes from the Pi's apt
(`sudo apt install python3-picamera2`), so the venv needs `--system-site-packages` to see it. Frames are
RGB at a model-friendly size (640x480 by default); timestamps are the sensor's own (the request metadata's
SensorTimestamp, ns), so they measure when the frame was exposed, not when Python got it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np

from edgepose.errors import VideoError

DEFAULT_SIZE = (640, 480)
# libcamera names formats by the order of a 32-bit word: its "BGR888" is R, G, B in memory, an RGB array.
RGB_FORMAT = "BGR888"
PICAM = re.compile(r"^picam(?::(\d+))?$")


def parse_camera(spec: str) -> tuple[str, int]:
    """`--camera` as given: "N" (OpenCV camera N) or "picam" / "picam:N" (Picamera2 camera N); returns
    ("opencv" | "picam", N). Raises VideoError for anything else."""
    text = str(spec).strip()
    if re.fullmatch(r"[0-9]+", text):
        return "opencv", int(text)
    match = PICAM.match(text)
    if match:
        return "picam", int(match.group(1) or 0)
    raise VideoError(f"--camera {spec!r}: give a number (an OpenCV camera) or picam / picam:N (Picamera2)")


class PicameraSource:
    """A Picamera2 camera with VideoSource's interface (frames(), release(), live)."""

    live = True
    frame_count = None
    shortfall = None

    def __init__(self, index: int = 0, size: tuple[int, int] = DEFAULT_SIZE):
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise VideoError(
                "picam: Picamera2 is not importable: on Raspberry Pi OS `sudo apt install python3-picamera2` "
                "and create the venv with --system-site-packages"
            ) from e
        except Exception as e:  # apt's Picamera2 (simplejpeg) is built for numpy 1: numpy 2 in the venv breaks it
            raise VideoError(
                f"picam: Picamera2 fails to import ({type(e).__name__}: {e}); apt's Picamera2 needs numpy<2 "
                "in the venv: pip install 'numpy<2'".replace("\n", " ")
            ) from e
        self.name = f"picam:{index}"
        self.decoded = 0
        try:
            self._cam = Picamera2(index)
        except Exception as e:  # IndexError for a camera number that is not there, RuntimeError when busy
            raise VideoError(f"{self.name}: cannot open ({type(e).__name__}: {e})".splitlines()[0]) from e
        try:
            config = self._cam.create_video_configuration(main={"size": tuple(size), "format": RGB_FORMAT})
            self._cam.configure(config)
            self._cam.start()
        except Exception as e:
            self.release()
            raise VideoError(f"{self.name}: cannot start ({type(e).__name__}: {e})".splitlines()[0]) from e
        self.fps = 30.0  # until the first frame's FrameDuration says

    def frames(self, max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, timestamp ms from the first frame, RGB) per frame, until `max_frames` or release()."""
        first_ns: int | None = None
        start = time.perf_counter()
        try:
            while max_frames is None or self.decoded < max_frames:
                try:
                    request = self._cam.capture_request()
                except Exception as e:
                    if self._cam is None:  # released from another thread: the end of the stream
                        return
                    raise VideoError(f"{self.name}: capture failed ({type(e).__name__}: {e})") from e
                try:
                    rgb = np.ascontiguousarray(request.make_array("main")[:, :, :3])
                    metadata = request.get_metadata() or {}
                finally:
                    request.release()
                sensor_ns = metadata.get("SensorTimestamp")
                if sensor_ns is not None:
                    first_ns = sensor_ns if first_ns is None else first_ns
                    t_ms = (sensor_ns - first_ns) / 1e6
                else:
                    t_ms = (time.perf_counter() - start) * 1000.0
                if self.decoded == 0 and metadata.get("FrameDuration"):
                    self.fps = 1e6 / float(metadata["FrameDuration"])
                i = self.decoded
                self.decoded += 1
                yield i, t_ms, rgb
        finally:
            self.release()

    def release(self) -> None:
        cam, self._cam = getattr(self, "_cam", None), None
        if cam is None:
            return
        for step in (cam.stop, cam.close):
            try:
                step()
            except Exception:  # noqa: BLE001, S112 - closing a camera that failed half-way must not raise
                continue
