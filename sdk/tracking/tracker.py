"""Multi-person pose tracking: stable IDs across video frames, with One-Euro smoothing per track.

Each frame, the tracks' last raw keypoints are compared with the new detections (OKS or keypoint-box IoU),
the pairs are assigned to maximize total similarity, and unmatched detections start new tracks.
No motion model: at video frame rates a person moves little between frames, and keypoint shapes tell
people apart where their boxes overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from edgepose.geometry import box_iou, pose_oks
from edgepose.keypoints import sigmas_for
from edgepose.models.base import Estimate
from edgepose.tracking.one_euro import OneEuroFilter, OneEuroParams

# scipy's Hungarian solver, imported on the first assignment that needs it (scipy.optimize takes ~0.3 s
# to import, which a single-person run or a still never pays); None where scipy is not installed.
_NOT_LOADED = object()
linear_sum_assignment: Callable | None | object = _NOT_LOADED


def _solver() -> Callable | None:
    global linear_sum_assignment
    if linear_sum_assignment is _NOT_LOADED:
        try:
            from scipy.optimize import linear_sum_assignment as solver
        except ImportError:  # scipy is optional at runtime; _assign falls back to a greedy match
            solver = None
        linear_sum_assignment = solver
    return linear_sum_assignment  # type: ignore[return-value]


# OKS area floor as a fraction of the frame's longer side, squared: a track whose confident keypoints
# are one point or collinear (two eyes) has zero box area, which would make OKS a step function.
_MIN_AREA_FRAC = 0.02


@dataclass(frozen=True)
class TrackerParams:
    metric: str = "oks"  # "oks" or "iou"
    # OKS 0.1 (far below COCO's loosest "same person" level, 0.5): on a 5 fps street video the same
    # person scores 0.25-0.85 from one frame to the next (motion adds to detector noise) and two different
    # people 0.00; two people standing shoulder to shoulder score ~0.02. With the optimal assignment a low
    # gate costs nothing where people are apart. IoU 0.3 is SORT's gate.
    min_similarity: float | None = None  # None: 0.1 for OKS, 0.3 for IoU
    max_missed: int = 5  # consecutive unseen frames a confirmed track survives; it dies on the next miss
    min_hits: int = 1  # consecutive frames a new track must be seen before it gets an ID and is reported
    smoothing: bool = True
    smoothing_params: OneEuroParams = field(default_factory=OneEuroParams)

    def __post_init__(self) -> None:
        if self.metric not in ("oks", "iou"):
            raise ValueError(f"metric must be 'oks' or 'iou', not {self.metric!r}")
        if self.min_similarity is None:
            object.__setattr__(self, "min_similarity", 0.1 if self.metric == "oks" else 0.3)
        if self.max_missed < 0 or self.min_hits < 1:
            raise ValueError("need max_missed >= 0 and min_hits >= 1")


def keypoint_box(kpts: np.ndarray, min_score: float) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of the keypoints scoring >= min_score, or None when there are none."""
    xy = kpts[kpts[:, 2] >= min_score, :2]
    if len(xy) == 0:
        return None
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def oks_similarity(
    ref: np.ndarray,
    other: np.ndarray,
    sigmas: Sequence[float] | np.ndarray,
    min_score: float = 0.2,
    min_area: float = 1.0,
) -> float:
    """COCO object keypoint similarity of two Kx3 (x, y, score) pixel arrays.

    Only keypoints scoring >= min_score in both count. The scale is `ref`'s confident-keypoint box area
    (w * h, at least min_area px^2), so the value is not symmetric in its two arguments.
    Returns 0 when no keypoint is confident in both.
    """
    return float(pose_oks(ref[None], other[None], sigmas, min_score, min_area)[0, 0])


