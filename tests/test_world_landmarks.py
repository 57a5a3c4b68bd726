"""BlazePose's world landmarks (`Pose.world_keypoints`): metres about the hips' centre, in the image's
axes, on the real squat clip and photos; and the 3-D joint angles the fitness layer reads from them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.fitness import joint_angle
from edgepose.fitness.angles import ANGLE_NAMES
from edgepose.image import load_image
from edgepose.io.video import VideoSource
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS
from edgepose.models.blazepose import world_to_image_axes
from edgepose.results import make_pose
from tests.conftest import DATA_DIR, Cli, cli_env

SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"
INDEX = {n: i for i, n in enumerate(BLAZEPOSE33_KEYPOINTS)}
LIMBS = {
    "thigh": (("left_hip", "left_knee"), ("right_hip", "right_knee")),
    "shin": (("left_knee", "left_ankle"), ("right_knee", "right_ankle")),
    "upper_arm": (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow")),
}


def world(pose) -> np.ndarray:
    return np.array([(k.x, k.y, k.z) for k in pose.world_keypoints])


def length(w: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(w[..., INDEX[a], :] - w[..., INDEX[b], :], axis=-1)


@pytest.fixture(scope="module")
def squat_frames():
    return [(t_ms, rgb) for _, t_ms, rgb in VideoSource.open_file(SQUATS).frames()]


@pytest.fixture(scope="module")
def squat_poses(squat_frames):
    """The squat clip's 65 poses, run as a stream."""
    with PoseEstimator.create_from_model("blazepose-full") as est:
        return [est.estimate_for_video(rgb, t_ms)[0] for t_ms, rgb in squat_frames]


@pytest.fixture(scope="module")
def squat_world(squat_poses):
    """65 x 33 x 3 world keypoints of the squat clip, and the last pose."""
    return np.stack([world(p) for p in squat_poses]), squat_poses[-1]


def test_world_keypoints_are_metres_about_the_hips(squat_world):
    w, pose = squat_world
    assert w.shape == (65, 33, 3)
    assert [k.name for k in pose.world_keypoints] == list(BLAZEPOSE33_KEYPOINTS)
    assert [k.score for k in pose.world_keypoints] == [k.score for k in pose.keypoints]
    hips = (w[:, INDEX["left_hip"]] + w[:, INDEX["right_hip"]]) / 2
    # Measured: the hips' centre within 0.7 mm of the origin on every frame.
    assert np.abs(hips).max() < 0.01
    # Image axes: the head above the hips (y down), the feet below, by a standing adult's proportions.
    assert w[:, INDEX["nose"], 1].max() < -0.4 and w[:, INDEX["left_ankle"], 1].min() > 0.3
    height = w[:, INDEX["left_ankle"], 1] - w[:, INDEX["nose"], 1]
    assert 0.9 < np.median(height) < 1.7


def test_limb_lengths_are_an_adults_and_stable_through_the_squats(squat_world):
    w, _ = squat_world
    for limb, sides in LIMBS.items():
        left, right = (length(w, a, b) for a, b in sides)
        # Measured: thighs 0.38 m, shins 0.37-0.38 m, upper arms 0.25 m; frame-to-frame std 0.8-2.9 cm
        # while the knees bend from 170 to 85 degrees (the 2-D thigh shrinks to a third of its length).
        low, high = (0.18, 0.35) if limb == "upper_arm" else (0.28, 0.5)
        for side in (left, right):
            assert low < np.median(side) < high, (limb, np.median(side))
            assert side.std() < 0.04, (limb, side.std())
        assert abs(np.median(left) - np.median(right)) < 0.15 * np.median(right), limb


def test_world_keypoints_turn_with_the_image(squat_frames):
    # The model sees an upright crop; its world landmarks are rotated back into the image's axes. A frame
    # turned a quarter turn must give the same skeleton turned a quarter turn (same lengths, 3-D angles).
    _, rgb = squat_frames[0]
    turned = np.ascontiguousarray(np.rot90(rgb, k=-1))  # clockwise: image "down" becomes "left"
    with PoseEstimator.create_from_model("blazepose-full") as est:
        (upright,) = est.estimate(rgb)
        (sideways,) = est.estimate(turned)
    a, b = world(upright), world(sideways)

    def direction(w: np.ndarray) -> float:
        up = (w[INDEX["left_shoulder"]] + w[INDEX["right_shoulder"]]) / 2  # hips at the origin
        return math.degrees(math.atan2(up[1], up[0]))

    # Upright: the shoulders are straight up (-90 deg); turned clockwise they point right (0 deg).
    assert abs(direction(a) + 90) < 15 and abs(direction(b)) < 15, (direction(a), direction(b))
    for limb in LIMBS.values():
        for x, y in limb:
            assert abs(length(a, x, y) - length(b, x, y)) < 0.05
    for name in ("left_knee", "right_knee", "left_hip", "right_hip"):
        assert abs(joint_angle(upright, name).degrees - joint_angle(sideways, name).degrees) < 8, name


