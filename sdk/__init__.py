"""edgepose: on-device human pose estimation."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from edgepose.errors import BackendError, EdgeposeError, ImageError, ModelError, VideoError
from edgepose.keypoints import COCO17_KEYPOINTS
from edgepose.results import FrameResult, Keypoint, Pose, Timings, WorldKeypoint

if TYPE_CHECKING:
    from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
    from edgepose.io.drawing import draw_poses
    from edgepose.tracking.one_euro import OneEuroParams

__version__ = "0.1.0"

# Loaded on first use (PEP 562), so that `import edgepose` and the command line's start-up (`edgepose
# --help`, a mistyped option) do not pay for the pipelines, tracking and drawing.
_LAZY = {
    "PoseEstimator": "edgepose.estimator",
    "PoseEstimatorOptions": "edgepose.estimator",
    "OneEuroParams": "edgepose.tracking.one_euro",
    "draw_poses": "edgepose.io.drawing",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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
    "WorldKeypoint",
    "draw_poses",
]
