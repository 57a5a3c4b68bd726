"""Camera-placement check before counting: structured warnings a device can show ("ankles out of frame —
step back"), from the poses of the frames before the first rep."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from edgepose.fitness.angles import MIN_SCORE
from edgepose.fitness.exercises import Exercise
from edgepose.results import Pose

# A person whose keypoints span less than this fraction of the frame height is too far to count well.
MIN_HEIGHT_FRACTION = 0.25
# A side view shows the shoulders close together; this far apart (as a fraction of the torso's length)
# means the person faces the camera (a front view of the squat clip measures 0.44-0.8, a side view ~0.1-0.2).
FRONT_SHOULDERS = 0.35


@dataclass(frozen=True)
class PlacementWarning:
    code: str  # "out_of_frame", "too_small", "turn_sideways", "face_camera", "nobody"
    message: str


def check_frame(pose: Pose | None, exercise: Exercise, width: int, height: int) -> list[PlacementWarning]:
    """What is wrong with the camera's placement in one frame (empty: nothing)."""
    if pose is None:
        return [PlacementWarning("nobody", "nobody in view — step into the frame")]
    points = {k.name: k for k in pose.keypoints}
    warnings = []
    missing = [n for n in exercise.required if n in points and points[n].score < MIN_SCORE]
    if missing:
        part = _part(missing)
        advice = "step back" if any(n.endswith(("ankle", "knee", "hip")) for n in missing) else "move into view"
        warnings.append(PlacementWarning("out_of_frame", f"{part} out of frame — {advice}"))
    seen = [k for k in pose.keypoints if k.score >= MIN_SCORE]
    if seen and (max(k.y for k in seen) - min(k.y for k in seen)) < MIN_HEIGHT_FRACTION * height:
        warnings.append(PlacementWarning("too_small", "person too small — come closer"))
    facing = _facing_camera(points)
    if facing is True and exercise.view == "side":
        warnings.append(PlacementWarning("turn_sideways", f"turn sideways for {_plural(exercise.name)}"))
    elif facing is False and exercise.view == "front":
        warnings.append(PlacementWarning("face_camera", f"face the camera for {_plural(exercise.name)}"))
    return warnings


class PlacementCheck:
    """Collects per-frame warnings; `warnings()` gives those seen in at least half the checked frames."""

    def __init__(self, exercise: Exercise, width: int, height: int):
        self.exercise, self.width, self.height = exercise, width, height
        self.frames = 0
        self._seen: Counter[PlacementWarning] = Counter()

    def add(self, pose: Pose | None) -> None:
        self.frames += 1
        self._seen.update(set(check_frame(pose, self.exercise, self.width, self.height)))

    def warnings(self) -> list[PlacementWarning]:
        return [w for w, n in self._seen.most_common() if 2 * n >= self.frames]


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "sh", "ch")) else "s")


def _part(names: list[str]) -> str:
    joints = sorted({n.split("_", 1)[1] for n in names})
    return " and ".join(j + "s" for j in joints)


def _facing_camera(points: dict) -> bool | None:
    """True for a front (or back) view, False for a side view, None when the torso is not seen."""
    need = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
    if not all(n in points and points[n].score >= MIN_SCORE for n in need):
        return None
    ls, rs, lh, rh = (points[n] for n in need)
    torso = abs((lh.y + rh.y) / 2 - (ls.y + rs.y) / 2) or 1e-6
    return abs(ls.x - rs.x) / torso >= FRONT_SHOULDERS
