"""edgepose: on-device human pose estimation."""

from edgepose.errors import BackendError, EdgeposeError, ImageError, ModelError, VideoError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.io.drawing import draw_poses
from edgepose.keypoints import COCO17_KEYPOINTS
from edgepose.results import FrameResult, Keypoint, Pose, Timings
from edgepose.tracking.one_euro import OneEuroParams

__version__ = "0.1.0"

__all__ = [
    "COCO17_KEYPOINTS",
    "BackendError",
    "EdgeposeError",
    "FrameResult",
    "ImageError",
    "Keypoint",
    "ModelError",
    "OneEuroParams",
    "Pose",
    "PoseEstimator",
    "PoseEstimatorOptions",
    "Timings",
    "VideoError",
    "draw_poses",
]
