"""Top-down: a person detector (the family table's person-detector row) -> one pose-model crop per person.

Stills: detector on the whole frame plus a grid of overlapping tiles (the detector finds people
down to about a sixth of the frame height on its own; tiles at half the frame size reach the small
people in the back of a street or a field), then one batched pose invoke for all crops.
Video: each person's next crop comes from their own pose (no detector, like the single-person fast
path); the detector runs again every `redetect_every` frames, or at once when nobody is tracked, to
pick up people who walked in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.geometry import Roi, area, intersection, keypoint_gaps, weighted_nms
from edgepose.models.base import CropModel, Estimate, PersonDetection, PersonDetector
from edgepose.pipelines.base import PipelineOutput, StageTimer, drop_duplicates, run_crops, run_detector
from edgepose.results import Timings

# Below this a crop holds no person (MoveNet's mean keypoint score, BlazePose's presence).
LOST_SCORE = 0.15


@dataclass
class TopDownParams:
    max_people: int = 10  # video: people tracked at once (stills: the estimator keeps the best)
    max_detections: int = 20  # stills: crops run per frame, best detector scores first
    # MediaPipe uses 0.5 for its one-person use; 0.3 finds the partly hidden people in a group photo
    # (11 of the 12 annotated people in the shared COCO photos instead of 9).
    detection_score: float = 0.3
    tile_fraction: float | None = 0.4  # tile side / longer frame side; None: the whole frame only
    redetect_every: int = 10  # video frames between detector runs while people are tracked
    min_pose_score: float = 0.15  # the caller filters by it; here only a lower floor is applied
    refine_stills: bool = True  # stills: a second pass on each person's own crop
    carry_crops: bool = True  # video: each person's next crop from their pose; False: the detector every frame


def detector_rois(width: int, height: int, tile_fraction: float | None) -> list[Roi]:
    """The whole frame, then square tiles overlapping by at least 40% of their side."""
    rois = [Roi.letterbox_to(width, height, 1, 1)]
    if tile_fraction is None:
        return rois
    side = tile_fraction * max(width, height)
    for_axis = []
    for extent in (width, height):
        if extent <= side:
            for_axis.append([extent / 2.0])
            continue
        n = math.ceil((extent - side) / (0.6 * side)) + 1
        for_axis.append(list(np.linspace(side / 2.0, extent - side / 2.0, n)))
    rois += [Roi(float(x), float(y), side, side) for y in for_axis[1] for x in for_axis[0]]
    return rois


class PersonFinder:
    """The person detector over the whole frame and its tiles, merged into one list of people."""

    def __init__(self, detector: PersonDetector, tile_fraction: float | None, score_threshold: float):
        self.detector = detector
        self.tile_fraction = tile_fraction
        self.score_threshold = score_threshold

    def find(self, rgb: np.ndarray, timings: Timings) -> list[PersonDetection]:
        h, w = rgb.shape[:2]
        rois = detector_rois(w, h, self.tile_fraction)
        people = run_detector(self.detector, rgb, rois, self.score_threshold, timings)
        timer = StageTimer(timings)
        people = merge_people(people)
        timer.lap("postprocess")
        return people


def merge_people(people: list[PersonDetection]) -> list[PersonDetection]:
    """One detection per person across tiles: weighted NMS on the body boxes (hip centre +- radius)."""
    if len(people) < 2:
        return people
    boxes = np.array([p.body_box() for p in people])
    extra = np.array([[*p.face_box, *p.keypoints.reshape(-1)] for p in people])
    scores = np.array([p.score for p in people])
    merged = weighted_nms(boxes, extra, scores, 0.5)
    people = [PersonDetection(score=s, face_box=tuple(e[:4]), keypoints=e[4:].reshape(-1, 2)) for _, e, s in merged]
    return [p for p in people if not any(_nested(p, q) for q in people if q is not p)]


def _nested(small: PersonDetection, big: PersonDetection) -> bool:
    """A detection of a body part (a head, a torso) inside a larger, surer detection of the same person."""
    if small.radius >= 0.5 * big.radius or small.score > big.score:
        return False
    a, b = np.array(small.body_box()), np.array([big.body_box()])
    return bool(intersection(a, b)[0] >= 0.8 * area(a))


class TopDown:
    """Detector -> crops -> one batched pose invoke; carried crops between detector runs on video."""

    kind = "top-down"

    def __init__(self, finder: PersonFinder, model: CropModel, params: TopDownParams):
        self.finder = finder
        self.model = model
        self.params = params
        self.keypoint_layout = model.keypoint_layout
        self.backends = {"pose": model.backend, "detector": finder.detector.backend}
        self._carried: list[Roi] = []
        self._frames_since_detection = 0

    @property
    def _floor(self) -> float:
        # Not the caller's threshold: a stricter one would change which pass's keypoints are kept.
        return min(self.params.min_pose_score, LOST_SCORE)

    def reset(self) -> None:
        self._carried = []
        self._frames_since_detection = 0

    def estimate(self, rgb: np.ndarray, timings: Timings) -> PipelineOutput:
        """People in a still image (detector on the frame and its tiles)."""
        people = self.finder.find(rgb, timings)
        # Every detection gets a crop: the pose score, not the detector's, decides who is kept.
        rois = [self.model.roi_for_detection(p) for p in people[: self.params.max_detections]]
        results = self._poses(rgb, rois, timings)
        if self.params.refine_stills:
            # A second pass on each person's own crop (MoveNet's torso crop, BlazePose's landmark
            # ROI) frames them as the model was trained; it wins unless it lost the person or drifted
            # onto a neighbour with a lower score than the first pass had.
            rois = [r.roi if r.roi is not None else _roi_around(r.keypoints) for r in results]
            refined = self._poses(rgb, rois, timings, dedupe=False)
            timer = StageTimer(timings)
            results = [b if _refined_wins(a, b, self._floor) else a for a, b in zip(results, refined)]
            results = drop_duplicates(results, self.keypoint_layout.sigmas)
            timer.lap("postprocess")
        return PipelineOutput(results)

    def estimate_video(
        self, rgb: np.ndarray, timings: Timings, carry: Callable[[Roi], Roi] | None = None
    ) -> PipelineOutput:
        """People in one video frame: carried crops, plus the detector every few frames.

        `carry` maps each kept person's next crop (the model's) to the one carried into the next frame;
        the estimator passes MediaPipe's filter of BlazePose's auxiliary landmarks here, which holds
        state for one person, so only with `max_people` 1. None carries the model's crops as they are.
        """
        rois = list(self._carried)
        self._frames_since_detection += 1
        if not rois or self._frames_since_detection >= self.params.redetect_every:
            self._frames_since_detection = 0
            people = self.finder.find(rgb, timings)
            rois += [self.model.roi_for_detection(p) for p in people if not _covered(p, self._carried)]
        results = self._poses(rgb, rois[: self.params.max_detections], timings)
        results.sort(key=lambda r: -r.score)
        results = results[: self.params.max_people]
        if self.params.carry_crops:
            self._carried = [r.roi if carry is None else carry(r.roi) for r in results if r.roi is not None]
        return PipelineOutput(results)

    def _poses(self, rgb: np.ndarray, rois: list[Roi], timings: Timings, dedupe: bool = True) -> list[Estimate]:
        results = run_crops(self.model, rgb, rois, timings)
        if dedupe and results:
            timer = StageTimer(timings)
            results = [r for r in results if r.score >= self._floor]
            results = drop_duplicates(results, self.keypoint_layout.sigmas)
            timer.lap("postprocess")
        return results


def _refined_wins(first: Estimate, refined: Estimate, floor: float) -> bool:
    """Whether the second pass's pose replaces the first's: it found the person, and either stayed on
    them or scored higher than the first pass did (a first pass on a loose crop at the frame's edge may
    be a poor pose that the torso crop corrects)."""
    if refined.score < floor:
        return False
    return refined.score > first.score or _same_person(first.keypoints, refined.keypoints)


def _same_person(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a refined pose stayed on its person instead of drifting onto a neighbour in the crop."""
    return bool(keypoint_gaps(np.stack([a, b]))[0, 1] < 0.25)


def _roi_around(kps: np.ndarray) -> Roi:
    lo, hi = kps[:, :2].min(axis=0), kps[:, :2].max(axis=0)
    side = 1.25 * float(max(hi - lo))
    return Roi(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, side, side)


def _covered(person: PersonDetection, rois: list[Roi]) -> bool:
    """Whether a detected person's hip centre lies inside the inner half of a carried crop."""
    cx, cy = person.center
    return any(abs(cx - r.cx) < r.width / 4 and abs(cy - r.cy) < r.height / 4 for r in rois)
