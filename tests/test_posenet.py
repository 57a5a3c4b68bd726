"""PoseNet multi-person on CPU: decoder surgery on the real Coral file, numpy decoding, accuracy on COCO photos."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgepose.assets import tflite_edit
from edgepose.assets.tflite_edit import cpu_posenet_model, strip_posenet_decoder
from edgepose.bindings import TensorSpec, open_backend
from edgepose.errors import ModelError
from edgepose.geometry import Roi
from edgepose.image import load_image
from edgepose.models.posenet import POSE_TREE, PoseNetMultiPose, decode_multiple_poses
from edgepose.pipelines.base import run_frame
from edgepose.results import Timings
from tests.conftest import DATA_DIR, gt_for, oks, pose_xy

POSENET_FILE = "posenet_mobilenet_v1_075_481_641_quant_decoder.tflite"
COCO_PHOTOS = ("000000000785.jpg", "000000040083.jpg", "000000196141.jpg", "000000197388.jpg")
# COCO counts a detection as a match from OKS 0.5 (the loosest AP threshold). Measured on 196141: the
# four people score 0.82, 0.60, 0.83, 0.78 (the 0.60 one is partly hidden behind another person).
MATCH_OKS = 0.5
# Measured mean best-match OKS over the 12 annotated people (>= 5 visible keypoints) of the 4 photos: 0.756.
MEAN_OKS_FLOOR = 0.72


@pytest.fixture(scope="module")
def posenet_path(model_dir: Path) -> Path:
    return model_dir / POSENET_FILE


@pytest.fixture(scope="module")
def posenet(posenet_path: Path, tmp_path_factory: pytest.TempPathFactory) -> PoseNetMultiPose:
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tflite_edit, "cache_dir", lambda: cache)
        path, params = cpu_posenet_model(posenet_path)
    return PoseNetMultiPose(open_backend(path, "litert", threads=2), params)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stripped_model_runs_on_cpu_and_is_cached(posenet_path, tmp_path, monkeypatch):
    monkeypatch.setattr(tflite_edit, "cache_dir", lambda: tmp_path)
    before = _sha256(posenet_path)
    path, params = cpu_posenet_model(posenet_path)

    assert path.parent == tmp_path and path.name == f"posenet-cpu-{before[:16]}.tflite"
    assert params == {"max_detections": 20, "score_threshold": pytest.approx(0.2), "stride": 16, "nms_radius": 10.0}
    backend = open_backend(path, "litert", threads=2)
    assert sorted(o.shape for o in backend.outputs) == [(1, 31, 41, 17), (1, 31, 41, 34), (1, 31, 41, 64)]
    outputs = backend.run([np.zeros((1, 481, 641, 3), np.uint8)])
    assert sorted(o.shape for o in outputs) == sorted(o.shape for o in backend.outputs)
    assert _sha256(posenet_path) == before

    mtime = path.stat().st_mtime_ns
    again, _ = cpu_posenet_model(posenet_path)
    assert again == path and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind


def test_non_posenet_files_are_refused(movenet_path, tmp_path):
    with pytest.raises(ModelError, match="not a PoseNet model"):
        strip_posenet_decoder(movenet_path, tmp_path / "out.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a TFLite model"):
        cpu_posenet_model(junk)
    assert not (tmp_path / "out.tflite").exists()


def detect(model, rgb):
    """Everyone the model decodes in `rgb`, as the bottom-up pipeline runs it (before its duplicate check)."""
    return run_frame(model, rgb, model.max_detections, Timings())


def test_finds_all_four_people(posenet, coco):
    people = detect(posenet, load_image(DATA_DIR / "coco" / "000000196141.jpg"))
    anns = [a for a in gt_for(coco, "000000196141.jpg") if a["num_keypoints"] >= 5]
    assert len(anns) == 4
    best = [max(range(len(people)), key=lambda i: oks(people[i][0], a)) for a in anns]
    scores = [oks(people[i][0], a) for i, a in zip(best, anns)]
    assert min(scores) >= MATCH_OKS, scores
    assert len(set(best)) == 4  # four different predicted people, not one pose matched four times


def test_mean_oks_on_coco_photos(posenet, coco):
    best = []
    for name in COCO_PHOTOS:
        rgb = load_image(DATA_DIR / "coco" / name)
        people = detect(posenet, rgb)
        for kps in (p.keypoints for p in people):
            assert kps.shape == (17, 3)
            assert (kps[:, 0] >= 0).all() and (kps[:, 0] <= rgb.shape[1] - 1).all()
            assert (kps[:, 1] >= 0).all() and (kps[:, 1] <= rgb.shape[0] - 1).all()
        assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
        best += [max(oks(p.keypoints, a) for p in people) for a in gt_for(coco, name) if a["num_keypoints"] >= 5]
    assert len(best) == 12
    assert np.mean(best) >= MEAN_OKS_FLOOR, best


# One synthetic person on an 8x10 grid (stride 16). All values are exact binary fractions, so the
# decoded coordinates must come out exactly.
STRIDE = 16
PART_XY = np.array([(30 + 5.5 * k, 10 + 6.25 * k) for k in range(17)])
PART_SCORE = np.array([0.5 + 0.02 * k for k in range(17)])


def _synthetic_maps(grid_h: int = 8, grid_w: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.full((grid_h, grid_w, 17), 1e-4, np.float32)
    short = np.zeros((grid_h, grid_w, 34), np.float32)
    mid = np.zeros((grid_h, grid_w, 64), np.float32)
    cy, cx = np.mgrid[0:grid_h, 0:grid_w] * STRIDE
    for k, (x, y) in enumerate(PART_XY):
        scores[round(y / STRIDE), round(x / STRIDE), k] = PART_SCORE[k]
        short[..., k], short[..., 17 + k] = y - cy, x - cx  # every cell points at the part
    for e, (parent, child) in enumerate(POSE_TREE):
        (px, py), (qx, qy) = PART_XY[parent], PART_XY[child]
        mid[..., e], mid[..., 16 + e] = qy - py, qx - px  # forward: parent -> child
        mid[..., 32 + e], mid[..., 48 + e] = py - qy, px - qx  # backward: child -> parent
    return scores, short, mid


def test_decoder_recovers_a_synthetic_person_exactly():
    poses = decode_multiple_poses(*_synthetic_maps(), STRIDE, max_poses=20, score_threshold=0.2, nms_radius=10)
    assert len(poses) == 1  # the other 16 part peaks are suppressed by the first pose's parts
    kps, score = poses[0]
    np.testing.assert_array_equal(kps[:, :2], PART_XY)
    np.testing.assert_allclose(kps[:, 2], PART_SCORE, rtol=1e-6)
    assert score == pytest.approx(PART_SCORE.mean())


class _FakeBackend:
    """Output specs only: `decode` never runs the model."""

    inputs = (TensorSpec("image", (1, 113, 145, 3), np.dtype(np.uint8), 1 / 128, 128),)
    outputs = (
        TensorSpec("mid", (1, 8, 10, 64), np.dtype(np.float32)),
        TensorSpec("heatmaps", (1, 8, 10, 17), np.dtype(np.float32)),
        TensorSpec("short", (1, 8, 10, 34), np.dtype(np.float32)),
    )


def test_decode_maps_back_to_image_pixels():
    scores, short, mid = _synthetic_maps()
    logits = np.log(scores / (1 - scores))
    estimator = PoseNetMultiPose(_FakeBackend(), {"stride": STRIDE})
    # A 290x226 image letterboxes into the 145x113 input at exactly half size.
    roi = Roi.letterbox_to(290, 226, 145, 113)
    people = estimator.decode([mid[None], logits[None], short[None]], roi, 290, 226)
    assert len(people) == 1
    kps = people[0].keypoints
    # Input pixel centres sit at integers, image pixel centres at +0.5: x_image = 2 * (x_input + 0.5).
    np.testing.assert_allclose(kps[:, :2], 2 * (PART_XY + 0.5), atol=1e-9)
    np.testing.assert_allclose(kps[:, 2], PART_SCORE, rtol=1e-5)


@pytest.mark.parametrize("form", ["renamed Coral file", "already stripped file"])
def test_posenet_given_by_path_works_like_the_registry_name(posenet_path, coco, tmp_path, monkeypatch, form):
    from edgepose import PoseEstimator

    monkeypatch.setattr(tflite_edit, "cache_dir", lambda: tmp_path / "cache")
    model = tmp_path / "my_posenet.tflite"
    if form == "renamed Coral file":
        model.write_bytes(posenet_path.read_bytes())
    else:
        strip_posenet_decoder(posenet_path, model)
    with PoseEstimator.create_from_model(str(model), mode="multi", threads=2) as est:
        poses = est.estimate(DATA_DIR / "coco" / "000000196141.jpg")
    for ann in gt_for(coco, "000000196141.jpg"):
        if ann["num_keypoints"] >= 5:
            assert max(oks(pose_xy(p), ann) for p in poses) >= 0.5
