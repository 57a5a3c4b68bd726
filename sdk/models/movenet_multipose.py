"""MoveNet MultiPose Lightning (bottom-up, up to 6 people in one invoke).

Input: 1xHxWx3 uint8 with H and W multiples of 32, the longer side about 256 (the model's input is
dynamic; the shape is set once per frame size). Output 1x6x56: per person 17 x (y, x, score), then the
box (ymin, xmin, ymax, xmax) and the person score, all normalized to the input.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.bindings import Backend, dequantize
from edgepose.errors import ModelError
from edgepose.geometry import Roi
from edgepose.keypoints import COCO17
from edgepose.models.base import Estimate, normalized_input
from edgepose.resampling import RoiResampler

LONG_SIDE = 256
MULTIPLE = 32


def input_size_for(width: int, height: int, long_side: int = LONG_SIDE) -> tuple[int, int]:
    """(W, H): the frame's aspect ratio with the longer side `long_side`, both rounded to multiples of 32."""
    scale = long_side / max(width, height)
    # Halves round up (not to even), so equal aspect ratios always give equal sizes.
    return (
        max(MULTIPLE, math.floor(width * scale / MULTIPLE + 0.5) * MULTIPLE),
        max(MULTIPLE, math.floor(height * scale / MULTIPLE + 0.5) * MULTIPLE),
    )


def decode_multipose(output: np.ndarray, roi: Roi, width: int, height: int) -> list[Estimate]:
    """Per detected person: 17x3 (x, y, score) in image pixels and the person score, best first."""
    people = []
    for row in output.reshape(-1, 56).astype(np.float64):
        kps = row[:51].reshape(17, 3)
        people.append(Estimate(roi.to_pixels(kps[:, 1], kps[:, 0], kps[:, 2], width, height), float(row[55]), None))
    people.sort(key=lambda p: -p[1])
    return people


class MoveNetMultiPose:
    """Bottom-up MoveNet: up to 6 people from one invoke on the whole frame (a FrameModel)."""

    keypoint_layout = COCO17
    keypoint_names = COCO17.keypoints
    max_detections = 6

    def __init__(self, backend: Backend):
        inp, out = backend.inputs[0], backend.outputs[0]
        if len(inp.shape) != 4 or inp.shape[3] != 3 or out.shape[-1] != 56:
            raise ModelError(f"not a MoveNet MultiPose model: input {inp.shape}, output {out.shape}")
        self.backend = backend
        self._size: tuple[int, int] | None = None
        self._resample: RoiResampler | None = None

    def preprocess(self, rgb: np.ndarray) -> tuple[list[np.ndarray], Roi]:
        h, w = rgb.shape[:2]
        size = input_size_for(w, h)
        if size != self._size:
            self.backend.resize_input((1, size[1], size[0], 3))
            self._resample = RoiResampler(*size)
            self._size = size
        roi = Roi.letterbox_to(w, h, *size)
        pixels = self._resample(rgb, roi)[None]  # type: ignore[misc]
        return [normalized_input(pixels, None, self.backend.inputs[0])], roi

    def decode(
        self, outputs: list[np.ndarray], roi: Roi, width: int, height: int, max_people: int = 6
    ) -> list[Estimate]:
        return decode_multipose(dequantize(outputs[0], self.backend.outputs[0]), roi, width, height)[:max_people]
