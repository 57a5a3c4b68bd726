"""The exercise catalogue as data: which angle each exercise moves, between which two angles a rep runs,
the camera view it is counted from, and which keypoints must be in frame. User-defined exercises use the
same dataclass, loaded from a small JSON or TOML file (`load_exercises`).

A rep runs from `rest` (where the exercise starts and ends) past `turn` and back. Whether the angle closes
(a squat's knee) or opens (a jumping jack's arms) follows from which of the two is larger. The thresholds
are image-plane angles as edgepose's models report them from the preferred view. Where that view
foreshortens the joint (a squat seen from the front reads shallower than it is), `world_rest` /
`world_turn` give the thresholds for 3-D angles (BlazePose's world keypoints); None: the same as in the
image (a side view sees the joint's true angle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import tomllib

from edgepose.errors import EdgeposeError
from edgepose.fitness.angles import ANGLE_NAMES, THREE_POINT

SIDE_POLICIES = ("both", "facing", "deeper")
VIEWS = ("front", "side", "any")


@dataclass(frozen=True)
class Exercise:
    name: str
    # A joint measured on both body sides ("knee", "elbow", "hip", "shoulder", "ankle") or a whole-body
    # angle (`trunk_lean`, `hip_abduction`).
    angle: str
    rest: float  # degrees at the start and end position
    turn: float  # degrees the movement must pass for a full rep
    # Two sides: "both" averages them when both are clearly seen (else the one seen), "facing" uses the side
    # facing the camera (held with hysteresis), "deeper" the one further from rest (a lunge's front leg).
    sides: str = "both"
    view: str = "any"  # the camera view it is counted from best: front, side or any
    required: tuple[str, ...] = ()  # keypoints that must be in frame before counting
    min_rom: float = 40.0  # degrees: a rep with less range of motion is partial (reported, not counted)
    min_rep_s: float = 0.4  # a faster "rep" is jitter or a stumble: partial
    hold_s: float = 0.3  # the rest position held this long before counting starts
    hysteresis: float = 10.0  # degrees a threshold must be crossed by before the phase changes back
    description: str = ""
    world_rest: float | None = None  # `rest` for 3-D angles; None: the same
    world_turn: float | None = None  # `turn` for 3-D angles; None: the same

    def __post_init__(self) -> None:
        joint = f"left_{self.angle}"
        if self.angle not in ANGLE_NAMES and joint not in THREE_POINT:
            raise EdgeposeError(f"exercise {self.name!r}: unknown angle {self.angle!r}")
        if self.sides not in SIDE_POLICIES:
            raise EdgeposeError(f"exercise {self.name!r}: sides must be one of {', '.join(SIDE_POLICIES)}")
        if self.view not in VIEWS:
            raise EdgeposeError(f"exercise {self.name!r}: view must be one of {', '.join(VIEWS)}")
        for space in ("image", "world"):
            rest, turn = self.thresholds(space)
            if abs(rest - turn) < 2 * self.hysteresis:
                what = "rest and turn" if space == "image" else "world_rest and world_turn"
                raise EdgeposeError(f"exercise {self.name!r}: {what} must be at least 2 x hysteresis apart")
            if (rest > turn) != (self.rest > self.turn):
                raise EdgeposeError(f"exercise {self.name!r}: the 3-D thresholds must move the same way as rest/turn")
        if self.min_rep_s < 0 or self.hold_s < 0 or self.min_rom < 0 or self.hysteresis < 0:
            raise EdgeposeError(f"exercise {self.name!r}: durations, min_rom and hysteresis must be >= 0")
        object.__setattr__(self, "required", tuple(self.required))

    def thresholds(self, space: str = "image") -> tuple[float, float]:
        """(rest, turn) for angles measured in `space` ("image" or "world")."""
        if space == "world":
            return (
                self.rest if self.world_rest is None else self.world_rest,
                self.turn if self.world_turn is None else self.world_turn,
            )
        return self.rest, self.turn

    @property
    def two_sided(self) -> bool:
        return self.angle not in ANGLE_NAMES

    @property
    def closes(self) -> bool:
        """Whether a rep closes the angle (rest above turn), like a squat's knee."""
        return self.rest > self.turn

    def to_dict(self) -> dict:
        return asdict(self)


