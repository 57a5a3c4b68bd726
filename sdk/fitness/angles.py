"""Joint angles from a pose, in degrees, each with the confidence of the keypoints it is made of.

An angle is never computed from keypoints the model does not see: below `min_score` on any of its
keypoints it is None. Angles are in the image plane (pixel coordinates); a side view of the joint gives its
true angle, a view along the limb foreshortens it. Names work for both layouts (COCO-17 and BlazePose-33
share the names of the joints used here); `left_ankle` / `right_ankle` need BlazePose's foot keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgepose.results import Keypoint, Pose

# Below this keypoint score an angle is not computed (MoveNet's and BlazePose's scores of joints
# hidden behind the body or out of frame are mostly under 0.3).
MIN_SCORE = 0.3

# name -> (a, vertex, b): the angle at `vertex` between the rays to `a` and `b`, 0..180 degrees.
THREE_POINT: dict[str, tuple[str, str, str]] = {
    "left_knee": ("left_hip", "left_knee", "left_ankle"),
    "right_knee": ("right_hip", "right_knee", "right_ankle"),
    "left_hip": ("left_shoulder", "left_hip", "left_knee"),
    "right_hip": ("right_shoulder", "right_hip", "right_knee"),
    "left_elbow": ("left_shoulder", "left_elbow", "left_wrist"),
    "right_elbow": ("right_shoulder", "right_elbow", "right_wrist"),
    "left_shoulder": ("left_elbow", "left_shoulder", "left_hip"),
    "right_shoulder": ("right_elbow", "right_shoulder", "right_hip"),
    "left_ankle": ("left_knee", "left_ankle", "left_foot_index"),
    "right_ankle": ("right_knee", "right_ankle", "right_foot_index"),
}
# Angles between two body lines rather than at a joint.
TRUNK_LEAN = "trunk_lean"  # the shoulders' midpoint above the hips' midpoint, from vertical: 0 = upright
HIP_ABDUCTION = "hip_abduction"  # between the thighs (hip -> knee, both sides): jumping jacks, side lunges
ANGLE_NAMES: tuple[str, ...] = (*THREE_POINT, TRUNK_LEAN, HIP_ABDUCTION)


@dataclass(frozen=True)
class Angle:
    """An angle in degrees and its confidence: the lowest score of the keypoints it was made from."""

    degrees: float
    confidence: float


def joint_angle(pose: Pose, name: str, min_score: float = MIN_SCORE) -> Angle | None:
    """The named angle of `pose` (see ANGLE_NAMES), or None when one of its keypoints scores below
    `min_score` or is missing from the pose's layout. Raises KeyError for an unknown name."""
    if name not in ANGLE_NAMES:
        raise KeyError(f"unknown angle {name!r}; known: {', '.join(ANGLE_NAMES)}")
    points = _keypoints(pose)
    if name in THREE_POINT:
        a, v, b = (points.get(n) for n in THREE_POINT[name])
        if not _seen(min_score, a, v, b):
            return None
        return _at_vertex(a, v, b)
    if name == TRUNK_LEAN:
        ls, rs, lh, rh = (points.get(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
        if not _seen(min_score, ls, rs, lh, rh):
            return None
        dx = (ls.x + rs.x - lh.x - rh.x) / 2.0
        dy = (lh.y + rh.y - ls.y - rs.y) / 2.0  # image y grows downwards: shoulders above hips is positive
        degrees = math.degrees(math.atan2(abs(dx), dy))
        return Angle(degrees, min(k.score for k in (ls, rs, lh, rh)))
    lh, lk, rh, rk = (points.get(n) for n in ("left_hip", "left_knee", "right_hip", "right_knee"))
    if not _seen(min_score, lh, lk, rh, rk):
        return None
    degrees = _between((lk.x - lh.x, lk.y - lh.y), (rk.x - rh.x, rk.y - rh.y))
    if degrees is None:
        return None
    return Angle(degrees, min(k.score for k in (lh, lk, rh, rk)))


def joint_angles(pose: Pose, names: tuple[str, ...] = ANGLE_NAMES, min_score: float = MIN_SCORE) -> dict:
    """Every named angle the pose's keypoints allow: name -> Angle (or None when not seen)."""
    return {n: joint_angle(pose, n, min_score) for n in names}


def _keypoints(pose: Pose) -> dict[str, Keypoint]:
    return {k.name: k for k in pose.keypoints}


def _seen(min_score: float, *kps: Keypoint | None) -> bool:
    return all(k is not None and k.score >= min_score for k in kps)


def _at_vertex(a: Keypoint, v: Keypoint, b: Keypoint) -> Angle | None:
    degrees = _between((a.x - v.x, a.y - v.y), (b.x - v.x, b.y - v.y))
    if degrees is None:
        return None
    return Angle(degrees, min(a.score, v.score, b.score))


def _between(u: tuple[float, float], w: tuple[float, float]) -> float | None:
    """The angle between two vectors in degrees; None when one has no length (coincident keypoints)."""
    nu, nw = math.hypot(*u), math.hypot(*w)
    if nu < 1e-6 or nw < 1e-6:
        return None
    # atan2 of the cross and dot products: accurate near 0 and 180 degrees, where acos is not.
    return math.degrees(math.atan2(abs(u[0] * w[1] - u[1] * w[0]), u[0] * w[0] + u[1] * w[1]))
