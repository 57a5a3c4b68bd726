"""One resampling result in every install (edgepose.resampling), checked per crop kind on the real photos.

The resampler is Pillow's in every install, so with or without OpenCV the model input is the same
tensor; each crop kind is also compared with an independent float reference of its sampling convention
(and with OpenCV's warpAffine where it is installed), to within 1 LSB.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from edgepose.geometry import Roi, SquareRoi
from edgepose.image import load_image
from edgepose.resampling import RoiResampler
from tests.conftest import DATA_DIR

PHOTO = DATA_DIR / "coco" / "000000000785.jpg"  # 640x425, one skier
GROUP = DATA_DIR / "coco" / "000000196141.jpg"

# Each crop kind the pipelines cut: (output width, height, sampling, ROI in a 640x425 photo).
CROP_KINDS = {
    "MoveNet letterbox": (192, 192, "half-pixel", SquareRoi.letterbox(640, 425)),
    "MoveNet torso crop": (192, 192, "half-pixel", SquareRoi(380.5, 220.25, 301.7)),
    "person-detector tile": (224, 224, "corners", Roi(128.0, 128.0, 256.0, 256.0)),
    "BlazePose rotated ROI": (256, 256, "corners", Roi(390.3, 210.8, 410.2, 410.2, 0.3)),
    "RTMPose affine crop": (192, 256, "corners", Roi(385.0, 215.0, 240.0, 320.0)),
}


def sample_points(roi: Roi, ow: int, oh: int, sampling: str) -> tuple[np.ndarray, np.ndarray]:
    """Where output pixel (i, j) reads the frame: the ROI point ((j + 1/2)/ow, (i + 1/2)/oh)
    ("half-pixel") or (j/ow, i/oh) ("corners"), in pixel-edge coordinates."""
    half = 0.5 if sampling == "half-pixel" else 0.0
    u = (np.arange(ow) + half) / ow
    v = (np.arange(oh) + half) / oh
    return roi.to_image(u[None, :], v[:, None])


def reference(rgb: np.ndarray, roi: Roi, ow: int, oh: int, sampling: str) -> np.ndarray:
    """Bilinear sampling in float64, written from the convention alone; points outside the frame are black."""
    x, y = sample_points(roi, ow, oh, sampling)
    h, w = rgb.shape[:2]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    xc, yc = x - 0.5, y - 0.5  # pixel centres at integers
    x0, y0 = np.floor(xc), np.floor(yc)
    fx, fy = (xc - x0)[..., None], (yc - y0)[..., None]
    img = rgb.astype(np.float64)

    def at(yy, xx):
        return img[np.clip(yy, 0, h - 1).astype(int), np.clip(xx, 0, w - 1).astype(int)]

    out = (
        at(y0, x0) * (1 - fx) * (1 - fy)
        + at(y0, x0 + 1) * fx * (1 - fy)
        + at(y0 + 1, x0) * (1 - fx) * fy
        + at(y0 + 1, x0 + 1) * fx * fy
    )
    return np.where(inside[..., None], np.round(out), 0.0)


@pytest.mark.parametrize("kind", list(CROP_KINDS))
def test_each_crop_kind_matches_its_reference_convention(kind):
    ow, oh, sampling, roi = CROP_KINDS[kind]
    rgb = load_image(PHOTO)
    ours = RoiResampler(ow, oh, sampling)(rgb, roi).astype(float)
    diff = np.abs(ours - reference(rgb, roi, ow, oh, sampling))
    # Measured: every pixel within 1 (Pillow's fixed-point rounding), mean 0.29-0.50.
    assert diff.max() <= 1 and diff.mean() <= 0.6, kind


@pytest.mark.parametrize("kind", list(CROP_KINDS))
def test_opencv_samples_the_same_points(kind):
    """Where OpenCV is installed, its warpAffine with the same convention gives the same tensor to 1 LSB
    (it is not used: its fixed-point rounding differs from Pillow's by 1 LSB, which int8 models amplify)."""
    import cv2  # the test extra installs it; the on-device install has none (and does not run this file)

    ow, oh, sampling, roi = CROP_KINDS[kind]
    rgb = load_image(PHOTO)
    a, b, c, d, e, f = roi.affine()
    half = 0.5 if sampling == "half-pixel" else 0.0
    # Output pixel j (OpenCV: centre at j) reads ROI point (j + half)/ow, shifted to OpenCV's centres.
    m = np.array(
        [[a / ow, b / oh, c + half * (a / ow + b / oh) - 0.5], [d / ow, e / oh, f + half * (d / ow + e / oh) - 0.5]]
    )
    theirs = cv2.warpAffine(rgb, m, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=(0, 0, 0))
    ours = RoiResampler(ow, oh, sampling)(rgb, roi)
    # Away from the frame's edge: OpenCV blends the edge pixels with the black border, Pillow does not.
    x, y = sample_points(roi, ow, oh, sampling)
    h, w = rgb.shape[:2]
    inner = (x >= 1) & (x <= w - 1) & (y >= 1) & (y <= h - 1)
    diff = np.abs(ours.astype(int) - theirs.astype(int))[inner]
    # Measured: mean 0.3-0.6, the largest 1-2 (OpenCV quantizes sample positions to 1/32 pixel).
    assert diff.mean() <= 0.7 and np.percentile(diff, 99.9) <= 2, kind


_KEYPOINTS = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["cv2"] = None  # as in the on-device install
from edgepose import PoseEstimator
out = {}
for mode in ("single", "multi"):
    with PoseEstimator.create_from_model(mode=mode) as est:
        for path in sys.argv[2:]:
            out[f"{mode} {path}"] = [[(k.x, k.y, k.score) for k in p.keypoints] for p in est.estimate(path)]
print(json.dumps(out))
"""


def test_same_keypoints_with_and_without_opencv():
    """The default model, single and multi, on two photos: bit-identical keypoints whether or not OpenCV
    can be imported (before this, the two installs differed by up to 0.13 OKS per person)."""
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _KEYPOINTS, how, str(PHOTO), str(GROUP)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for how in ("blocked", "allowed")
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]["multi " + str(GROUP)]) >= 4


def test_huge_still_gives_the_keypoints_of_a_downscaled_copy(estimator):
    """An 8000x5312 still (the photo upscaled 12.5x, with sensor-like noise) letterboxed into 192x192
    is shrunk 42x: it is box-averaged first, so the model sees what a downscaled copy gives it."""
    small = Image.open(PHOTO).convert("RGB")
    big = np.asarray(small.resize((8000, 5312), Image.Resampling.BICUBIC)).astype(np.int16)
    noise = np.random.default_rng(7).integers(-60, 61, size=big.shape, dtype=np.int16)
    huge = np.clip(big + noise, 0, 255).astype(np.uint8)
    del big, noise
    copy = np.asarray(Image.fromarray(huge).resize((640, 425), Image.Resampling.BOX))

    resampler = RoiResampler(192, 192)
    tensor_huge = resampler(huge, SquareRoi.letterbox(8000, 5312)).astype(int)
    tensor_copy = RoiResampler(192, 192)(copy, SquareRoi.letterbox(640, 425)).astype(int)
    # Measured: mean 1.8 LSB with the box average; 15.3 without (bilinear reads 4 of every ~1700 pixels).
    assert np.abs(tensor_huge - tensor_copy)[8:-40].mean() < 3.0

    kp_huge = np.array([(k.x, k.y) for k in estimator.estimate(huge)[0].keypoints]) / 12.5
    kp_copy = np.array([(k.x, k.y) for k in estimator.estimate(copy)[0].keypoints])
    # Measured: median 4.0 px (4.5 without the box average; the copy and the noise-free photo differ by 3.8).
    assert np.median(np.linalg.norm(kp_huge - kp_copy, axis=1)) < 5.0
