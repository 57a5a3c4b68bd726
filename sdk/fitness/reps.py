"""Repetition counting: a state machine over an exercise's smoothed angle, with per-rep form metrics.

What open rep counters get wrong, and what this does instead:
- Double counts from jitter around one threshold: a rep runs from `rest` past `turn` and back to `rest`,
  two thresholds far apart, and each is crossed back only `hysteresis` degrees beyond it.
- Counting while the user gets into position: nothing counts until the rest position has been held for
  `hold_s` (phase "waiting" until then).
- Counts with nobody exercising: a movement that does not reach `turn`, lasts under `min_rep_s` or moves
  under `min_rom` degrees is a partial rep: reported, not counted.
- A lost person (no pose, or the angle not seen) pauses the counter; it carries on where it was.

The angle is smoothed with a time-constant exponential average (TAU_S), so the thresholds see the
movement rather than one frame's noise, the same at 5 and at 60 frames per second.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from edgepose.fitness.exercises import Exercise
from edgepose.fitness.signal import Reading, SideSelector
from edgepose.results import Pose

TAU_S = 0.1  # the smoothing's time constant, seconds
# A movement away from rest and back that reached under this many degrees is noise, not a partial rep.
PARTIAL_MIN_DEG = 15.0

WAITING, REST, AWAY, TURNED, RETURNING = "waiting", "rest", "away", "turned", "returning"


@dataclass(frozen=True)
class Rep:
    """One repetition (or partial one). Times in seconds of the stream; angles in degrees."""

    # A rep is timed between threshold crossings, which frame rate and smoothing do not move much: from the
    # last moment the angle was at `rest` (or beyond) to the first moment it is back there.
    start_s: float
    end_s: float
    duration_s: float
    down_s: float  # start to the turning point (the way out: a squat's descent)
    up_s: float  # turning point to the end (the way back)
    min_angle: float
    max_angle: float
    rom_deg: float  # range of motion: max - min
    partial: bool

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass
class RepSummary:
    count: int = 0
    partial_reps: int = 0
    mean_rom_deg: float | None = None
    mean_duration_s: float | None = None
    mean_down_s: float | None = None
    mean_up_s: float | None = None
    reps: list[Rep] = field(default_factory=list)


class RepCounter:
    """Feed it `update(angle_degrees or None, t_s)` once per frame; `count`, `phase` and `reps` tell."""

    def __init__(self, exercise: Exercise, space: str = "image"):
        """`space`: what the angles fed in are measured in ("image" or "world"), for the exercise's
        thresholds (`Exercise.thresholds`)."""
        self.exercise = exercise
        # Work in a frame where a rep always lowers the value: x = angle for closing exercises, -angle else.
        self._sign = 1.0 if exercise.closes else -1.0
        self.reset()
        self.set_space(space)

    def set_space(self, space: str) -> None:
        """Use the thresholds for angles measured in `space`; only before counting has started (a change
        of space in the middle of a session would move the goalposts of a rep under way)."""
        if self.phase == WAITING and not self.reps:
            self.space = space
            rest, turn = self.exercise.thresholds(space)
            self._rest, self._turn = self._sign * rest, self._sign * turn

    def reset(self) -> None:
        self.phase = WAITING
        self.count = 0
        self.reps: list[Rep] = []
        self.angle: float | None = None  # the smoothed angle, degrees
        self._t: float | None = None
        self._rest_since: float | None = None
        self._start: float | None = None  # last time at rest
        self._extreme_t = 0.0  # when the movement was furthest from rest
        self._lo = math.inf  # x range of the current movement
        self._hi = -math.inf
        self._peak = -math.inf  # the highest x at rest before the movement

    def update(self, degrees: float | None, t_s: float) -> Rep | None:
        """One frame; returns the rep (or partial rep) that ended in it, if any. None: not seen."""
        if degrees is None or not math.isfinite(degrees):
            return None  # a lost person pauses the counter
        self._smooth(degrees, t_s)
        x = self._sign * self.angle
        ex = self.exercise
        if self.phase == WAITING:
            if x >= self._rest:
                self._rest_since = t_s if self._rest_since is None else self._rest_since
                if t_s - self._rest_since >= ex.hold_s:
                    self.phase, self._start, self._peak = REST, t_s, x
            else:
                self._rest_since = None
            return None
        if self.phase == REST:
            if x >= self._rest - ex.hysteresis:
                if x >= self._rest:
                    self._start = t_s
                self._peak = max(self._peak, x)
                return None
            self.phase = AWAY
            self._lo, self._hi, self._extreme_t = x, max(x, self._peak), t_s
        if x < self._lo:
            self._lo, self._extreme_t = x, t_s
        self._hi = max(self._hi, x)
        if self.phase == AWAY and x <= self._turn:
            self.phase = TURNED
        elif self.phase == TURNED and x > self._turn + ex.hysteresis:
            self.phase = RETURNING
        elif self.phase == RETURNING and x <= self._turn:
            self.phase = TURNED  # a bounce at the bottom is the same rep
        if x >= self._rest:
            return self._finish(t_s, x)
        return None

    def summary(self) -> RepSummary:
        full = [r for r in self.reps if not r.partial]

        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 3) if values else None

        return RepSummary(
            count=self.count,
            partial_reps=len(self.reps) - len(full),
            mean_rom_deg=mean([r.rom_deg for r in full]),
            mean_duration_s=mean([r.duration_s for r in full]),
            mean_down_s=mean([r.down_s for r in full]),
            mean_up_s=mean([r.up_s for r in full]),
            reps=list(self.reps),
        )

    def _smooth(self, degrees: float, t_s: float) -> None:
        if self.angle is None or self._t is None:
            self.angle, self._t = degrees, t_s
            return
        # A repeated or out-of-order timestamp counts as one 30 fps step.
        dt = t_s - self._t if t_s > self._t else 1.0 / 30.0
        self.angle += (1.0 - math.exp(-dt / TAU_S)) * (degrees - self.angle)
        self._t = max(self._t, t_s)

    def _finish(self, t_s: float, x_end: float) -> Rep | None:
        ex = self.exercise
        reached = self.phase in (TURNED, RETURNING)
        start = self._start if self._start is not None else t_s
        angles = sorted((self._sign * self._lo, self._sign * self._hi))
        rom = angles[1] - angles[0]
        self.phase, self._start, self._peak = REST, t_s, x_end
        if not reached and rom < PARTIAL_MIN_DEG:
            return None  # a wobble at rest
        duration = t_s - start
        partial = not reached or rom < ex.min_rom or duration < ex.min_rep_s
        rep = Rep(
            start_s=start,
            end_s=t_s,
            duration_s=duration,
            down_s=self._extreme_t - start,
            up_s=t_s - self._extreme_t,
            min_angle=angles[0],
            max_angle=angles[1],
            rom_deg=rom,
            partial=partial,
        )
        self.reps.append(rep)
        if not partial:
            self.count += 1
        return rep


class PoseRepCounter:
    """An exercise counted on a pose stream: each pose's angle read by a SideSelector, fed to a RepCounter
    (both kept as attributes for what they report)."""

    def __init__(self, exercise: Exercise):
        self.selector = SideSelector(exercise)
        self.counter = RepCounter(exercise)
        self.reading: Reading | None = None  # what the last pose showed (None: the angle was not seen)

    def update(self, pose: Pose | None, t_s: float) -> Rep | None:
        """One frame's pose (None: nobody); returns the rep (or partial rep) that ended in it, if any."""
        self.reading = self.selector.read(pose)
        if self.reading is None:
            return self.counter.update(None, t_s)
        if self.reading.angle.space != self.counter.space:
            self.counter.set_space(self.reading.angle.space)  # 3-D angles (BlazePose): its thresholds
        return self.counter.update(self.reading.angle.degrees, t_s)
