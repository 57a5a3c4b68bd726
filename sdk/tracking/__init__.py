"""Tracking on video: stable IDs (`PoseTracker`) or the single-person smoother, both with One-Euro
filtering (`one_euro`), or MediaPipe's pose landmark filtering for BlazePose (`landmark_filter`). The one
place keypoints (and BlazePose's carried crop) are smoothed."""

from edgepose.tracking.landmark_filter import AuxiliaryRoiFilter, PoseLandmarkSmoother
from edgepose.tracking.one_euro import OneEuroFilter, OneEuroParams
from edgepose.tracking.tracker import PoseTracker, SinglePersonSmoother, Tracked, TrackerParams

__all__ = [
    "AuxiliaryRoiFilter",
    "OneEuroFilter",
    "OneEuroParams",
    "PoseLandmarkSmoother",
    "PoseTracker",
    "SinglePersonSmoother",
    "Tracked",
    "TrackerParams",
]
