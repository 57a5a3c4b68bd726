"""MediaPipe's pose landmark filtering (mediapipe/modules/pose_landmark/pose_landmark_filtering.pbtxt).

Not the generic One-Euro of `one_euro`, because BlazePose's output is compared with MediaPipe's own, frame
by frame, and MediaPipe's filter differs from Casiez et al.'s in ways that show on a squat video:

- the speed is estimated from the last *raw* value, not the last filtered one;
- speeds are divided by the person's size in pixels (the object scale: twice the distance between
  the two auxiliary landmarks), so one setting fits a person near the camera and one far away;
- the sampling rate is 1 / (time since the last sample), 30 Hz until there are two samples, and a
  sample not later than the last one (or at time 0) is passed through untouched;
- each landmark's visibility is low-pass filtered (alpha 0.1).

MediaPipe filters the 33 body landmarks (min_cutoff 0.05, beta 80, derivate_cutoff 1) and, more
heavily, the two auxiliary landmarks the next frame's crop comes from (0.01, 10, 1): the crop stays
still while the person does, yet follows a sudden move. The world landmarks (metres) get their own
setting (0.1, 40, 1) without the object scale. `PoseLandmarkSmoother` filters the body and world
landmarks, in the estimator's tracker slot; `AuxiliaryRoiFilter` the second, where the pipeline carries the crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepose.geometry import Roi, body_circle_roi
from edgepose.models.base import Estimate
from edgepose.tracking.tracker import Tracked

# MediaPipe's pose_landmarks_to_roi / pose_detection_to_roi: the crop is the square around the body
# circle enlarged by 1.25 (edgepose.models.blazepose.ROI_SCALE; tests check they agree).
POSE_ROI_SCALE = 1.25
# Below this object scale (pixels) MediaPipe returns the landmarks unfiltered.
MIN_OBJECT_SCALE = 1e-6


@dataclass(frozen=True)
class LandmarkFilterParams:
    """MediaPipe's OneEuroFilter settings. Cutoffs in Hz on speeds in object sizes per second."""

    min_cutoff: float
    beta: float
    derivate_cutoff: float
    frequency: float = 30.0  # assumed until two timestamps give the real rate


# pose_landmark_filtering.pbtxt: "~0.01 alpha when a landmark is static, ~0.94 when it moves fast".
POSE_LANDMARKS = LandmarkFilterParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0)
# The same graph, for the auxiliary landmarks that place the next crop: "~0.002 alpha static, ~0.68 fast".
AUXILIARY_LANDMARKS = LandmarkFilterParams(min_cutoff=0.01, beta=10.0, derivate_cutoff=1.0)
# The same graph, for the world landmarks: metres, so no value scaling by the person's size.
WORLD_LANDMARKS = LandmarkFilterParams(min_cutoff=0.1, beta=40.0, derivate_cutoff=1.0)
VISIBILITY_ALPHA = 0.1  # VisibilitySmoothingCalculator's low_pass_filter


class MediaPipeOneEuro:
    """MediaPipe's OneEuroFilter (mediapipe/util/filtering/one_euro_filter.cc), one per value of an array
    of any fixed shape, all sharing the timestamps."""

    def __init__(self, params: LandmarkFilterParams):
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._frequency = self.params.frequency
        self._last_t = 0.0  # MediaPipe starts at time 0, so a first sample at 0 passes through
        self._raw: np.ndarray | None = None  # the last raw value (the speed is measured from it)
        self._x: np.ndarray | None = None  # the last filtered value
        self._dx: np.ndarray | None = None  # the filtered speed

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self._frequency)

    def __call__(self, value: np.ndarray, t: float, value_scale: float = 1.0) -> np.ndarray:
        """Filter `value` observed at `t` seconds; `value_scale` turns its units into object sizes."""
        value = np.asarray(value, dtype=np.float64)
        if t <= self._last_t:
            return value.copy()
        if self._last_t != 0.0:
            self._frequency = 1.0 / (t - self._last_t)
        self._last_t = t
        p = self.params
        if self._raw is None or self._raw.shape != value.shape:
            speed = np.zeros_like(value)
            self._dx, self._x = None, None
        else:
            speed = (value - self._raw) * value_scale * self._frequency
        # A first sample initializes each low-pass filter to itself (MediaPipe's LowPassFilter).
        alpha_d = self._alpha(p.derivate_cutoff)
        self._dx = speed if self._dx is None else alpha_d * speed + (1.0 - alpha_d) * self._dx
        alpha = self._alpha(p.min_cutoff + p.beta * np.abs(self._dx))
        self._x = value.copy() if self._x is None else alpha * value + (1.0 - alpha) * self._x
        self._raw = value.copy()
        return self._x.copy()


