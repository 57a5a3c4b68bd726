"""Keypoints on real photos against COCO ground truth, and the video fast path on a real-photo sequence."""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.keypoints import COCO17_KEYPOINTS
from tests.conftest import gt_for, oks, pose_xy


def test_one_person_photo_reaches_oks_080(estimator, one_person_photo, coco):
    result = estimator.estimate_frame(one_person_photo)
    assert (result.width, result.height) == (640, 425)
    assert len(result.poses) == 1
    pose = result.poses[0]
    assert [k.name for k in pose.keypoints] == list(COCO17_KEYPOINTS)
    ann = gt_for(coco, "000000000785.jpg")[0]
    score = oks(pose_xy(pose), ann)
    assert score >= 0.90, score  # 0.83 from the letterboxed pass alone, 0.98 after the crop pass
    # bbox covers the confident keypoints and sits inside the image
    x0, y0, x1, y1 = pose.bbox
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 425
    gx, gy, gw, gh = ann["bbox"]
    assert abs(x0 - gx) < 0.25 * gw and abs(x1 - (gx + gw)) < 0.25 * gw


def test_letterbox_keeps_aspect_ratio(estimator, one_person_photo, coco):
    """The same person on a tall canvas (padding above and below) lands on the same pixels."""
    photo = np.asarray(Image.open(one_person_photo).convert("RGB"))
    canvas = np.zeros((900, 640, 3), np.uint8)
    canvas[200:625] = photo
    pose = estimator.estimate(canvas)[0]
    ann = dict(gt_for(coco, "000000000785.jpg")[0])
    kps = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    kps[:, 1] += 200
    ann["keypoints"] = kps.ravel().tolist()
    assert oks(pose_xy(pose), ann) >= 0.75


def _sequence(photo: np.ndarray, ann: dict, n: int = 24):
    """Frames of a 640x480 camera: the photo scaled 1.0 -> 0.55 and sliding right, with moved GT."""
    h, w = photo.shape[:2]
    base = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    for i in range(n):
        s = 1.0 - 0.45 * i / (n - 1)
        sw, sh = round(w * s), round(h * s)
        tx, ty = round((640 - sw) * i / (n - 1)), round((480 - sh) / 2)
        frame = np.zeros((480, 640, 3), np.uint8)
        frame[ty : ty + sh, tx : tx + sw] = np.asarray(Image.fromarray(photo).resize((sw, sh), Image.BILINEAR))
        kps = base.copy()
        kps[:, 0] = kps[:, 0] * sw / w + tx
        kps[:, 1] = kps[:, 1] * sh / h + ty
        yield frame, {"keypoints": kps.ravel().tolist(), "area": ann["area"] * s * s}


def _run_sequence(est, photo, ann):
    est.reset()
    video_oks, still_oks, crops = [], [], 0
    for i, (frame, moved) in enumerate(_sequence(photo, ann)):
        result = est.estimate_video_frame(frame, i * 33.3)
        assert len(result.poses) == 1
        video_oks.append(oks(pose_xy(result.poses[0]), moved))
        still_oks.append(oks(pose_xy(est.estimate(frame)[0]), moved))
        crops += result.roi[2] < 640  # a square smaller than the letterboxed frame: a carried crop
    est.reset()
    return np.mean(video_oks), np.mean(still_oks), crops


def test_video_fast_path_tracks_with_crops(one_person_photo, coco):
    photo = np.asarray(Image.open(one_person_photo).convert("RGB"))
    ann = gt_for(coco, "000000000785.jpg")[0]
    # Stills without the refining second pass: the letterboxed full frame, the fallback of the fast path.
    options = PoseEstimatorOptions(threads=2, smoothing=False, refine_stills=False)
    with PoseEstimator.create_from_options(options) as est:
        video, still, crops = _run_sequence(est, photo, ann)
    # After the first frame every frame should run on the crop carried from the previous one.
    assert crops >= 22, crops
    # Cropping is the point: the person fills the input, so it beats the letterboxed full frame.
    assert video >= 0.92 and video > still, (video, still)


def test_video_smoothing_keeps_up_with_fast_motion(estimator, one_person_photo, coco):
    """Default One-Euro smoothing on a person crossing the frame in under a second still scores high."""
    photo = np.asarray(Image.open(one_person_photo).convert("RGB"))
    video, _, _ = _run_sequence(estimator, photo, gt_for(coco, "000000000785.jpg")[0])
    assert video >= 0.88, video


def test_fast_path_falls_back_to_full_frame_when_person_leaves(estimator, one_person_photo):
    photo = np.asarray(Image.open(one_person_photo).convert("RGB"))
    estimator.reset()
    first = estimator.estimate_video_frame(photo, 0.0)
    second = estimator.estimate_video_frame(photo, 33.0)
    assert second.roi[2] < 640  # tracking: a crop
    empty = np.full_like(photo, 255)  # the skier is gone: only snow
    lost = estimator.estimate_video_frame(empty, 66.0)
    assert lost.poses == []
    back = estimator.estimate_video_frame(photo, 99.0)
    assert back.roi == (320.0, 212.5, 640.0)  # after losing the person: the full letterboxed frame
    assert len(first.poses) == len(back.poses) == 1
    estimator.reset()


def test_video_timestamps_must_increase(estimator, one_person_photo):
    import pytest

    from edgepose.errors import EdgeposeError

    estimator.reset()
    estimator.estimate_video_frame(one_person_photo, 100.0)
    with pytest.raises(EdgeposeError, match="timestamps must increase"):
        estimator.estimate_video_frame(one_person_photo, 100.0)
    estimator.reset()


def test_still_image_accepts_path_pil_and_array_alike(estimator, one_person_photo):
    pil = Image.open(one_person_photo)
    arr = np.asarray(pil.convert("RGB"))
    a = pose_xy(estimator.estimate(one_person_photo)[0])
    b = pose_xy(estimator.estimate(pil)[0])
    c = pose_xy(estimator.estimate(arr)[0])
    assert np.array_equal(a, b) and np.array_equal(a, c)