def _assign(sim: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """(row, col) pairs maximizing total similarity, each at least min_similarity.

    Uses scipy's Hungarian solver when scipy is installed; otherwise a greedy best-pair-first match, which
    agrees in easy cases but can give a track's ID to whoever stepped into its old place (one person
    catching up with another; see tests/test_tracking.py).
    """
    if sim.size == 0:
        return []
    # Pairs under the gate count as 0 so the optimum never trades a good pair for one that is then dropped.
    gated = np.where(sim >= min_similarity, sim, 0.0)
    # With one track or one detection the best pair first is the optimum: no solver needed.
    solver = _solver() if min(sim.shape) > 1 else None
    if solver is not None:
        rows, cols = solver(-gated)
        pairs = list(zip(rows.tolist(), cols.tolist()))
    else:
        pairs, used_r, used_c = [], set(), set()
        for flat in np.argsort(-gated, axis=None, kind="stable"):
            r, c = divmod(int(flat), sim.shape[1])
            if r not in used_r and c not in used_c:
                pairs.append((r, c))
                used_r.add(r)
                used_c.add(c)
    return [(r, c) for r, c in pairs if sim[r, c] >= min_similarity]


# World keypoints (metres) are smoothed with the cutoffs MediaPipe gives BlazePose's world landmarks
# (pose_landmark_filtering.pbtxt: min_cutoff 0.1, beta 40, derivate_cutoff 1, no value scaling), here in
# this module's One-Euro; single-person BlazePose runs MediaPipe's own variant (`landmark_filter`).
WORLD_ONE_EURO = OneEuroParams(min_cutoff=0.1, beta=40.0, d_cutoff=1.0)


@dataclass
class _Track:
    kpts: np.ndarray  # last raw detection, what the next frame is matched against
    filter: OneEuroFilter
    world_filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(WORLD_ONE_EURO))
    id: int | None = None  # given on confirmation, so tentative tracks that die use up no IDs
    hits: int = 1
    missed: int = 0


class Tracked(NamedTuple):
    """One person as the tracker reports them."""

    id: int | None  # stable across frames; None where the tracker gives no IDs (one person)
    keypoints: np.ndarray  # Kx3 (x, y, score), smoothed
    score: float  # the pose score, passed through
    index: int  # which of the frame's detections this is
    world: np.ndarray | None = None  # Kx3 metres (BlazePose's world landmarks), smoothed; None: none


