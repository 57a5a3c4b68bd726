"""What every pipeline offers the estimator, the one stage timer, the timed model runs they share and
the duplicate check of top-down and bottom-up alike."""

from __future__ import annotations

import time
from typing import NamedTuple, Protocol

import numpy as np

from edgepose.bindings import Backend
from edgepose.geometry import Roi, keypoint_gaps
from edgepose.keypoints import KeypointLayout
from edgepose.models.base import CropModel, Estimate, FrameModel, PersonDetection, PersonDetector
from edgepose.results import Timings

# Two poses whose keypoints are, at the median, closer than this fraction of the pose's size are one person.
DUPLICATE_DISTANCE = 0.1


class PipelineOutput(NamedTuple):
    people: list[Estimate]  # best first is not required: the estimator sorts
    roi: Roi | None = None  # the single-crop pipeline's crop (FrameResult.roi); None elsewhere


class Pipeline(Protocol):
    """Still images (`estimate`) and streams (`estimate_video`: state carried between frames)."""

    kind: str  # "single-crop", "top-down" or "bottom-up"
    keypoint_layout: KeypointLayout
    # The backends this pipeline runs, by role ("pose", "detector"), so that their owner can close and
    # describe them.
    backends: dict[str, Backend]

    def estimate(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput: ...

    def estimate_video(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput: ...

    def reset(self) -> None: ...


class StageTimer:
    """Adds the wall time since the previous lap to one stage of a Timings (milliseconds)."""

    __slots__ = ("timings", "_t")

    def __init__(self, timings: Timings):
        self.timings = timings
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        setattr(self.timings, stage, getattr(self.timings, stage) + (now - self._t) * 1000)
        self._t = now


def invoke(backend: Backend, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """One image: a plain invoke; several: one batched invoke where the backend allows."""
    return backend.run(inputs) if inputs[0].shape[0] == 1 else backend.run_batch(inputs)


def run_crops(model: CropModel, rgb: np.ndarray, rois: list[Roi], timings: Timings) -> list[Estimate]:
    """preprocess -> invoke -> decode for crops of one frame, each stage timed."""
    if not rois:
        return []
    timer = StageTimer(timings)
    inputs = model.preprocess(rgb, rois)
    timer.lap("preprocess")
    outputs = invoke(model.backend, inputs)
    timer.lap("inference")
    results = model.decode(outputs, rois, rgb.shape[1], rgb.shape[0])
    timer.lap("postprocess")
    return results


def run_frame(model: FrameModel, rgb: np.ndarray, max_people: int, timings: Timings) -> list[Estimate]:
    """preprocess -> invoke -> decode of a whole frame (bottom-up), each stage timed."""
    timer = StageTimer(timings)
    inputs, roi = model.preprocess(rgb)
    timer.lap("preprocess")
    outputs = model.backend.run(inputs)
    timer.lap("inference")
    results = model.decode(outputs, roi, rgb.shape[1], rgb.shape[0], max_people)
    timer.lap("postprocess")
    return results


def run_detector(
    detector: PersonDetector, rgb: np.ndarray, rois: list[Roi], score_threshold: float, timings: Timings
) -> list[PersonDetection]:
    """The person detector on regions of one frame (one batched invoke), each stage timed."""
    timer = StageTimer(timings)
    inputs = detector.preprocess(rgb, rois)
    timer.lap("preprocess")
    outputs = detector.backend.run_batch(inputs)
    timer.lap("inference")
    people = detector.decode(outputs, rois, score_threshold)
    timer.lap("postprocess")
    return people


def drop_duplicates(results: list[Estimate], distance: float) -> list[Estimate]:
    """Keep the best-scoring of poses whose keypoints nearly coincide (two crops on one person)."""
    if len(results) < 2:
        return results
    results = sorted(results, key=lambda r: -r.score)
    apart = keypoint_gaps(np.stack([r.keypoints for r in results])) > distance
    kept: list[int] = []
    for i in range(len(results)):
        if all(apart[i, j] for j in kept):
            kept.append(i)
    return [results[i] for i in kept]
