"""edgepose: on-device human pose estimation."""

from edgepose.data import COCO17_KEYPOINTS, FrameResult, Keypoint, Pose, Timings
from edgepose.drawing import draw_poses
from edgepose.errors import BackendError, EdgeposeError, ImageError, ModelError, VideoError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.smoothing import OneEuroParams

__version__ = "0.1.0"

__all__ = [
    "COCO17_KEYPOINTS", "BackendError", "EdgeposeError", "FrameResult", "ImageError", "Keypoint",
    "ModelError", "OneEuroParams", "Pose", "PoseEstimator", "PoseEstimatorOptions", "Timings",
    "VideoError", "draw_poses",
]  # fmt: skip
