"""MediaPipe's BlazePose person detector: SSD anchors, weighted NMS, one rotated person ROI each.

Model facts (mediapipe/modules/pose_detection): 224x224 RGB letterboxed with a zero border, floats in
[-1, 1]; 2254 anchors; per anchor a face box (cx, cy, w, h) and 4 keypoints as (x, y), in 224-pixel
units relative to the anchor centre, plus one score logit. Keypoint 0 is the hip centre and keypoint 1
lies on a circle around the whole body, so their distance is the body's radius and their direction
its rotation. The two outputs are found by their shapes (2254x12, 2254x1), not their order; a
converted file's edgepose metadata may give another input normalization.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.errors import ModelError
from edgepose.geometry import Roi, weighted_nms
from edgepose.models.base import CropBuffer, PersonDetection, model_metadata
from edgepose.models.families import FAMILIES

INPUT_SIZE = 224
SCORE_THRESHOLD = 0.5  # MediaPipe's; top-down pipelines pass their own
NMS_IOU = 0.3
SCORE_CLIP = 100.0
INPUT_NORMALIZATION = FAMILIES["person-detector"].normalization  # to [-1, 1]


def ssd_anchors() -> np.ndarray:
    """2254x2 anchor centres (x, y) normalized to the input, in the model's output order.

    MediaPipe's SsdAnchorsCalculator with strides 8, 16, 32, 32, 32: layers sharing a stride share
    one grid, each layer adding 2 anchors per cell (aspect 1.0 and the interpolated scale); with
    fixed_anchor_size every anchor is 1x1, so only the centres matter.
    """
    strides = (8, 16, 32, 32, 32)
    centres = []
    i = 0
    while i < len(strides):
        per_cell = 0
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            per_cell += 2
            j += 1
        n = math.ceil(INPUT_SIZE / strides[i])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres)


class BlazePoseDetector:
    """Finds people in square regions of a frame (the whole frame letterboxed, or tiles of it)."""

    def __init__(self, backend: Backend, metadata=None):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        shapes = sorted(tuple(o.shape[-2:]) for o in backend.outputs)
        if tuple(inp.shape) != (1, INPUT_SIZE, INPUT_SIZE, 3) or shapes != [(2254, 1), (2254, 12)]:
            raise ModelError(
                f"not a BlazePose detector: input {inp.shape}, outputs {[o.shape for o in backend.outputs]}"
            )
        self.backend = backend
        self.anchors = ssd_anchors()
        self._boxes_out = next(i for i, o in enumerate(backend.outputs) if o.shape[-1] == 12)
        self._scores_out = next(i for i, o in enumerate(backend.outputs) if o.shape[-1] == 1)
        metadata = model_metadata(backend, metadata)
        normalization = metadata.normalization if metadata else None
        # The usual [-1, 1] runs in place on a reused buffer; another normalization takes the general path.
        self._normalization = None if normalization in (None, INPUT_NORMALIZATION) else normalization
        self._crops = CropBuffer(INPUT_SIZE, INPUT_SIZE, FAMILIES["person-detector"].sampling)
        self._scaled = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
        self._in_spec = inp

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        """Model input for a batch of square regions."""
        n = len(rois)
        pixels = self._crops.fill(rgb, rois)
        if self._normalization is not None:
            return [to_input_dtype(self._normalization.apply(pixels), self._in_spec)]
        if self._scaled.shape[0] < n:
            self._scaled = np.zeros(pixels.shape, dtype=np.float32)
        # In place, into a reused buffer: a dozen tiles are 1.8M values per frame.
        x = self._scaled[:n]
        np.multiply(pixels, np.float32(2.0 / 255.0), out=x)
        x -= np.float32(1.0)
        return [to_input_dtype(x, self._in_spec)]

    def decode(
        self, outputs: list[np.ndarray], rois: list[Roi], score_threshold: float = SCORE_THRESHOLD
    ) -> list[PersonDetection]:
        """Everyone found in each ROI (batch item i is ROI i), best first within an ROI; not merged
        across ROIs."""
        people: list[PersonDetection] = []
        for i, roi in enumerate(rois):
            people += self._decode_one([o[i : i + 1] for o in outputs], roi, score_threshold)
        return people

    def _decode_one(self, outputs: list[np.ndarray], roi: Roi, score_threshold: float) -> list[PersonDetection]:
        specs = self.backend.outputs
        raw = dequantize(outputs[self._boxes_out], specs[self._boxes_out]).reshape(-1, 12).astype(np.float64)
        logits = dequantize(outputs[self._scores_out], specs[self._scores_out]).reshape(-1).astype(np.float64)
        logits = np.clip(logits, -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= score_threshold)
        if keep.size == 0:
            return []
        # Offsets are in input pixels relative to the anchor centre; anchors are 1x1 (normalized).
        values = raw[keep] / INPUT_SIZE
        values[:, 0::2] += self.anchors[keep, 0:1]
        values[:, 1::2] += self.anchors[keep, 1:2]
        values[:, 2:4] -= self.anchors[keep]  # w and h are sizes, not positions
        half = values[:, 2:4] / 2
        boxes = np.concatenate([values[:, 0:2] - half, values[:, 0:2] + half], axis=1)
        people = []
        for box, kps, score in weighted_nms(boxes, values[:, 4:], scores[keep], NMS_IOU):
            bx, by = roi.to_image(box[0::2], box[1::2])
            kx, ky = roi.to_image(kps[0::2], kps[1::2])
            face_box = (float(bx[0]), float(by[0]), float(bx[1]), float(by[1]))
            people.append(PersonDetection(score=score, face_box=face_box, keypoints=np.stack([kx, ky], axis=1)))
        return people