_LEGS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
_ARMS = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")

CATALOGUE: dict[str, Exercise] = {
    e.name: e
    for e in (
        Exercise(
            # A front view foreshortens the thighs at the bottom: 120 in the image is a parallel squat; in
            # 3-D the shared clip's parallel squats bottom out at 82-90 degrees.
            "squat", "knee", rest=150, turn=120, sides="both", view="any", required=_LEGS, world_turn=100,
            description="knees from straight to below 120 degrees in the image (100 in 3-D) and back",
        ),
        Exercise(
            "push-up", "elbow", rest=145, turn=100, sides="facing", view="side",
            required=("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                      "left_hip", "right_hip"),
            description="elbows from straight to below 100 degrees and back, seen from the side",
        ),
        Exercise(
            "bicep-curl", "elbow", rest=140, turn=70, sides="both", view="any", required=_ARMS,
            description="elbows from hanging straight to curled under 70 degrees and back",
        ),
        Exercise(
            "lunge", "knee", rest=150, turn=110, sides="deeper", view="side", required=_LEGS,
            description="the front knee from straight to below 110 degrees and back",
        ),
        Exercise(
            "jumping-jack", "shoulder", rest=40, turn=120, sides="both", view="front",
            required=(*_ARMS, "left_hip", "right_hip"),
            description="arms from the sides to above the shoulders (over 120 degrees) and back",
        ),
        Exercise(
            "shoulder-press", "elbow", rest=100, turn=150, sides="both", view="front", required=_ARMS,
            description="elbows from bent at the shoulders to straight overhead (over 150 degrees) and back",
        ),
        Exercise(
            "sit-up", "hip", rest=120, turn=75, sides="facing", view="side",
            required=("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee", "right_knee"),
            description="hips from lying back (over 120 degrees) to sitting up (under 75) and back",
        ),
        Exercise(
            "glute-bridge", "hip", rest=135, turn=165, sides="facing", view="side", min_rom=25.0,
            required=("left_shoulder", "right_shoulder", "left_hip", "right_hip", "left_knee", "right_knee"),
            description="hips from down (under 135 degrees) to lifted in line (over 165) and back",
        ),
    )
}  # fmt: skip


def get_exercise(name: str, extra: dict[str, Exercise] | None = None) -> Exercise:
    """An exercise by name from `extra` (a user's file) or the catalogue; one clear error otherwise."""
    known = {**CATALOGUE, **(extra or {})}
    if name not in known:
        raise EdgeposeError(f"unknown exercise {name!r}; choose one of: {', '.join(sorted(known))}")
    return known[name]


def load_exercises(path: str | Path) -> dict[str, Exercise]:
    """User-defined exercises from a JSON file (a list of objects, or {"exercises": [...]}) or a TOML file
    ([[exercises]] tables), each with Exercise's fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except OSError as e:
        raise EdgeposeError(f"{path}: cannot read: {e.strerror or e}") from None
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise EdgeposeError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {e}") from None
    items = data.get("exercises") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise EdgeposeError(f"{path}: expected a list of exercises (or an 'exercises' list)")
    allowed = {f.name for f in fields(Exercise)}
    out: dict[str, Exercise] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise EdgeposeError(f"{path}: exercise {i + 1} is not an object")
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise EdgeposeError(f"{path}: exercise {i + 1}: unknown field(s) {', '.join(unknown)}")
        try:
            exercise = Exercise(**item)
        except TypeError as e:
            raise EdgeposeError(f"{path}: exercise {i + 1}: {e}") from None
        out[exercise.name] = exercise
    return out
