"""A stand-in for Picamera2 (the Raspberry Pi's libcamera Python API) with the calls edgepose makes,
serving real frames of a video so that `--camera picam` runs off a Pi.

EDGEPOSE_PICAM_VIDEO: the video (looped); EDGEPOSE_PICAM_FPS: the sensor's frame rate, which sets the
SensorTimestamp and FrameDuration metadata (default 30); EDGEPOSE_PICAM_PACE_S: wall-clock seconds
between frames (default 1 / fps). Each frame is letterboxed into the configured size, as a 4:3 sensor
mode would frame the scene, and handed over in the byte order libcamera's format name means: "RGB888" is
B, G, R in memory, "BGR888" is R, G, B.
"""

from __future__ import annotations

import os
import time

import cv2
import numpy as np

__version__ = "0.3.99-standin"


def frame_at(index: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Frame `index` of the video (looped), letterboxed into `size`, as an RGB array."""
    cap = cv2.VideoCapture(os.environ["EDGEPOSE_PICAM_VIDEO"])
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index % count)
    ok, bgr = cap.read()
    cap.release()
    return _letterbox(bgr, size)[..., ::-1].copy()


def _letterbox(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    scale = min(w / bgr.shape[1], h / bgr.shape[0])
    nw, nh = round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)
    out = np.zeros((h, w, 3), np.uint8)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    return out


class CompletedRequest:
    def __init__(self, array: np.ndarray, metadata: dict):
        self._array, self._metadata, self.released = array, metadata, False

    def make_array(self, name: str) -> np.ndarray:
        if self.released:
            raise RuntimeError("request already released")
        if name != "main":
            raise KeyError(name)
        return self._array

    def get_metadata(self) -> dict:
        return dict(self._metadata)

    def release(self) -> None:
        self.released = True


class Picamera2:
    opened: list[Picamera2] = []

    def __init__(self, camera_num: int = 0):
        if camera_num >= len(self.global_camera_info()):
            raise IndexError(f"Camera {camera_num} not found")
        self.camera_num = camera_num
        self.config: dict | None = None
        self.started = self.closed = False
        self.sequence = 0
        self.fps = float(os.environ.get("EDGEPOSE_PICAM_FPS", "30"))
        self.pace_s = float(os.environ.get("EDGEPOSE_PICAM_PACE_S", str(1.0 / self.fps)))
        self._cap = cv2.VideoCapture(os.environ["EDGEPOSE_PICAM_VIDEO"])
        Picamera2.opened.append(self)

    @staticmethod
    def global_camera_info() -> list[dict]:
        return [{"Model": "imx708", "Location": 2, "Rotation": 180, "Num": 0}]

    def create_video_configuration(self, main: dict | None = None, **kwargs) -> dict:
        main = {"size": (1280, 720), "format": "XBGR8888", **(main or {})}
        return {"use_case": "video", "main": main, "controls": {"FrameDurationLimits": (33333, 33333)}}

    def configure(self, config: dict) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.config = config

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def _next(self) -> tuple[np.ndarray, dict]:
        ok, bgr = self._cap.read()
        if not ok:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
        time.sleep(self.pace_s)
        main = self.config["main"]
        frame = _letterbox(bgr, tuple(main["size"]))
        fmt = main["format"]
        if fmt == "RGB888":
            array = frame
        elif fmt == "BGR888":
            array = frame[..., ::-1].copy()
        elif fmt == "XBGR8888":  # R, G, B, 255
            array = np.dstack([frame[..., ::-1], np.full(frame.shape[:2], 255, np.uint8)])
        else:
            raise ValueError(f"format {fmt} not served by the stand-in")
        duration_us = round(1e6 / self.fps)
        metadata = {"SensorTimestamp": 1_000_000_000 + self.sequence * duration_us * 1000, "FrameDuration": duration_us}
        self.sequence += 1
        return array, metadata

    def capture_array(self, name: str = "main") -> np.ndarray:
        return self._next()[0]

    def capture_request(self) -> CompletedRequest:
        if not self.started:
            raise RuntimeError("Camera not running")
        return CompletedRequest(*self._next())

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started, self.closed = False, True
        self._cap.release()
