"""`--camera N` (OpenCV) or `--camera picam[:N]` (Picamera2, a Raspberry Pi camera module)."""

from __future__ import annotations

from edgepose.errors import VideoError
from edgepose.io.picamera import PicameraSource, parse_camera
from edgepose.io.video import VideoSource


def open_camera(spec: str | int) -> VideoSource | PicameraSource:
    """Open the camera `--camera` names. On a Raspberry Pi, an OpenCV camera that does not open gets a
    hint: camera modules on current Raspberry Pi OS are libcamera cameras, which OpenCV often cannot
    open, and Picamera2 can."""
    kind, index = parse_camera(str(spec))
    if kind == "picam":
        return PicameraSource(index)
    try:
        return VideoSource.open_camera(index)
    except VideoError as e:
        if _on_raspberry_pi():
            raise VideoError(f"{e}; a Raspberry Pi camera module is a libcamera camera: try --camera picam") from e
        raise


def _on_raspberry_pi() -> bool:
    from edgepose.bench.device_info import board

    return (board() or "").startswith("Raspberry Pi")
