"""Bottom-up pipeline: the whole frame in one invoke, everyone decoded from it (PoseNet, MoveNet MultiPose)."""

from __future__ import annotations

import numpy as np

from edgepose.models.base import FrameModel
from edgepose.pipelines.base import PipelineOutput, StageTimer, drop_duplicates, run_frame
from edgepose.results import Timings


class BottomUp:
    kind = "bottom-up"

    def __init__(self, model: FrameModel, max_people: int, min_pose_score: float):
        self.model = model
        self.keypoint_layout = model.keypoint_layout
        self.backends = {"pose": model.backend}
        self.max_people = max_people
        self.min_pose_score = min_pose_score

    def estimate(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput:
        # Decode everyone the model can report, then keep the best: the decoder finds people in the order of
        # their strongest keypoint, not of their pose score.
        found = run_frame(self.model, rgb, self.model.max_detections, timings)
        timer = StageTimer(timings)
        people = [p for p in found if p.score >= self.min_pose_score]
        # The published decoder's NMS only compares one keypoint at a time; whole-pose duplicates slip through.
        people = drop_duplicates(people, self.keypoint_layout.sigmas)
        timer.lap("postprocess")
        return PipelineOutput(people[: self.max_people])

    estimate_video = estimate

    def reset(self) -> None:
        pass
