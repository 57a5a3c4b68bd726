"""How a (rotated) region of a frame becomes a model's input pixels: one implementation for every install.

One result everywhere. The on-device install has no OpenCV, so the resampler is Pillow's affine
transform in every install: a workstation with OpenCV feeds the model exactly the tensor a Raspberry Pi
feeds it. (OpenCV's warpAffine and Pillow agree to within 1 LSB, but an int8 pose model turns 1 LSB
into keypoints that move by up to a seventh of a person's height: on the shared COCO photos the
two resamplers gave mean OKS 0.764 and 0.733 with the same model.) OpenCV is used for video files
and cameras only.

Coordinates are pixel-edge based throughout edgepose: pixel (i, j) of an image covers [j, j+1) x [i, i+1),
so a W x H image spans [0, W] x [0, H]. A `Roi` is in those coordinates. The two sampling conventions
of the reference implementations differ in where an output pixel looks inside the ROI:

- "half-pixel" (TensorFlow's `tf.image.resize` with half_pixel_centers, as in MoveNet's
  `resize_with_pad`; PoseNet's and the TF Lite examples' `cv2.resize`): output pixel j of N covers the
  ROI's [j/N, (j+1)/N] and samples its centre, (j + 1/2)/N.
- "corners" (MediaPipe's ImageToTensor, which maps the ROI's corners onto output pixel centres 0 and N
  with getPerspectiveTransform; mmpose's and rtmlib's top-down affine for RTMPose): output pixel j
  samples the ROI at j/N, half an output pixel from the "half-pixel" point.

Each family's row in the family table names the convention it was trained with; decoding maps model
coordinates back with the same ROI, so the conventions differ only in what the model sees.

Sampling is bilinear, with black outside the frame (TF's resize_with_pad pads with zeros after
resizing, MediaPipe's detector input uses BORDER_ZERO; its landmark crop replicates the edge pixels
instead, which Pillow cannot do: measured on the squat clip, worst 21.4 -> 19.6 px against MediaPipe's
output, left as a known difference), and without antialiasing, as the references do. One exception:
when a ROI is shrunk 8x or more (a 8000x5328 still letterboxed into 192x192 is shrunk 42x), bilinear
sampling would read 4 of every ~1700 pixels and turn noise and fine texture into aliasing, so the
region is first box-averaged by an integer factor (Pillow's `reduce`) to leave a 2-4x bilinear step:
such a still then gives the keypoints of a downscaled copy of itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np

from edgepose.geometry import Roi
from edgepose.image import is_pil_image
from edgepose.pillow_bilinear import affine_bilinear

if TYPE_CHECKING:
    from PIL import Image

Sampling = Literal["half-pixel", "corners"]
SAMPLINGS: tuple[str, ...] = ("half-pixel", "corners")

# A ROI shrunk by this factor or more is box-averaged first (see the module docstring).
PRESHRINK_FROM = 8.0
# The bilinear step left after the box average shrinks by 2-4x.
_BILINEAR_SHRINK = 2.0
# Input pixels (before any box average) kept around a ROI's bounding box when only that part of the
# frame is converted for Pillow.
_MARGIN = 2


class RoiResampler:
    """Fills a pre-allocated HxWx3 uint8 buffer with a bilinear resample of a (rotated) ROI of a frame."""

    def __init__(self, out_width: int, out_height: int, sampling: Sampling = "half-pixel"):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, not {sampling!r}")
        self.out_size = (out_width, out_height)
        self.sampling = sampling
        self.buffer = np.zeros((out_height, out_width, 3), dtype=np.uint8)

    def __call__(self, image: Image.Image | np.ndarray, roi: Roi, out: np.ndarray | None = None) -> np.ndarray:
        """Resample `roi` of `image` (HxWx3 uint8 RGB, or a PIL image) into `out` (default: this
        resampler's own buffer) and return it."""
        out = self.buffer if out is None else out
        if is_pil_image(image):
            image = np.asarray(image.convert("RGB"))
        ow, oh = self.out_size
        a, b, c, d, e, f = roi.affine()
        # Pillow maps output pixel centres (j + 1/2, i + 1/2) through (A, B, C, D, E, F) to pixel-edge
        # coordinates of the input: for "half-pixel" that is the ROI point ((j + 1/2)/N, (i + 1/2)/M).
        a, b, d, e = a / ow, b / oh, d / ow, e / oh
        if self.sampling == "corners":
            c -= 0.5 * (a + b)
            f -= 0.5 * (d + e)
        factor = _preshrink_factor(math.hypot(a, d), math.hypot(b, e))
        region, (x0, y0) = _source_region(image, (a, b, c, d, e, f), ow, oh, _MARGIN * factor)
        if region is None:
            out[...] = 0
            return out
        c, f = c - x0, f - y0
        # Without rotation or a pre-shrink (MoveNet's letterbox and torso crop, the detector's tiles): the
        # same bits as Pillow's transform below, about twice as fast (edgepose.pillow_bilinear).
        if factor == 1 and affine_bilinear(region, self.out_size, (a, b, c, d, e, f), out) is not None:
            return out
        from PIL import Image

        src = Image.fromarray(np.ascontiguousarray(region))
        if factor > 1:
            src, (a, b, c, d, e, f) = _reduced(src, factor, (a, b, c, d, e, f))
        resampled = src.transform(
            self.out_size, Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.Resampling.BILINEAR
        )
        out[...] = np.asarray(resampled)
        return out


def _source_region(
    image: np.ndarray, coeffs: tuple[float, ...], ow: int, oh: int, margin: int
) -> tuple[np.ndarray | None, tuple[int, int]]:
    """The part of the frame the output can read (its bounding box plus a margin, a view), and its top-left.
    Converting only that part for Pillow saves most of the copy for a small person in a large frame."""
    a, b, c, d, e, f = coeffs
    xs = [a * u + b * v + c for u in (0, ow) for v in (0, oh)]
    ys = [d * u + e * v + f for u in (0, ow) for v in (0, oh)]
    h, w = image.shape[:2]
    x0, x1 = max(math.floor(min(xs)) - margin, 0), min(math.ceil(max(xs)) + margin, w)
    y0, y1 = max(math.floor(min(ys)) - margin, 0), min(math.ceil(max(ys)) + margin, h)
    if x1 <= x0 or y1 <= y0:
        return None, (0, 0)
    return image[y0:y1, x0:x1], (x0, y0)


def _preshrink_factor(step_x: float, step_y: float) -> int:
    """The integer box-average factor for input steps per output pixel (1: none)."""
    shrink = min(step_x, step_y)
    if shrink < PRESHRINK_FROM:
        return 1
    return int(shrink // _BILINEAR_SHRINK)


def _reduced(
    src: Image.Image, factor: int, coeffs: tuple[float, ...]
) -> tuple[Image.Image, tuple[float, float, float, float, float, float]]:
    """`src` box-averaged by `factor`, and the transform rescaled to its coordinates. Pillow's reduce
    keeps a partial last block (averaged over the pixels it has), so the edges stay in place."""
    small = src.reduce(factor)
    a, b, c, d, e, f = (v / factor for v in coeffs)
    return small, (a, b, c, d, e, f)
