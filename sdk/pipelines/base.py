"""What every pipeline offers the estimator, the one stage timer, the timed model runs they share and
the duplicate check of top-down and bottom-up alike."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from edgepose.bindings import Backend
from edgepose.geometry import Roi, pose_oks
from edgepose.keypoints import KeypointLayout
from edgepose.models.base import CropModel, Estimate, FrameModel, PersonDetection, PersonDetector
from edgepose.results import Timings

# Two poses more alike than this (OKS) are one person found twice (by two crops, tiles or decoder seeds).
DUPLICATE_OKS = 0.5
# Keypoints scoring at least this count when two poses are compared.
DUPLICATE_SCORE = 0.2


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


def drop_duplicates(
    results: list[Estimate], sigmas: Sequence[float], max_oks: float = DUPLICATE_OKS, min_score: float = DUPLICATE_SCORE
) -> list[Estimate]:
    """Keep the best-scoring of poses that are one person: an object keypoint similarity above `max_oks`
    in either direction (COCO's loosest "same person" level is 0.5), over the keypoints both score
    >= `min_score` on. Either direction, because a fragment (a head and shoulders from a crop beside
    the person) is judged at its own small scale as well as at the whole pose's."""
    if len(results) < 2:
        return results
    results = sorted(results, key=lambda r: -r.score)
    poses = np.stack([r.keypoints for r in results])
    sim = pose_oks(poses, poses, sigmas, min_score)
    same = np.maximum(sim, sim.T) > max_oks
    kept: list[int] = []
    for i in range(len(results)):
        if not any(same[i, j] for j in kept):
            kept.append(i)
    return [results[i] for i in kept]
