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
from dataclasses import dataclass

import numpy as np
from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.boxes import iou
from edgepose.errors import ModelError
from edgepose.model_metadata import ModelMetadata, Normalization, backend_metadata
from edgepose.preprocess import Roi, RoiResampler

INPUT_SIZE = 224
SCORE_THRESHOLD = 0.5
NMS_IOU = 0.3
ROI_SCALE = 1.25  # MediaPipe's pose_detection_to_roi: the body circle's square, enlarged by 1.25
SCORE_CLIP = 100.0
INPUT_NORMALIZATION = Normalization(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5))  # to [-1, 1]


@dataclass(frozen=True)
class PersonDetection:
    """One detected person, in original-image pixels."""

    score: float
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: np.ndarray  # 4x2: hip centre, body-circle point, then two more alignment points

    @property
    def center(self) -> tuple[float, float]:
        return float(self.keypoints[0, 0]), float(self.keypoints[0, 1])

    @property
    def radius(self) -> float:
        return float(np.hypot(*(self.keypoints[1] - self.keypoints[0])))

    def roi(self, rotate: bool = True, scale: float = ROI_SCALE) -> Roi:
        """The square around the body circle, enlarged by `scale`; rotated so the body stands upright."""
        cx, cy = self.center
        side = 2.0 * self.radius * scale
        rotation = 0.0
        if rotate:
            dx, dy = self.keypoints[1] - self.keypoints[0]
            rotation = normalize_radians(math.pi / 2 - math.atan2(-dy, dx))
        return Roi(cx, cy, side, side, rotation)

    def body_box(self) -> tuple[float, float, float, float]:
        cx, cy = self.center
        r = self.radius
        return cx - r, cy - r, cx + r, cy + r


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


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


class BlazePoseDetector:
    """Finds people in a frame (the whole frame, letterboxed to 224x224)."""

    def __init__(
        self, backend: Backend, score_threshold: float = SCORE_THRESHOLD, metadata: ModelMetadata | None = None
    ):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        shapes = sorted(tuple(o.shape[-2:]) for o in backend.outputs)
        if tuple(inp.shape) != (1, INPUT_SIZE, INPUT_SIZE, 3) or shapes != [(2254, 1), (2254, 12)]:
            raise ModelError(
                f"not a BlazePose detector: input {inp.shape}, outputs {[o.shape for o in backend.outputs]}"
            )
        self.backend = backend
        self.score_threshold = score_threshold
        self.anchors = ssd_anchors()
        self._boxes_out = next(i for i, o in enumerate(backend.outputs) if o.shape[-1] == 12)
        self._scores_out = next(i for i, o in enumerate(backend.outputs) if o.shape[-1] == 1)
        metadata = metadata or backend_metadata(backend)
        normalization = metadata.normalization if metadata else None
        # The usual [-1, 1] runs in place on a reused buffer; another normalization takes the general path.
        self._normalization = None if normalization in (None, INPUT_NORMALIZATION) else normalization
        self._resample = RoiResampler(INPUT_SIZE, INPUT_SIZE)
        self._batch = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
        self._scaled = np.zeros(self._batch.shape, dtype=np.float32)
        self._in_spec = inp

    def crop(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        """Model input for a batch of square regions (the whole frame letterboxed, or tiles of it)."""
        n = len(rois)
        if self._batch.shape[0] < n:
            self._batch = np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
            self._scaled = np.zeros(self._batch.shape, dtype=np.float32)
        for i, roi in enumerate(rois):
            self._resample(rgb, roi, out=self._batch[i])
        if self._normalization is not None:
            return [to_input_dtype(self._normalization.apply(self._batch[:n]), self._in_spec)]
        # In place, into a reused buffer: a dozen tiles are 1.8M values per frame.
        x = self._scaled[:n]
        np.multiply(self._batch[:n], np.float32(2.0 / 255.0), out=x)
        x -= np.float32(1.0)
        return [to_input_dtype(x, self._in_spec)]

    def decode(self, outputs: list[np.ndarray], roi: Roi, max_people: int | None = None) -> list[PersonDetection]:
        specs = self.backend.outputs
        raw = dequantize(outputs[self._boxes_out], specs[self._boxes_out]).reshape(-1, 12).astype(np.float64)
        logits = dequantize(outputs[self._scores_out], specs[self._scores_out]).reshape(-1).astype(np.float64)
        logits = np.clip(logits, -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        # Offsets are in input pixels relative to the anchor centre; anchors are 1x1 (normalized).
        values = raw[keep] / INPUT_SIZE
        values[:, 0::2] += self.anchors[keep, 0:1]
        values[:, 1::2] += self.anchors[keep, 1:2]
        values[:, 2:4] -= self.anchors[keep]  # w and h are sizes, not positions
        boxes = np.stack([values[:, 0] - values[:, 2] / 2, values[:, 1] - values[:, 3] / 2,
                          values[:, 0] + values[:, 2] / 2, values[:, 1] + values[:, 3] / 2], axis=1)  # fmt: skip
        merged = weighted_nms(boxes, values[:, 4:], scores[keep], NMS_IOU)
        people = []
        for box, kps, score in merged[:max_people]:
            bx, by = roi.to_image(box[0::2], box[1::2])
            kx, ky = roi.to_image(kps[0::2], kps[1::2])
            people.append(PersonDetection(
                score=score,
                face_box=(float(bx[0]), float(by[0]), float(bx[1]), float(by[1])),
                keypoints=np.stack([kx, ky], axis=1),
            ))  # fmt: skip
        return people


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster of overlapping candidates becomes the
    score-weighted mean of its boxes and keypoints, with the best candidate's score."""
    order = np.argsort(-scores)
    remaining = order
    merged = []
    while remaining.size:
        best = remaining[0]
        overlap = iou(boxes[best], boxes[remaining]) > iou_threshold
        cluster = remaining[overlap]
        weights = scores[cluster][:, None]
        box = (boxes[cluster] * weights).sum(axis=0) / weights.sum()
        kps = (keypoints[cluster] * weights).sum(axis=0) / weights.sum()
        merged.append((box, kps, float(scores[best])))
        remaining = remaining[~overlap]
    return merged
