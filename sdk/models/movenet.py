"""MoveNet SinglePose (Lightning / Thunder, any precision): one square crop in, 17 keypoints out.

Output 1x1x17x3: (y, x, score) per COCO-17 keypoint, normalized to the square model input; found by
its shape, not its position (converters may add or reorder outputs). Float inputs get the pixels as
they are (0..255), unless the file's edgepose metadata gives another normalization.
"""

from __future__ import annotations

import numpy as np

from edgepose.bindings import Backend, dequantize
from edgepose.errors import ModelError
from edgepose.geometry import Roi, SquareRoi
from edgepose.keypoints import COCO17
from edgepose.models.base import CropBuffer, Estimate, PersonDetection, model_metadata, normalized_input
from edgepose.models.families import FAMILIES

# Keypoint indices used by the torso-based crop.
_SHOULDERS = (5, 6)
_HIPS = (11, 12)
_TORSO = _SHOULDERS + _HIPS
# From MoveNet's published cropping algorithm: a keypoint counts as seen above this score, and the
# square covers 1.9x the torso extent or 1.2x the body extent from the hip centre, whichever is larger.
CROP_KEYPOINT_SCORE = 0.2
TORSO_EXPANSION = 1.9
BODY_EXPANSION = 1.2
# The detector's body circle has the hip centre as its centre and reaches the top of the head, so
# 1.2x its diameter frames the body as MoveNet's own crop rule would.
DETECTION_ROI_SCALE = 1.2


class MoveNetSinglePose:
    """Square ROIs of a frame through a MoveNet SinglePose model (a CropModel)."""

    keypoint_layout = COCO17
    keypoint_names = COCO17.keypoints

    def __init__(self, backend: Backend, metadata=None):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 3 or inp.shape[1] != inp.shape[2]:
            raise ModelError(f"not a MoveNet SinglePose model: input shape {inp.shape} is not 1xNxNx3")
        found = [i for i, o in enumerate(backend.outputs) if tuple(o.shape[-2:]) == (17, 3)]
        if not found:
            shapes = [o.shape for o in backend.outputs]
            raise ModelError(f"not a MoveNet SinglePose model: no 1x1x17x3 output among {shapes}")
        self._out_index = found[0]
        metadata = model_metadata(backend, metadata)
        self._normalization = metadata.normalization if metadata else None
        self.backend = backend
        self.input_size = inp.shape[1]
        self._crops = CropBuffer(self.input_size, self.input_size, FAMILIES["movenet"].sampling)
        self._in_spec = inp
        self._out_spec = backend.outputs[self._out_index]

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        """An upright square on the detected body circle: MoveNet was trained on upright people."""
        return person.roi(rotate=False, scale=DETECTION_ROI_SCALE)

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        return [normalized_input(self._crops.fill(rgb, rois), self._normalization, self._in_spec)]

    def decode(self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int) -> list[Estimate]:
        """Per ROI: keypoints, pose score (mean keypoint score) and the torso crop for the next frame."""
        kps = dequantize(outputs[self._out_index], self._out_spec).reshape(len(rois), 17, 3)
        results = []
        for k, roi in zip(kps, rois, strict=True):
            out = roi.to_pixels(k[:, 1], k[:, 0], k[:, 2], width, height)
            results.append(Estimate(out, float(out[:, 2].mean()), torso_crop(out, width, height)))
        return results


def torso_crop(kps: np.ndarray, width: int, height: int) -> SquareRoi | None:
    """The square MoveNet's published algorithm would crop next, or None to go back to the full frame.

    `kps`: 17x3 (x, y, score) in pixels. Centre: the hip midpoint. Half side: the larger of 1.9x the
    torso's and 1.2x the body's extent from it, capped at the farthest frame edge from the centre.
    """
    seen = kps[:, 2] > CROP_KEYPOINT_SCORE
    if not (seen[list(_SHOULDERS)].any() and seen[list(_HIPS)].any()):
        return None
    xy = kps[:, :2]
    cx, cy = (xy[_HIPS[0]] + xy[_HIPS[1]]) / 2.0
    torso = np.abs(xy[list(_TORSO)] - (cx, cy)).max()
    body = np.abs(xy[seen] - (cx, cy)).max()
    half = max(torso * TORSO_EXPANSION, body * BODY_EXPANSION)
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2.0 or half < 4.0:
        return None
    return SquareRoi(float(cx), float(cy), float(2.0 * half))
