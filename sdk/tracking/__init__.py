"""Tracking on video: stable IDs (`PoseTracker`) or the single-person smoother, both with One-Euro
filtering (`one_euro`). The one place keypoints are smoothed."""

from edgepose.tracking.one_euro import OneEuroFilter, OneEuroParams
from edgepose.tracking.tracker import PoseTracker, SinglePersonSmoother, Tracked, TrackerParams

__all__ = ["OneEuroFilter", "OneEuroParams", "PoseTracker", "SinglePersonSmoother", "Tracked", "TrackerParams"]