class PoseLandmarkSmoother:
    """The tracker of single-person BlazePose video: MediaPipe's filtering of the 33 body landmarks.

    One person, no IDs (MediaPipe's pose graph has none). Coordinates go through `MediaPipeOneEuro` with
    the person's size as the object scale; visibilities through a low-pass filter. Everything starts
    afresh whenever the person is lost. With `smoothing` False the keypoints pass through as they are.
    """

    def __init__(
        self,
        smoothing: bool = True,
        params: LandmarkFilterParams = POSE_LANDMARKS,
        visibility_alpha: float = VISIBILITY_ALPHA,
    ):
        self.smoothing = smoothing
        self.visibility_alpha = visibility_alpha
        self._coords = MediaPipeOneEuro(params)
        self._world = MediaPipeOneEuro(WORLD_LANDMARKS)
        self._visibility: np.ndarray | None = None

    def reset(self) -> None:
        self._coords.reset()
        self._world.reset()
        self._visibility = None

    def update(
        self, people: Sequence[Estimate], timestamp_ms: float, width: int, height: int, min_keypoint_score: float = 0.2
    ) -> list[Tracked]:
        if not people:
            self.reset()
            return []
        person = people[0]
        kps = np.array(person.keypoints, dtype=np.float64)
        world = person.world
        if person.roi is None:
            # Presence under MediaPipe's 0.5: MediaPipe has no landmarks for this frame and its filters
            # start afresh; edgepose still reports the pose (its own floor is lower), unfiltered.
            self.reset()
        elif self.smoothing:
            a = self.visibility_alpha
            vis = kps[:, 2]
            self._visibility = vis.copy() if self._visibility is None else a * vis + (1.0 - a) * self._visibility
            kps[:, 2] = self._visibility
            scale = object_scale(person.roi)
            if scale >= MIN_OBJECT_SCALE:
                kps[:, :2] = self._coords(kps[:, :2], timestamp_ms / 1000.0, 1.0 / scale)
            if world is not None:
                world = self._world(world, timestamp_ms / 1000.0)
        return [Tracked(None, kps, person.score, 0, world)]


class AuxiliaryRoiFilter:
    """The next frame's crop from MediaPipe-filtered auxiliary landmarks (hip centre, body-circle point).

    A BlazePose crop (`Roi` centred on the hip centre, side 2 * 1.25 * radius, rotated so the body
    stands upright) holds both auxiliary points exactly, so the filter takes and gives crops: the two
    points are recovered, filtered (with the raw crop's object scale, as MediaPipe does) and turned back
    into a crop the way pose_landmarks_to_roi does.
    """

    def __init__(self, params: LandmarkFilterParams = AUXILIARY_LANDMARKS):
        self._filter = MediaPipeOneEuro(params)

    def reset(self) -> None:
        self._filter.reset()

    def __call__(self, roi: Roi, t: float) -> Roi:
        """The filtered crop for a raw one observed at `t` seconds."""
        scale = object_scale(roi)
        if scale < MIN_OBJECT_SCALE:
            return roi
        points = self._filter(auxiliary_points(roi), t, 1.0 / scale)
        return roi_from_auxiliary(points[0], points[1])


def object_scale(roi: Roi) -> float:
    """MediaPipe's object scale of a pose crop: the body circle's diameter, in pixels."""
    return float(roi.width) / POSE_ROI_SCALE


def auxiliary_points(roi: Roi) -> np.ndarray:
    """2x2: the hip centre and the body-circle point a BlazePose crop was made from."""
    radius = object_scale(roi) / 2.0
    # rotation = pi/2 - atan2(-dy, dx), so the circle point lies at (sin r, -cos r) from the centre.
    dx, dy = radius * math.sin(roi.rotation), -radius * math.cos(roi.rotation)
    return np.array([[roi.cx, roi.cy], [roi.cx + dx, roi.cy + dy]], dtype=np.float64)


def roi_from_auxiliary(hip_centre: np.ndarray, circle_point: np.ndarray) -> Roi:
    """MediaPipe's pose_landmarks_to_roi: the body circle's square, rotated upright, enlarged by 1.25."""
    return body_circle_roi(hip_centre, circle_point, POSE_ROI_SCALE)
