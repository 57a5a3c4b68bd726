"""Geometry shared by every layer: boxes and their overlap, rotated regions of interest and the mapping
of model coordinates back to image pixels, keypoint distances and COCO's object keypoint similarity."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Boxes are (x0, y0, x1, y1) in pixels.


def intersection(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Area shared by `box` and each row of `boxes` (Nx4)."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    return np.clip(hi - lo, 0.0, None).prod(axis=1)


def area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of `box` with each row of `boxes`; 0 where the union is empty."""
    inter = intersection(box, boxes)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes; 0 when the union is empty."""
    return float(iou(np.asarray(a, dtype=np.float64), np.asarray([b], dtype=np.float64))[0])


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster of overlapping candidates becomes the
    score-weighted mean of its boxes and keypoints, with the best candidate's score."""
    remaining = np.argsort(-scores)
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


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclass(frozen=True)
class Roi:
    """A rectangle in original-image pixels, rotated by `rotation` radians about its centre.

    It may extend past the image (the outside reads as black). Normalized ROI coordinates (u, v) run
    0..1 along its width and height; `to_image` maps them back to image pixels.
    """

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0

    @classmethod
    def letterbox_to(cls, width: int, height: int, out_width: int, out_height: int) -> Roi:
        """The whole frame, centred and padded to the aspect ratio of an out_width x out_height input."""
        scale = max(width / out_width, height / out_height)
        return cls(width / 2.0, height / 2.0, out_width * scale, out_height * scale)

    def affine(self) -> tuple[float, float, float, float, float, float]:
        """(a, b, c, d, e, f) with x = a*u + b*v + c and y = d*u + e*v + f, for normalized (u, v)."""
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        a, b = self.width * cos, -self.height * sin
        d, e = self.width * sin, self.height * cos
        return a, b, self.cx - 0.5 * (a + b), d, e, self.cy - 0.5 * (d + e)

    def to_image(self, nx: np.ndarray, ny: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates normalized to the ROI (0..1) back to original-image pixels."""
        a, b, c, d, e, f = self.affine()
        return a * nx + b * ny + c, d * nx + e * ny + f

    def to_pixels(
        self, nx: np.ndarray, ny: np.ndarray, scores: np.ndarray, width: int, height: int, clip: bool = True
    ) -> np.ndarray:
        """Kx3 float64 (x, y, score) in image pixels from ROI-normalized coordinates, clipped to the
        frame unless `clip` is False (auxiliary points that may lie outside it)."""
        out = np.empty((len(scores), 3), dtype=np.float64)
        out[:, 0], out[:, 1] = self.to_image(nx, ny)
        out[:, 2] = scores
        if clip:
            clip_to_frame(out, width, height)
        return out


def clip_to_frame(kps: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip the x, y columns of a Kx3 array to the frame, in place."""
    np.clip(kps[:, 0], 0.0, width - 1.0, out=kps[:, 0])
    np.clip(kps[:, 1], 0.0, height - 1.0, out=kps[:, 1])
    return kps


def body_circle_roi(centre: Sequence[float], circle_point: Sequence[float], scale: float, rotate: bool = True) -> Roi:
    """MediaPipe's rectangle from two alignment points (pose_detection_to_roi, pose_landmarks_to_roi):
    the square around the circle through `circle_point` about `centre`, its side enlarged by `scale`,
    rotated (when `rotate`) so that the direction centre -> circle point points up."""
    dx, dy = float(circle_point[0] - centre[0]), float(circle_point[1] - centre[1])
    side = 2.0 * math.hypot(dx, dy) * scale
    rotation = normalize_radians(math.pi / 2 - math.atan2(-dy, dx)) if rotate else 0.0
    return Roi(float(centre[0]), float(centre[1]), side, side, rotation)


class SquareRoi(Roi):
    """An upright square: what MoveNet crops."""

    def __init__(self, cx: float, cy: float, size: float):
        super().__init__(cx, cy, size, size, 0.0)

    def __repr__(self) -> str:
        return f"SquareRoi(cx={self.cx}, cy={self.cy}, size={self.size})"

    @classmethod
    def letterbox(cls, width: int, height: int) -> SquareRoi:
        """The whole frame, padded to a square: how MoveNet was trained (tf.image.resize_with_pad)."""
        return cls(width / 2.0, height / 2.0, float(max(width, height)))

    @classmethod
    def center_crop(cls, width: int, height: int) -> SquareRoi:
        """The largest centred square inside the frame (cuts off the long side's ends)."""
        return cls(width / 2.0, height / 2.0, float(min(width, height)))

    @property
    def size(self) -> float:
        return self.width

    @property
    def x0(self) -> float:
        return self.cx - self.size / 2.0

    @property
    def y0(self) -> float:
        return self.cy - self.size / 2.0


def keypoint_gaps(poses: np.ndarray) -> np.ndarray:
    """NxN: median keypoint distance between poses i and j, as a fraction of pose i's size (NxKx3 input)."""
    xy = poses[:, :, :2]
    size = np.maximum(np.ptp(xy, axis=1).max(axis=1), 1.0)
    return np.median(np.linalg.norm(xy[:, None] - xy[None], axis=3), axis=2) / size[:, None]


def oks(
    d2: np.ndarray, scale: np.ndarray | float, sigmas: Sequence[float] | np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """COCO's object keypoint similarity, the one formula every caller uses: the mean over the keypoints
    in `mask` of exp(-d² / (2 s (2σ)²)), where `d2` (...xK) are squared pixel distances, `scale` (...)
    the object's area s and `sigmas` (K) the per-keypoint constants. 0 where `mask` selects nothing.

    The callers differ only in what they pass: COCO eval the annotated area and labelled keypoints,
    tracking and conversion parity the confident keypoints' box area.
    """
    k2 = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    e = np.exp(-d2 / (2 * np.asarray(scale, dtype=np.float64)[..., None] * k2))
    n = mask.sum(axis=-1)
    return np.where(n > 0, (e * mask).sum(axis=-1) / np.maximum(n, 1), 0.0)


def pose_oks(
    refs: np.ndarray,
    others: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
    min_score: float = 0.2,
    min_area: float = 1.0,
) -> np.ndarray:
    """OKS of every pose in `refs` (TxKx3 pixel (x, y, score)) against every pose in `others` (PxKx3),
    as a TxP matrix: two predictions compared as COCO compares a prediction with a label.

    Only keypoints scoring >= min_score in both count; the scale is the ref's confident-keypoint box
    area (w * h, at least min_area px²), so the matrix is not symmetric. 0 where no keypoint is
    confident in both.
    """
    ref_ok = refs[:, :, 2] >= min_score  # T x K
    both = ref_ok[:, None, :] & (others[None, :, :, 2] >= min_score)  # T x P x K
    big = np.where(ref_ok[..., None], refs[:, :, :2], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a ref with no confident keypoint: all-NaN
        extent = np.nan_to_num(np.nanmax(big, axis=1) - np.nanmin(big, axis=1))  # T x 2
    scale = np.maximum(extent[:, 0] * extent[:, 1], min_area)
    d2 = ((refs[:, None, :, :2] - others[None, :, :, :2]) ** 2).sum(axis=3)  # T x P x K
    return oks(d2, scale[:, None], sigmas, both)
