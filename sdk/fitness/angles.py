"""Joint angles from a pose, in degrees, each with the confidence of the keypoints it is made of.

An angle is never computed from keypoints the model does not see: below `min_score` on any of its
keypoints it is None. Two spaces:

- "image": in the image plane (pixel coordinates). A side view of the joint gives its true angle, a view
  along the limb foreshortens it (a squat seen from the front shows a shallower knee bend than it is).
- "world": in 3-D, from the pose's world keypoints (metres; BlazePose's world landmarks), so the view
  matters much less; their depth is the model's estimate, noisier than x and y.

"auto" (the default) is "world" where the pose has world keypoints, else "image". Names work for both
layouts (COCO-17 and BlazePose-33 share the names of the joints used here); `left_ankle` / `right_ankle`
need BlazePose's foot keypoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from edgepose.results import Pose

Space = Literal["auto", "image", "world"]
SPACES: tuple[str, ...] = ("auto", "image", "world")

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
    """An angle in degrees, its confidence (the lowest score of the keypoints it was made from) and the
    space it was measured in ("image" or "world")."""

    degrees: float
    confidence: float
    space: str = "image"


def angle_space(pose: Pose, space: Space = "auto") -> str:
    """The space an angle of `pose` is measured in: "world" or "image". Raises ValueError for an unknown
    space, or "world" asked of a pose without world keypoints."""
    if space not in SPACES:
        raise ValueError(f"unknown angle space {space!r}; choose one of {', '.join(SPACES)}")
    if space == "world" and pose.world_keypoints is None:
        raise ValueError("this pose has no world keypoints (BlazePose models give them)")
    if space == "auto":
        return "world" if pose.world_keypoints is not None else "image"
    return space


def joint_angle(pose: Pose, name: str, min_score: float = MIN_SCORE, space: Space = "auto") -> Angle | None:
    """The named angle of `pose` (see ANGLE_NAMES) in `space` (see the module), or None when one of its
    keypoints scores below `min_score` or is missing from the pose's layout. Raises KeyError for an
    unknown name."""
    return joint_angles(pose, (name,), min_score, space)[name]


def joint_angles(
    pose: Pose, names: tuple[str, ...] = ANGLE_NAMES, min_score: float = MIN_SCORE, space: Space = "auto"
) -> dict[str, Angle | None]:
    """The named angles of `pose` (by default every one): name -> Angle, or None where not seen."""
    unknown = [n for n in names if n not in ANGLE_NAMES]
    if unknown:
        raise KeyError(f"unknown angle {unknown[0]!r}; known: {', '.join(ANGLE_NAMES)}")
    space = angle_space(pose, space)
    points = _points(pose, space)  # once for all the names: a fitness device reads several per frame
    return {n: _angle_of(points, n, min_score, space) for n in names}


def _angle_of(points: dict[str, _Point], name: str, min_score: float, space: str) -> Angle | None:
    if name in THREE_POINT:
        a, v, b = (points.get(n) for n in THREE_POINT[name])
        if not _seen(min_score, a, v, b):
            return None
        return _angle(_between(_minus(a, v), _minus(b, v)), space, a, v, b)
    if name == TRUNK_LEAN:
        ls, rs, lh, rh = (points.get(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
        if not _seen(min_score, ls, rs, lh, rh):
            return None
        # Image y (and world y) grows downwards: "up" is -y.
        up = tuple(-1.0 if i == 1 else 0.0 for i in range(len(ls[0])))
        hips_to_shoulders = tuple((s1 + s2 - h1 - h2) / 2.0 for s1, s2, h1, h2 in zip(ls[0], rs[0], lh[0], rh[0]))
        return _angle(_between(hips_to_shoulders, up), space, ls, rs, lh, rh)
    lh, lk, rh, rk = (points.get(n) for n in ("left_hip", "left_knee", "right_hip", "right_knee"))
    if not _seen(min_score, lh, lk, rh, rk):
        return None
    return _angle(_between(_minus(lk, lh), _minus(rk, rh)), space, lh, lk, rh, rk)


# A keypoint as angles use it: its coordinates (2 in the image, 3 in the world) and its score.
_Point = tuple[tuple[float, ...], float]


def _points(pose: Pose, space: str) -> dict[str, _Point]:
    if space == "world":
        return {k.name: ((k.x, k.y, k.z), k.score) for k in pose.world_keypoints}
    return {k.name: ((k.x, k.y), k.score) for k in pose.keypoints}


def _seen(min_score: float, *points: _Point | None) -> bool:
    return all(p is not None and p[1] >= min_score for p in points)


def _minus(a: _Point, b: _Point) -> tuple[float, ...]:
    return tuple(x - y for x, y in zip(a[0], b[0]))


def _angle(degrees: float | None, space: str, *points: _Point) -> Angle | None:
    return None if degrees is None else Angle(degrees, min(p[1] for p in points), space)


def _between(u: Sequence[float], w: Sequence[float]) -> float | None:
    """The angle between two vectors (2-D or 3-D) in degrees; None when one has no length (coincident
    keypoints)."""
    nu, nw = math.hypot(*u), math.hypot(*w)
    if nu < 1e-9 or nw < 1e-9:
        return None
    dot = sum(x * y for x, y in zip(u, w))
    if len(u) == 2:
        cross = abs(u[0] * w[1] - u[1] * w[0])
    else:
        cross = math.hypot(u[1] * w[2] - u[2] * w[1], u[2] * w[0] - u[0] * w[2], u[0] * w[1] - u[1] * w[0])
    # atan2 of the cross and dot products: accurate near 0 and 180 degrees, where acos is not.
    return math.degrees(math.atan2(cross, dot))
