"""Axis-aligned boxes (x0, y0, x1, y1): overlap of one box with many, for NMS, merging and tracking."""

from __future__ import annotations

import numpy as np


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
