"""The tflite-runtime fallback with the real package. CI's numpy-1.26 stage installs tflite-runtime
2.14 (it needs numpy<2); the main stage has none, and must then say how to get it."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgepose import PoseEstimator
from edgepose.bindings import open_backend
from edgepose.errors import BackendError
from tests.conftest import gt_for, oks, pose_xy


def _installed() -> bool:
    return importlib.util.find_spec("tflite_runtime") is not None


def test_tflite_runtime_gives_litert_keypoints_or_a_clear_error(movenet_path, one_person_photo, coco):
    if not _installed():
        with pytest.raises(BackendError, match="pip install tflite-runtime"):
            open_backend(movenet_path, backend="tflite-runtime")
        return
    with (
        PoseEstimator.create_from_model(backend="tflite-runtime", threads=1) as fallback,
        PoseEstimator.create_from_model(backend="litert", threads=1) as litert,
    ):
        assert fallback.backend.name == "tflite-runtime"
        a = pose_xy(fallback.estimate(one_person_photo)[0])
        b = pose_xy(litert.estimate(one_person_photo)[0])
    # Same int8 model, different kernel builds (tflite-runtime 2.14 vs LiteRT): the keypoints move by
    # a few pixels (3.6 px mean, 7.8 px max on this 640x425 photo), and stay as accurate.
    assert np.linalg.norm(a - b, axis=1).mean() < 0.01 * np.hypot(640, 425)
    assert oks(a, gt_for(coco, "000000000785.jpg")[0]) >= 0.90


def test_multi_person_mode_runs_on_tflite_runtime(coco):
    # tflite-runtime 2.14 segfaulted when the person detector's batch was resized (found by the arm64 check,
    # benchmarks/pi_os/check.sh): on it, batches now run image by image.
    from edgepose import PoseEstimatorOptions
    from edgepose.bindings import tflite_rt
    from tests.conftest import DATA_DIR

    assert tflite_rt.BATCHABLE is False
    if not _installed():
        return  # the main stage: the backend is refused with one line (the test above)
    photo = DATA_DIR / "coco" / "000000196141.jpg"  # 4 annotated people
    options = PoseEstimatorOptions(mode="multi", backend="tflite-runtime", threads=1)
    with PoseEstimator.create_from_options(options) as est:
        poses = est.estimate(photo)
        assert est.backend.name == "tflite-runtime"
    people = [a for a in gt_for(coco, photo.name) if a["num_keypoints"] >= 5]
    best = [max(oks(pose_xy(p), a) for p in poses) for a in people]
    # Measured: 4 poses, best-match OKS 0.85 / 0.87 / 0.89 / 0.74 (LiteRT: 0.87 / 0.85 / 0.88 / 0.67).
    assert len(poses) == len(people) == 4 and min(best) >= 0.6, best
