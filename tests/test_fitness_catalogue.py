"""Every catalogue exercise on keypoint sequences built from a real person: the limb lengths of the fully
annotated person in the shared COCO photo 000000000785.jpg, the exercise's joint driven through a typical
range of motion for that exercise (from common biomechanics ranges, not from the catalogue's thresholds),
with pixel noise on every keypoint. The full movement counts; half of it is a partial rep."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgepose.fitness import CATALOGUE, RepCounter, SideSelector
from edgepose.keypoints import COCO17_KEYPOINTS
from edgepose.results import make_pose
from tests.conftest import DATA_DIR

# exercise -> (the joint angle at rest, at the far end of a full rep), degrees, typical of the movement.
TYPICAL = {
    "squat": (172.0, 85.0),
    "push-up": (170.0, 80.0),
    "bicep-curl": (165.0, 40.0),
    "lunge": (170.0, 90.0),
    "jumping-jack": (15.0, 160.0),
    "shoulder-press": (85.0, 170.0),
    "sit-up": (145.0, 60.0),
    "glute-bridge": (120.0, 178.0),
}
FPS = 30.0


def bone_lengths() -> dict[str, float]:
    coco = json.loads((DATA_DIR / "coco" / "test_coco.json").read_text())
    ann = next(a for a in coco["annotations"] if a["image_id"] == 785 and a["num_keypoints"] == 17)
    k = np.array(ann["keypoints"], dtype=float).reshape(17, 3)[:, :2]
    i = {n: j for j, n in enumerate(COCO17_KEYPOINTS)}

    def mean_length(a: str, b: str) -> float:
        return float(np.mean([np.linalg.norm(k[i[f"{s}_{a}"]] - k[i[f"{s}_{b}"]]) for s in ("left", "right")]))

    return {
        "thigh": mean_length("hip", "knee"),
        "shin": mean_length("knee", "ankle"),
        "upper_arm": mean_length("shoulder", "elbow"),
        "forearm": mean_length("elbow", "wrist"),
        "torso": mean_length("shoulder", "hip"),
        "shoulders": float(np.linalg.norm(k[i["left_shoulder"]] - k[i["right_shoulder"]])),
    }


def turned(origin: np.ndarray, towards: np.ndarray, degrees: float, length: float) -> np.ndarray:
    """The point `length` from `origin` whose ray makes `degrees` with the ray origin -> towards."""
    u = (towards - origin) / np.linalg.norm(towards - origin)
    a = math.radians(degrees)
    return origin + length * np.array(
        [u[0] * math.cos(a) - u[1] * math.sin(a), u[0] * math.sin(a) + u[1] * math.cos(a)]
    )


def body(name: str, angle: float, other_angle: float, bones: dict[str, float]) -> dict[str, np.ndarray]:
    """Keypoints of one frame: a standing person (image y down), the exercise's joint at `angle` on the
    near side (left) and at `other_angle` on the far side."""
    half = bones["shoulders"] / 2
    pts: dict[str, np.ndarray] = {}
    for side, sign, joint_angle in (("left", -1.0, angle), ("right", 1.0, other_angle)):
        hip = np.array([320.0 + sign * half * 0.8, 240.0])
        shoulder = hip + [0.0, -bones["torso"]]
        knee = hip + [0.0, bones["thigh"]]
        ankle = knee + [0.0, bones["shin"]]
        elbow = shoulder + [0.0, bones["upper_arm"]]
        wrist = elbow + [0.0, bones["forearm"]]
        joint = CATALOGUE[name].angle
        if joint == "knee":
            ankle = turned(knee, hip, joint_angle, bones["shin"])
        elif joint == "elbow":
            wrist = turned(elbow, shoulder, joint_angle, bones["forearm"])
        elif joint == "shoulder":  # the straight arm swings out from the side
            elbow = turned(shoulder, hip, joint_angle, bones["upper_arm"])
            wrist = elbow + (elbow - shoulder) / np.linalg.norm(elbow - shoulder) * bones["forearm"]
        elif joint == "hip":  # the torso folds towards the thighs
            shoulder = turned(hip, knee, joint_angle, bones["torso"])
            elbow = shoulder + (knee - hip) / np.linalg.norm(knee - hip) * bones["upper_arm"]
            wrist = elbow + (knee - hip) / np.linalg.norm(knee - hip) * bones["forearm"]
        pts.update({
            f"{side}_hip": hip, f"{side}_shoulder": shoulder, f"{side}_knee": knee, f"{side}_ankle": ankle,
            f"{side}_elbow": elbow, f"{side}_wrist": wrist,
        })  # fmt: skip
    return pts


def run(name: str, far: float, reps: int, period_s: float, noise_px: float, seed: int, scores=(0.9, 0.9)):
    """Count `reps` movements from rest to `far` (degrees) and back; returns the counter."""
    ex = CATALOGUE[name]
    rest, _ = TYPICAL[name]
    bones = bone_lengths()
    rng = np.random.default_rng(seed)
    selector, counter = SideSelector(ex), RepCounter(ex)
    lead = 1.0
    t = np.arange(0.0, lead + reps * period_s + 1.0, 1.0 / FPS)
    phase = np.clip((t - lead) / period_s, 0, reps)
    for ti, ph in zip(t, phase):
        angle = rest + (far - rest) * (1 - math.cos(2 * math.pi * ph)) / 2
        # A lunge's back knee bends less than the front one; other exercises move both sides alike.
        other = rest + (far - rest) * 0.4 * (1 - math.cos(2 * math.pi * ph)) / 2 if name == "lunge" else angle
        pts = body(name, angle, other, bones)
        kps = np.zeros((17, 3))
        for j, n in enumerate(COCO17_KEYPOINTS):
            if n in pts:
                kps[j, :2] = pts[n] + rng.normal(0, noise_px, 2)
                kps[j, 2] = scores[0] if n.startswith("left") else scores[1]
            else:
                kps[j] = (320.0, 60.0, 0.9)  # the head, above the shoulders
        reading = selector.read(make_pose(kps, COCO17_KEYPOINTS))
        counter.update(reading.angle.degrees if reading else None, float(ti))
    return counter


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_a_full_movement_counts_with_noisy_keypoints(name):
    _, far = TYPICAL[name]
    # Side-view exercises see the far side poorly; front-view ones see both sides.
    scores = (0.9, 0.4) if CATALOGUE[name].sides == "facing" else (0.9, 0.9)
    for seed in range(3):
        counter = run(name, far, reps=4, period_s=2.0, noise_px=2.0, seed=seed, scores=scores)
        s = counter.summary()
        assert (s.count, s.partial_reps) == (4, 0), (name, seed, s.reps)
        rest, _ = TYPICAL[name]
        assert s.mean_rom_deg == pytest.approx(abs(far - rest), abs=12), (name, s.mean_rom_deg)


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_half_the_movement_is_a_partial_rep(name):
    rest, far = TYPICAL[name]
    counter = run(name, rest + 0.5 * (far - rest), reps=3, period_s=2.0, noise_px=1.0, seed=0)
    s = counter.summary()
    assert s.count == 0 and s.partial_reps == 3, (name, s.reps)
