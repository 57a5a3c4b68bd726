"""BlazePose video as MediaPipe runs it: the TF.js comparison on the squat video, and the pieces that get
edgepose there (heatmap refinement, MediaPipe's landmark filter, the next crop from filtered auxiliary
landmarks), each on real values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.geometry import Roi
from edgepose.io.video import VideoSource
from edgepose.models import blazepose
from edgepose.models.base import Estimate
from edgepose.models.blazepose import refine_from_heatmap, tracking_roi
from edgepose.pipelines.topdown import detector_rois
from edgepose.tracking import PoseTracker
from edgepose.tracking.landmark_filter import (
    AUXILIARY_LANDMARKS,
    POSE_LANDMARKS,
    POSE_ROI_SCALE,
    AuxiliaryRoiFilter,
    LandmarkFilterParams,
    MediaPipeOneEuro,
    PoseLandmarkSmoother,
    auxiliary_points,
    object_scale,
    roi_from_auxiliary,
)
from edgepose.tracking.one_euro import OneEuroParams
from tests.conftest import DATA_DIR

SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"
# tensorflow/tfjs-models' BlazePose (full) output on the same 65 frames: 33 x (x px, y px, z) per frame.
SQUATS_EXPECTED = DATA_DIR / "fitness" / "pose_squats.full.json"
# tfjs-models' own tolerance for this video: every x and y within 28 px of the expected.
TFJS_EPSILON_VIDEO = 28.0
FRAME_MS = 33.33  # the timestamps tfjs-models feeds


@pytest.fixture(scope="module")
def squat_frames() -> list[np.ndarray]:
    return [rgb for _, _, rgb in VideoSource.open_file(SQUATS).frames()]


@pytest.fixture(scope="module")
def blazepose_single():
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model="blazepose-full", threads=2)) as est:
        yield est


def test_squat_video_matches_tfjs_blazepose_on_every_frame(squat_frames):
    expected = np.array(json.loads(SQUATS_EXPECTED.read_text()))[:, :, :2]
    assert len(squat_frames) == len(expected) == 65
    worst = []
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model="blazepose-full")) as est:
        for i, rgb in enumerate(squat_frames):
            poses = est.estimate_for_video(rgb, i * FRAME_MS)
            assert len(poses) == 1, i
            xy = np.array([(k.x, k.y) for k in poses[0].keypoints])
            worst.append(float(np.abs(xy - expected[i]).max()))
    # Measured: worst 21.2 px, median 9.7 (MediaPipe 0.10.14 with the same landmark model: 18.0, 8.5).
    over = {i: round(w, 1) for i, w in enumerate(worst) if w > TFJS_EPSILON_VIDEO}
    assert not over, over
    assert np.median(worst) < 14.0, np.median(worst)


# Heatmap refinement ---------------------------------------------------------------------------------------


def raw_outputs(est: PoseEstimator, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The landmark model's regressed landmarks (39x2, normalized to the crop) and heatmap (64x64x39 logits)
    for the frame's detected person."""
    pipeline = est.pipeline
    h, w = rgb.shape[:2]
    people = pipeline.finder.detector.decode(
        est.backends["detector"].run(pipeline.finder.detector.preprocess(rgb, detector_rois(w, h, None))),
        detector_rois(w, h, None),
    )
    roi = pipeline.model.roi_for_detection(people[0])
    outputs = est.backend.run(pipeline.model.preprocess(rgb, [roi]))
    model = pipeline.model
    landmarks = outputs[model._landmarks_out].reshape(39, 5)[:, :2] / model.input_size
    return landmarks.astype(np.float64), outputs[model._heatmap_out][0]


def test_heatmap_refinement_pulls_a_displaced_landmark_back_to_its_heatmap_peak(blazepose_single, squat_frames):
    landmarks, heatmap = raw_outputs(blazepose_single, squat_frames[0])
    assert heatmap.shape == (64, 64, 39) and heatmap.min() < -5  # logits: MediaPipe applies the sigmoid
    nose, left_hip = 0, 23
    for k in (nose, left_hip):
        peak = np.unravel_index(np.argmax(heatmap[:, :, k]), (64, 64))
        peak_xy = np.array([peak[1], peak[0]]) / 64.0  # cell (row, col) is the point (col/64, row/64)
        displaced = landmarks.copy()
        displaced[k] = peak_xy + 2.0 / 64  # two cells off, still inside the 7x7 window
        refined = refine_from_heatmap(displaced, heatmap)
        before = np.linalg.norm(displaced[k] - peak_xy)
        after = np.linalg.norm(refined[k] - peak_xy)
        assert after < 0.5 * before, (k, before * 64, after * 64)  # measured: within a cell of the peak


