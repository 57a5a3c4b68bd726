"""Keypoint layouts: names, skeleton edges and OKS constants of COCO-17 and BlazePose-33."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO17_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO17_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip

# COCO's per-keypoint OKS constants, in COCO-17 order.
COCO17_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

BLAZEPOSE33_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip

BLAZEPOSE33_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
    (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

# Where each COCO-17 keypoint sits among BlazePose's 33 (for metrics against COCO ground truth).
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

# OKS constants: COCO's where BlazePose has the COCO keypoint, the nearest COCO part's otherwise (eye
# corners and mouth like eyes and ears, fingers like wrists, heels and toes like ankles).
BLAZEPOSE33_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.035, 0.035, 0.026, 0.026, 0.079, 0.079, 0.072,
    0.072, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089,
    0.089, 0.089, 0.089, 0.089, 0.089,
)  # fmt: skip

# Per-keypoint OKS constant for layouts without published ones: about COCO's mean.
UNIFORM_SIGMA = 0.05


@dataclass(frozen=True)
class KeypointLayout:
    """What a model's keypoints are: names in output order, skeleton edges, OKS constants."""

    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]


COCO17 = KeypointLayout("coco17", COCO17_KEYPOINTS, COCO17_SKELETON, COCO17_SIGMAS)
BLAZEPOSE33 = KeypointLayout("blazepose33", BLAZEPOSE33_KEYPOINTS, BLAZEPOSE33_SKELETON, BLAZEPOSE33_SIGMAS)
NO_KEYPOINTS = KeypointLayout("none", (), (), ())


def layout_for(names: tuple[str, ...]) -> KeypointLayout:
    """The known layout with these names; 17 other names keep COCO's skeleton and constants (a model
    trained on COCO with its own naming); else no skeleton and uniform OKS constants."""
    for layout in (COCO17, BLAZEPOSE33):
        if names == layout.keypoints:
            return layout
    if len(names) == len(COCO17_KEYPOINTS):
        return KeypointLayout("coco17", tuple(names), COCO17_SKELETON, COCO17_SIGMAS)
    return KeypointLayout("custom", tuple(names), (), (UNIFORM_SIGMA,) * len(names))


def sigmas_for(k: int) -> np.ndarray:
    """OKS constants for poses with k keypoints when nothing says which layout they are: COCO's for 17,
    else uniform (callers that know the layout pass its own sigmas)."""
    return np.asarray(COCO17_SIGMAS) if k == len(COCO17_SIGMAS) else np.full(k, UNIFORM_SIGMA)


def to_coco17(kps: np.ndarray) -> np.ndarray:
    """The COCO-17 subset of a 33xN BlazePose keypoint array."""
    return kps[list(BLAZEPOSE_TO_COCO17)]
