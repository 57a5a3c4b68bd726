"""Every option is honoured by the pipelines it applies to and refused elsewhere; the estimator closes
every backend it opened; the backend's listening hook sees exactly what the model is fed."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.bindings import open_backend
from edgepose.errors import BackendError, EdgeposeError
from edgepose.image import load_image
from tests.conftest import DATA_DIR

GROUP = DATA_DIR / "coco" / "000000196141.jpg"


def batches_fed(backend, action) -> list[int]:
    """The batch size of every run / run_batch call `action` makes on `backend`."""
    sizes: list[int] = []
    with backend.listening(lambda inputs: sizes.append(inputs[0].shape[0])):
        action()
    return sizes


@pytest.mark.parametrize("option", ["refine_stills", "roi_tracking"])
def test_crop_options_are_refused_for_bottom_up(option):
    with pytest.raises(
        EdgeposeError,
        match=f"{option} applies to single-crop and top-down pipelines; posenet-mobilenet in multi mode runs bottom-up",
    ):
        PoseEstimator.create_from_options(
            PoseEstimatorOptions(model="posenet-mobilenet", mode="multi", **{option: False})
        )


def test_refine_stills_is_honoured_by_single_crop_and_top_down(one_person_photo):
    rgb = load_image(one_person_photo)
    for mode, default_calls, plain_calls in (("single", [1, 1], [1]), ("multi", [1, 1], [1])):
        for refine, expected in ((True, default_calls), (False, plain_calls)):
            options = PoseEstimatorOptions(mode=mode, refine_stills=refine, threads=2)
            with PoseEstimator.create_from_options(options) as est:
                poses = []
                calls = batches_fed(est.backend, lambda est=est, poses=poses: poses.extend(est.estimate(rgb)))
                assert calls == expected, (mode, refine, calls)
                assert len(poses) == 1 and poses[0].score > 0.5


def test_roi_tracking_off_runs_the_detector_every_frame():
    rgb = load_image(GROUP)
    for tracking, expected_detector_frames in ((True, 2), (False, 12)):
        options = PoseEstimatorOptions(mode="multi", roi_tracking=tracking, threads=2)
        with PoseEstimator.create_from_options(options) as est:
            frames = []

            def stream(est=est, frames=frames):
                for i in range(12):
                    frames.append(len(est.estimate_for_video(rgb, 33.0 * (i + 1))))

            assert len(batches_fed(est.backends["detector"], stream)) == expected_detector_frames
            assert min(frames) >= 3  # the group is found either way


def test_close_releases_the_pose_model_and_the_detector():
    est = PoseEstimator.create_from_options(PoseEstimatorOptions(mode="multi", threads=1))
    backends = est.backends
    assert set(backends) == {"pose", "detector"} and not any(b.closed for b in backends.values())
    est.close()
    assert all(b.closed for b in backends.values())
    est.close()  # twice is fine


def test_listening_sees_a_batch_once(model_dir):
    backend = open_backend(model_dir / "blazepose_landmark_full.tflite", "litert", threads=1)
    x = np.zeros((3, 256, 256, 3), np.float32)
    seen = []
    with backend.listening(lambda inputs: seen.append(inputs[0].shape)):
        backend.run_batch([x])
        backend.run([x[:1]])
    backend.run([x[:1]])  # not listening any more
    assert seen == [(3, 256, 256, 3), (1, 256, 256, 3)]


def test_a_closed_estimator_refuses_with_one_line(one_person_photo):
    est = PoseEstimator.create_from_options(PoseEstimatorOptions(threads=1))
    est.close()
    with pytest.raises(BackendError, match="the model was closed"):
        est.estimate(one_person_photo)