def test_heatmap_refinement_follows_mediapipe_rules():
    heatmap = np.full((64, 64, 3), -20.0)  # sigmoid ~0: no confidence anywhere
    heatmap[10, 20, 0] = 5.0  # one confident cell for landmark 0
    heatmap[30, 30, 1] = -1.0  # landmark 1's peak, sigmoid 0.27 < 0.5: not refined
    heatmap[40, 40, 2] = 5.0
    xy = np.array([[22.5 / 64, 12.2 / 64], [31 / 64, 31 / 64], [1.2, 40 / 64]])  # landmark 2 is off the map
    out = refine_from_heatmap(xy, heatmap)
    # Landmark 0: the centre of mass of its window, dominated by the one cell (col 20, row 10) -> (20/64, 10/64).
    assert out[0] * 64 == pytest.approx([20.0, 10.0], abs=0.01)
    assert out[1] == pytest.approx(xy[1]) and out[2] == pytest.approx(xy[2])


def test_the_landmark_model_without_a_heatmap_still_decodes(blazepose_single, squat_frames):
    model = blazepose_single.pipeline.model
    saved = model._heatmap_out
    try:
        model._heatmap_out = None
        roi = Roi(360.0, 640.0, 1000.0, 1000.0)
        outputs = blazepose_single.backend.run(model.preprocess(squat_frames[0], [roi]))
        plain = model.decode(outputs, [roi], 720, 1280)[0]
        model._heatmap_out = saved
        refined = model.decode(outputs, [roi], 720, 1280)[0]
    finally:
        model._heatmap_out = saved
    moved = np.abs(plain.keypoints[:, :2] - refined.keypoints[:, :2]).max()
    assert 0.0 < moved < 40.0  # refinement moves keypoints by a few crop pixels, never to elsewhere


# MediaPipe's One-Euro ---------------------------------------------------------------------------------


def test_mediapipe_one_euro_on_a_step():
    f = MediaPipeOneEuro(POSE_LANDMARKS)
    dt = 1 / 30
    # Time 0 is MediaPipe's "no sample yet": passed through, nothing stored.
    assert f(np.array([5.0]), 0.0)[0] == 5.0
    assert f(np.array([0.0]), dt)[0] == 0.0  # the first sample initializes the filter
    # Step to 1: speed (1 - 0) * 30 = 30 per second; alpha_d = 1 / (1 + 30 / (2 pi * 1)) = 0.17318,
    # filtered speed 5.1954, cutoff 0.05 + 80 * 5.1954 = 415.68 Hz, alpha = 1 / (1 + 30 / (2 pi * 415.68)).
    alpha_d = 1 / (1 + 30 / (2 * math.pi))
    alpha = 1 / (1 + 30 / (2 * math.pi * (0.05 + 80 * 30 * alpha_d)))
    assert f(np.array([1.0]), 2 * dt)[0] == pytest.approx(alpha, abs=1e-12)
    assert alpha == pytest.approx(0.98864, abs=1e-5)
    # Held at 1: the speed is measured from the last raw value (1), not the filtered one, so it is 0.
    speed = (1 - alpha_d) * 30 * alpha_d
    alpha2 = 1 / (1 + 30 / (2 * math.pi * (0.05 + 80 * speed)))
    assert f(np.array([1.0]), 3 * dt)[0] == pytest.approx(alpha + alpha2 * (1 - alpha), abs=1e-12)
    # An old timestamp passes the value through and changes nothing.
    assert f(np.array([7.0]), 2 * dt)[0] == 7.0


def test_mediapipe_one_euro_measures_speed_in_object_sizes():
    """A person twice as big, moving twice as many pixels, is smoothed the same way."""
    rng = np.random.default_rng(0)
    path = np.cumsum(rng.normal(0, 3, size=(20, 4)), axis=0)
    small, big = MediaPipeOneEuro(POSE_LANDMARKS), MediaPipeOneEuro(POSE_LANDMARKS)
    for i, x in enumerate(path):
        t = (i + 1) / 30
        np.testing.assert_allclose(big(2 * x, t, 1 / 400), 2 * small(x, t, 1 / 200), rtol=1e-9)


def test_mediapipe_one_euro_takes_the_rate_from_timestamps():
    """At 15 fps a step moves the output further per frame than at 30 fps (a larger alpha per sample)."""
    outs = []
    for fps in (30, 15):
        f = MediaPipeOneEuro(AUXILIARY_LANDMARKS)
        for i, v in enumerate((0.0, 0.0, 1.0)):
            out = f(np.array([v]), (i + 1) / fps, 1 / 100)
        outs.append(out[0])
    assert 0 < outs[0] < outs[1] < 1


