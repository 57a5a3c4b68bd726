"""Single-crop pipeline: one person, one crop, no detector (MoveNet SinglePose's own algorithm).

Stills: the letterboxed frame, then a second pass on the torso crop the first pass found
(`refine_stills`). Video: the crop carried from the previous frame's pose (`roi_tracking`), back to the
whole frame when the person is lost in it.
"""

from __future__ import annotations

import numpy as np

from edgepose.geometry import Roi, SquareRoi
from edgepose.models.base import CropModel
from edgepose.pipelines.base import PipelineOutput, run_crops
from edgepose.results import Timings


class SingleCrop:
    kind = "single-crop"

    def __init__(self, model: CropModel, min_pose_score: float, refine_stills: bool = True, roi_tracking: bool = True):
        self.model = model
        self.keypoint_layout = model.keypoint_layout
        self.backends = {"pose": model.backend}
        self.min_pose_score = min_pose_score
        self.refine_stills = refine_stills
        self.roi_tracking = roi_tracking
        self._roi: Roi | None = None

    def reset(self) -> None:
        self._roi = None

    def estimate(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput:
        h, w = rgb.shape[:2]
        roi = SquareRoi.letterbox(w, h)
        (found,) = run_crops(self.model, rgb, [roi], timings)
        crop = found.roi if self.refine_stills else None
        if crop is not None:
            (refined,) = run_crops(self.model, rgb, [crop], timings)
            # The crop's score is not comparable with the letterbox's (the person is 2-4x larger in
            # it); the crop wins unless the person vanished from it.
            if refined.score >= self.min_pose_score:
                found, roi = refined, crop
        return PipelineOutput([found] if found.score >= self.min_pose_score else [], roi)

    def estimate_video(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput:
        h, w = rgb.shape[:2]
        full = SquareRoi.letterbox(w, h)
        roi = self._roi if (self._roi is not None and self.roi_tracking) else full
        (found,) = run_crops(self.model, rgb, [roi], timings)
        if found.score < self.min_pose_score and roi is not full:
            # Lost the person inside the carried crop: look at the whole frame before giving up.
            roi = full
            (found,) = run_crops(self.model, rgb, [roi], timings)
        if found.score < self.min_pose_score:
            self._roi = None
            return PipelineOutput([], roi)
        self._roi = found.roi
        return PipelineOutput([found], roi)