class PoseTracker:
    """Gives each person a stable ID across frames and smooths their keypoints per track.

    `sigmas` are the OKS constants; by default COCO's for 17 keypoints and keypoints.UNIFORM_SIGMA
    otherwise (the estimator passes its layout's).
    """

    def __init__(self, params: TrackerParams | None = None, sigmas: Sequence[float] | None = None):
        self.params = params or TrackerParams()
        self._sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Drop all tracks; IDs keep counting up so old ones are never handed out again."""
        self._tracks = []

    def _sigmas_for(self, k: int) -> np.ndarray:
        if self._sigmas is not None:
            if len(self._sigmas) != k:
                raise ValueError(f"{len(self._sigmas)} sigmas given for poses with {k} keypoints")
            return self._sigmas
        return sigmas_for(k)

    def _similarity(self, track: np.ndarray, pose: np.ndarray, min_score: float, min_area: float) -> float:
        if track.shape != pose.shape:
            return 0.0
        if self.params.metric == "iou":
            a, b = keypoint_box(track, min_score), keypoint_box(pose, min_score)
            return 0.0 if a is None or b is None else box_iou(a, b)
        return oks_similarity(track, pose, self._sigmas_for(len(pose)), min_score, min_area)

    def update(
        self,
        people: Sequence[Estimate | np.ndarray],
        timestamp_ms: float,
        width: int,
        height: int,
        min_keypoint_score: float = 0.2,
    ) -> list[Tracked]:
        """Feed one frame's detections (per person an Estimate, or a Kx3 (x, y, score) pixel array whose
        score is then the mean keypoint score).

        Returns a Tracked for each detection whose track is confirmed, in input order; keypoint scores
        pass through unsmoothed. Timestamps must increase: a repeated or earlier one restarts the
        smoothing filters.
        """
        p = self.params
        poses = [np.asarray(x.keypoints if isinstance(x, Estimate) else x, dtype=np.float64) for x in people]
        for x in poses:
            if x.ndim != 2 or x.shape[1] != 3:
                raise ValueError(f"each pose must be a Kx3 (x, y, score) array, got shape {x.shape}")
            if p.metric == "oks":
                self._sigmas_for(len(x))  # fail on the first frame, not once a second one brings tracks
        scale = float(max(width, height))
        min_area = (_MIN_AREA_FRAC * scale) ** 2
        same_k = len({t.kpts.shape for t in self._tracks} | {x.shape for x in poses}) == 1
        if p.metric == "oks" and same_k and self._tracks and poses:
            sim = pose_oks(
                np.stack([t.kpts for t in self._tracks]),
                np.stack(poses),
                self._sigmas_for(len(poses[0])),
                min_keypoint_score,
                min_area,
            )
        else:
            sim = np.array(
                [[self._similarity(t.kpts, x, min_keypoint_score, min_area) for x in poses] for t in self._tracks]
            ).reshape(len(self._tracks), len(poses))
        matches = _assign(sim, p.min_similarity)

        track_of: dict[int, _Track] = {}
        for r, c in matches:
            track = self._tracks[r]
            track.kpts, track.hits, track.missed = poses[c], track.hits + 1, 0
            track_of[c] = track
        matched = {r for r, _ in matches}
        survivors = []
        for r, track in enumerate(self._tracks):
            if r not in matched:
                track.missed += 1
                # A tentative track must be seen min_hits frames in a row, else sporadic false positives
                # would add up hits over time and be born.
                if track.id is None or track.missed > p.max_missed:
                    continue
            survivors.append(track)
        for c, x in enumerate(poses):
            if c not in track_of:
                track_of[c] = _Track(kpts=x, filter=OneEuroFilter(p.smoothing_params))
                survivors.append(track_of[c])
        self._tracks = survivors

        out = []
        t = timestamp_ms / 1000.0
        for c, x in enumerate(poses):
            track = track_of[c]
            # Filter every frame, tentative ones too, so a track is already settled when first reported.
            # A gap after missed frames needs no reset: the filter scales its smoothing by the real dt.
            smoothed = x.copy()
            world = _world(people[c])
            if p.smoothing:
                smoothed[:, :2] = track.filter(x[:, :2] / scale, t) * scale
                if world is not None:
                    world = track.world_filter(world, t)
            if track.id is None and track.hits >= p.min_hits:
                track.id = self._next_id
                self._next_id += 1
            if track.id is not None:
                out.append(Tracked(track.id, smoothed, _score(people[c], x), c, world))
        return out


def _world(person: Estimate | np.ndarray) -> np.ndarray | None:
    return person.world if isinstance(person, Estimate) else None


def _score(person: Estimate | np.ndarray, kps: np.ndarray) -> float:
    return person.score if isinstance(person, Estimate) else float(kps[:, 2].mean())


class SinglePersonSmoother:
    """The tracker of the single-crop pipeline: one person, no IDs, One-Euro smoothing that starts
    afresh whenever the person is lost."""

    def __init__(self, smoothing: bool = True, params: OneEuroParams | None = None):
        self.smoothing = smoothing
        self._filter = OneEuroFilter(params)
        self._world_filter = OneEuroFilter(WORLD_ONE_EURO)

    def reset(self) -> None:
        self._filter.reset()
        self._world_filter.reset()

    def update(
        self, people: Sequence[Estimate], timestamp_ms: float, width: int, height: int, min_keypoint_score: float = 0.2
    ) -> list[Tracked]:
        if not people:
            self.reset()
            return []
        person = people[0]
        kps, world = person.keypoints, person.world
        if self.smoothing:
            scale = float(max(width, height))
            kps[:, :2] = self._filter(kps[:, :2] / scale, timestamp_ms / 1000.0) * scale
            if world is not None:
                world = self._world_filter(world, timestamp_ms / 1000.0)
        return [Tracked(None, kps, person.score, 0, world)]