def test_filter_settings_are_mediapipes():
    assert LandmarkFilterParams(min_cutoff=0.05, beta=80.0, derivate_cutoff=1.0, frequency=30.0) == POSE_LANDMARKS
    assert LandmarkFilterParams(min_cutoff=0.01, beta=10.0, derivate_cutoff=1.0) == AUXILIARY_LANDMARKS
    assert POSE_ROI_SCALE == blazepose.ROI_SCALE


# The smoother and the carried crop ----------------------------------------------------------------------


def test_auxiliary_points_round_trip_through_a_crop():
    hip, circle = np.array([312.0, 580.0]), np.array([344.0, 160.0])
    roi = tracking_roi(hip, circle)
    assert roi == roi_from_auxiliary(hip, circle)
    np.testing.assert_allclose(auxiliary_points(roi), [hip, circle], atol=1e-9)
    assert object_scale(roi) == pytest.approx(2 * np.hypot(*(circle - hip)))


def test_carried_crop_stays_put_when_the_raw_one_jitters():
    hip, circle = np.array([312.0, 580.0]), np.array([344.0, 160.0])
    f = AuxiliaryRoiFilter()
    rng = np.random.default_rng(1)
    raw, carried = [], []
    for i in range(30):
        jitter = rng.normal(0, 4, size=2)
        roi = f(roi_from_auxiliary(hip + jitter, circle + jitter), (i + 1) / 30)
        raw.append(hip + jitter)
        carried.append((roi.cx, roi.cy))
    # Once settled the carried crop wanders a tenth as much as the raw one (measured: 1.8 px against
    # 20 px peak to peak); MediaPipe's comment: ~0.002 alpha at rest.
    assert np.ptp(np.array(carried[10:]), axis=0).max() < 0.15 * np.ptp(np.array(raw[10:]), axis=0).min()


def test_pose_landmark_smoother_smooths_visibility_and_restarts_when_presence_is_low():
    roi = tracking_roi(np.array([100.0, 200.0]), np.array([100.0, 50.0]))
    kps = np.zeros((33, 3))
    kps[:, 2] = 1.0
    s = PoseLandmarkSmoother()
    s.update([Estimate(kps.copy(), 0.9, roi)], 33.0, 640, 480)
    low = kps.copy()
    low[:, 2] = 0.0
    out = s.update([Estimate(low, 0.9, roi)], 66.0, 640, 480)[0]
    assert out.id is None and out.keypoints[:, 2] == pytest.approx(0.9)  # alpha 0.1 towards 0
    moved = kps.copy()
    moved[:, :2] += 50.0
    lost = s.update([Estimate(moved, 0.3, None)], 99.0, 640, 480)[0]  # presence < 0.5: no crop
    np.testing.assert_array_equal(lost.keypoints, moved)
    again = s.update([Estimate(kps.copy(), 0.9, roi)], 132.0, 640, 480)[0]
    np.testing.assert_array_equal(again.keypoints, kps)  # a fresh start: the first sample as it is


def test_blazepose_single_video_uses_mediapipes_loop_and_others_keep_theirs(blazepose_single):
    assert isinstance(blazepose_single._tracker, PoseLandmarkSmoother)
    assert isinstance(blazepose_single._carry, AuxiliaryRoiFilter)
    for options in (
        PoseEstimatorOptions(model="blazepose-full", mode="multi", threads=1),
        PoseEstimatorOptions(model="blazepose-full", smoothing_params=OneEuroParams(), threads=1),
    ):
        with PoseEstimator.create_from_options(options) as est:
            assert isinstance(est._tracker, PoseTracker) and est._carry is None


def test_reset_and_a_lost_person_start_the_carried_crop_filter_afresh(blazepose_single, squat_frames):
    est = blazepose_single
    est.reset()
    first = est.estimate_video_frame(squat_frames[0], 0.0).poses[0]
    est.estimate_video_frame(squat_frames[30], 33.0)
    est.reset()
    again = est.estimate_video_frame(squat_frames[0], 0.0).poses[0]
    np.testing.assert_allclose([(k.x, k.y) for k in again.keypoints], [(k.x, k.y) for k in first.keypoints], atol=1e-6)
    est.estimate_video_frame(np.zeros_like(squat_frames[0]), 66.0)  # nobody: the person is lost
    assert est._carry._filter._x is None
    est.reset()