def test_rotation_into_image_axes_is_a_pure_rotation():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.4, (33, 3))
    turned = world_to_image_axes(w, math.radians(30))
    np.testing.assert_allclose(np.linalg.norm(turned, axis=1), np.linalg.norm(w, axis=1), atol=1e-12)
    np.testing.assert_array_equal(turned[:, 2], w[:, 2])
    np.testing.assert_allclose(world_to_image_axes(w, 0.0), w)
    # +90 degrees turns the crop's x axis onto the image's y axis (y grows downwards).
    np.testing.assert_allclose(world_to_image_axes(np.array([[1.0, 0.0, 0.0]]), math.pi / 2), [[0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_stills_and_both_modes_carry_world_keypoints_and_movenet_has_none(mode):
    photo = load_image(DATA_DIR / "coco" / "000000000785.jpg")
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model="blazepose-full", mode=mode)) as est:
        poses = est.estimate(photo)
    assert poses and all(p.world_keypoints is not None and len(p.world_keypoints) == 33 for p in poses)
    doc = poses[0].to_dict()
    assert len(doc["world_keypoints"]) == 33 and all(len(v) == 3 for v in doc["world_keypoints"])
    with PoseEstimator.create_from_model("movenet-lightning-int8") as est:
        (pose,) = est.estimate(photo)
    assert pose.world_keypoints is None and "world_keypoints" not in pose.to_dict()


def test_world_keypoints_are_smoothed_in_video_like_mediapipe(squat_frames):
    # MediaPipe smooths world landmarks (One-Euro 0.1 Hz / beta 40): smoothing changes them by a few cm
    # at most, and makes the stream less jerky than the raw per-frame output.
    runs = {}
    for smoothing in (True, False):
        with PoseEstimator.create_from_options(
            PoseEstimatorOptions(model="blazepose-full", smoothing=smoothing)
        ) as est:
            runs[smoothing] = np.stack([world(est.estimate_for_video(rgb, t)[0]) for t, rgb in squat_frames])
    shift = np.linalg.norm(runs[True] - runs[False], axis=2)
    # Measured at the clip's 5 fps: median 0.7 cm, max 3.5 cm; frame-to-frame jerk (the mean absolute
    # second difference) 2.7 -> 2.3 cm, less than at 30 fps, as the filter's cutoffs are in Hz.
    assert 0 < np.median(shift) < 0.03 and shift.max() < 0.2
    jerk = {k: np.abs(np.diff(v, n=2, axis=0)).mean() for k, v in runs.items()}
    assert jerk[True] < 0.95 * jerk[False], jerk


def test_3d_knee_angles_agree_between_the_legs_where_the_image_plane_does_not(squat_poses):
    # Both knees bend alike in a squat, but seen from slightly off the front one thigh is foreshortened
    # more than the other. Measured at the deepest frame of each bottom: 3-D left 90.2 / right 81.7-88.2
    # degrees (legs within 2.7), image plane 85.5-93.3 / 102.4-103.7 (10-17 apart).
    for first, last in ((9, 11), (33, 35)):  # the bottoms (DATA.md)
        bottom = squat_poses[first : last + 1]
        deepest = {
            space: {s: min(joint_angle(p, f"{s}_knee", space=space).degrees for p in bottom) for s in ("left", "right")}
            for space in ("world", "image")
        }
        assert all(75 < d < 95 for d in deepest["world"].values()), deepest
        gap = {space: abs(d["left"] - d["right"]) for space, d in deepest.items()}
        assert gap["world"] < 5 and gap["image"] > 2 * gap["world"], deepest
    standing = [joint_angle(squat_poses[i], "left_knee") for i in (0, 1, 2)]
    assert all(a.space == "world" and a.degrees > 155 for a in standing), standing


def test_angles_in_3d_against_hand_computed_values():
    names = BLAZEPOSE33_KEYPOINTS
    w = np.zeros((33, 3))
    w[INDEX["left_hip"]] = (0.1, 0.0, 0.0)
    w[INDEX["left_knee"]] = (0.1, 0.4, 0.0)
    w[INDEX["left_ankle"]] = (0.1, 0.4, 0.4)  # the shin straight back: 90 degrees, invisible in the image
    w[INDEX["right_hip"]] = (-0.1, 0.0, 0.0)
    w[INDEX["right_knee"]] = (-0.1, 0.4, 0.0)
    w[INDEX["left_shoulder"]] = (0.15, -0.5, 0.0)
    w[INDEX["right_shoulder"]] = (-0.15, -0.5, -0.5)  # the shoulders' mid-point 0.25 m forward, 0.5 m up
    kps = np.column_stack([w[:, :2] * 100 + 300, np.full(33, 0.9)])
    kps[INDEX["right_ankle"], 2] = 0.1  # unseen
    pose = make_pose(kps, names, world=w)
    assert joint_angle(pose, "left_knee").degrees == pytest.approx(90.0)
    assert joint_angle(pose, "left_knee", space="image") is None  # the shin has no length in the image
    assert joint_angle(pose, "trunk_lean").degrees == pytest.approx(math.degrees(math.atan2(0.25, 0.5)))
    assert joint_angle(pose, "hip_abduction").degrees == pytest.approx(0.0, abs=1e-9)
    assert joint_angle(pose, "right_knee") is None  # never from a keypoint the model does not see
    assert {n for n in ANGLE_NAMES if joint_angle(pose, n) is not None} >= {"left_knee", "trunk_lean"}
    with pytest.raises(ValueError, match="no world keypoints"):
        joint_angle(make_pose(kps, names), "left_knee", space="world")
    with pytest.raises(ValueError, match="unknown angle space"):
        joint_angle(pose, "left_knee", space="3d")


def test_run_json_lines_carry_world_keypoints_for_blazepose(model_dir, tmp_path):
    r = Cli(cli_env(model_dir, tmp_path))(
        "run", SQUATS, "-m", "blazepose-full", "--max-frames", "3", "--exercise", "squat"
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 3
    for line in lines:
        (pose,) = line["poses"]
        assert len(pose["world_keypoints"]) == 33
        assert line["fitness"]["angle_space"] == "world"
