"""An exercise's angle from each pose: which body side to read, held steady from frame to frame.

A side view hides the far limb, and the model then guesses it with low scores; reading the far side, or
switching sides every other frame, is what makes rep counters flip. So the side facing the camera is
chosen by its keypoint scores and how long its limb looks (the near limb is seen whole), and is only given
up when the other side has looked clearly better for several frames in a row. When both sides are clearly
seen (a front view), their angles are averaged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgepose.fitness.angles import MIN_SCORE, THREE_POINT, Angle, joint_angle, joint_angles
from edgepose.fitness.exercises import Exercise
from edgepose.results import Keypoint, Pose

# Both sides "clearly seen": each side's keypoints score at least this, and the shorter limb is at least
# BOTH_LENGTH of the longer one (a side view foreshortens nothing, but hides one side).
BOTH_SCORE = 0.5
BOTH_LENGTH = 0.75
# The other side takes over after looking SWITCH_RATIO times better for SWITCH_FRAMES frames in a row.
SWITCH_RATIO = 1.25
SWITCH_FRAMES = 3


@dataclass(frozen=True)
class Reading:
    """The exercise's angle in one frame and the side it came from ("left", "right", "both", or "" for
    a whole-body angle)."""

    angle: Angle
    side: str


class SideSelector:
    """Reads an exercise's angle from a pose stream with the exercise's side policy (see Exercise.sides)."""

    def __init__(self, exercise: Exercise, min_score: float = MIN_SCORE):
        self.exercise = exercise
        self.min_score = min_score
        self.side: str | None = None  # the side held for "facing"
        self._better = 0  # frames in a row the other side looked better

    def reset(self) -> None:
        self.side, self._better = None, 0

    def read(self, pose: Pose | None) -> Reading | None:
        """The angle in this frame, or None when the pose does not show it."""
        if pose is None:
            return None
        ex = self.exercise
        if not ex.two_sided:
            angle = joint_angle(pose, ex.angle, self.min_score)
            return None if angle is None else Reading(angle, "")
        sides = joint_angles(pose, (f"left_{ex.angle}", f"right_{ex.angle}"), self.min_score)
        seen = {name.split("_", 1)[0]: a for name, a in sides.items() if a is not None}
        if not seen:
            return None
        if ex.sides == "deeper":
            pick = min if ex.closes else max
            side = pick(seen, key=lambda s: seen[s].degrees)
            return Reading(seen[side], side)
        points = {k.name: k for k in pose.keypoints}
        quality = {s: _quality(points, f"{s}_{ex.angle}") for s in seen}
        if ex.sides == "both" and len(seen) == 2 and _both_clear(quality):
            left, right = seen["left"], seen["right"]
            both = Angle((left.degrees + right.degrees) / 2, min(left.confidence, right.confidence), left.space)
            return Reading(both, "both")
        side = self._facing(quality)
        return Reading(seen[side], side)

    def _facing(self, quality: dict[str, tuple[float, float]]) -> str:
        """The side held for a side view: switched only after the other looked clearly better for
        SWITCH_FRAMES frames in a row; while the held side is not seen at all, the seen one is read."""
        merit = {s: score * length for s, (score, length) in quality.items()}
        best = max(merit, key=lambda s: merit[s])
        if self.side is None:
            self.side, self._better = best, 0
        if self.side not in merit:
            return best
        if best != self.side and merit[best] > SWITCH_RATIO * merit[self.side]:
            self._better += 1
            if self._better >= SWITCH_FRAMES:
                self.side, self._better = best, 0
        else:
            self._better = 0
        return self.side


def _quality(points: dict[str, Keypoint], angle_name: str) -> tuple[float, float]:
    """(the lowest score of the angle's keypoints, the limb's projected length in pixels)."""
    a, v, b = (points[n] for n in THREE_POINT[angle_name])
    length = math.hypot(a.x - v.x, a.y - v.y) + math.hypot(b.x - v.x, b.y - v.y)
    return min(a.score, v.score, b.score), length


def _both_clear(quality: dict[str, tuple[float, float]]) -> bool:
    (sl, ll), (sr, lr) = quality["left"], quality["right"]
    return min(sl, sr) >= BOTH_SCORE and min(ll, lr) >= BOTH_LENGTH * max(ll, lr, 1e-6)
