"""One-Euro smoothing, ROI geometry, the torso crop and the two resamplers."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.geometry import SquareRoi
from edgepose.keypoints import COCO17_KEYPOINTS
from edgepose.models.movenet import torso_crop
from edgepose.results import FrameResult, Pose, Timings, make_pose
from edgepose.tracking.one_euro import OneEuroFilter, OneEuroParams


def test_one_euro_removes_jitter_at_rest():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroParams())
    noisy = 0.5 + rng.normal(0, 0.003, size=(90, 17, 2))  # ~2 px of a 640 px frame at 30 fps
    out = np.array([f(x, i / 30) for i, x in enumerate(noisy)])
    assert out[30:].std() < noisy[30:].std() / 2.5


def test_one_euro_follows_fast_motion():
    f = OneEuroFilter(OneEuroParams())
    t = np.arange(30) / 30
    ramp = 0.1 + 0.8 * t  # crosses most of the frame in one second
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(ramp, t, strict=False)])
    assert abs(out[-1] - ramp[-1]) < 0.01  # under 1% of the frame behind


def test_roi_maps_back_to_pixels():
    roi = SquareRoi.letterbox(640, 480)
    x, y = roi.to_image(np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 1.0]))
    assert x.tolist() == [0.0, 320.0, 640.0] and y.tolist() == [-80.0, 240.0, 560.0]


def _kps_at(points: dict[str, tuple[float, float]], score: float = 0.9) -> np.ndarray:
    return np.array([(*points.get(n, (0, 0)), score if n in points else 0.0) for n in COCO17_KEYPOINTS], float)


def _pose_at(points: dict[str, tuple[float, float]], score: float = 0.9) -> Pose:
    return make_pose(_kps_at(points, score), COCO17_KEYPOINTS)


def test_torso_crop_centres_on_hips_and_covers_the_body():
    kps = _kps_at(
        {
            "left_shoulder": (300, 100),
            "right_shoulder": (260, 100),
            "left_hip": (300, 200),
            "right_hip": (260, 200),
            "left_ankle": (300, 350),
        }
    )
    roi = torso_crop(kps, 640, 480)
    assert (roi.cx, roi.cy) == (280.0, 200.0)
    # torso reaches 100 px from the hip centre (x1.9 = 190), the ankle 150 px (x1.2 = 180)
    assert roi.size == pytest.approx(380.0)


def test_torso_crop_gives_up_without_a_torso():
    assert torso_crop(_kps_at({"nose": (100, 100), "left_wrist": (120, 140)}), 640, 480) is None


def test_pose_bbox_uses_confident_keypoints_only():
    pose = _pose_at({"nose": (100, 50), "left_ankle": (140, 300)})
    assert pose.bbox == (100.0, 50.0, 140.0, 300.0)


def test_frame_json_has_the_exact_schema():
    pose = _pose_at({"nose": (10.123, 20.456)})
    d = FrameResult([pose], 64, 48, Timings(1.0, 2.0, 3.0)).to_dict("a.jpg", 0, "m")
    assert list(d) == ["source", "frame", "width", "height", "model", "poses", "timings_ms"]
    assert list(d["poses"][0]) == ["id", "score", "bbox", "keypoints"]
    assert d["poses"][0]["keypoints"][0] == [10.12, 20.46, 0.9]
    assert d["timings_ms"] == {"preprocess": 1.0, "inference": 2.0, "postprocess": 3.0, "tracking": 0.0}
