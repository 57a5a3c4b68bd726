"""The model interface every family implements, and the pieces they share.

Two kinds of pose model, each a pure preprocess / decode pair around one backend invoke that the
pipeline makes (a model never invokes itself, so the pipeline times every stage in one place):

- `CropModel` (MoveNet SinglePose, BlazePose landmarks, RTMPose): one person per crop; many crops of a
  frame run as one batch.
- `FrameModel` (PoseNet, MoveNet MultiPose): the whole frame in one invoke, everyone decoded from it.

`PersonDetector` finds the people that top-down pipelines crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from edgepose.assets.metadata import ModelMetadata, backend_metadata
from edgepose.bindings import Backend, TensorSpec, to_input_dtype
from edgepose.geometry import Roi, body_circle_roi
from edgepose.image import Normalization
from edgepose.keypoints import KeypointLayout
from edgepose.resampling import RoiResampler, Sampling


class Estimate(NamedTuple):
    """One person as a model decodes them."""

    keypoints: np.ndarray  # Kx3 (x, y, score), pixels of the original frame
    score: float  # the pose score (mean keypoint score, a presence probability, a person score)
    roi: Roi | None  # where to crop this person next frame; None: no crop to carry
    # Kx3 (x, y, z) metres about the hips' centre, axes as the image's (BlazePose's world landmarks);
    # None for models without them.
    world: np.ndarray | None = None


@dataclass(frozen=True)
class PersonDetection:
    """One detected person, in original-image pixels."""

    score: float
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    keypoints: np.ndarray  # 4x2: hip centre, body-circle point, then two more alignment points

    @property
    def center(self) -> tuple[float, float]:
        return float(self.keypoints[0, 0]), float(self.keypoints[0, 1])

    @property
    def radius(self) -> float:
        return float(np.hypot(*(self.keypoints[1] - self.keypoints[0])))

    def roi(self, rotate: bool = True, scale: float = 1.25) -> Roi:
        """The square around the body circle, enlarged by `scale`; rotated so the body stands upright.
        1.25 is MediaPipe's pose_detection_to_roi."""
        return body_circle_roi(self.keypoints[0], self.keypoints[1], scale, rotate)

    def body_box(self) -> tuple[float, float, float, float]:
        cx, cy = self.center
        r = self.radius
        return cx - r, cy - r, cx + r, cy + r


class CropModel(Protocol):
    """A per-person model: crops in, one Estimate per crop out."""

    backend: Backend
    keypoint_layout: KeypointLayout

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        """The crop this model wants for a detected person."""
        ...

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        """The model input for a batch of ROIs of `rgb` (HxWx3 uint8), one per person."""
        ...

    def decode(self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int) -> list[Estimate]:
        """Per ROI: keypoints in frame pixels, the pose score and the crop for the next frame."""
        ...


class FrameModel(Protocol):
    """A bottom-up model: the whole frame in, everyone out."""

    backend: Backend
    keypoint_layout: KeypointLayout
    max_detections: int

    def preprocess(self, rgb: np.ndarray) -> tuple[list[np.ndarray], Roi]:
        """The model input for the frame and the ROI (letterbox) that maps its results back."""
        ...

    def decode(self, outputs: list[np.ndarray], roi: Roi, width: int, height: int, max_people: int) -> list[Estimate]:
        """Everyone found, best first (roi None: bottom-up models carry no crops)."""
        ...


class PersonDetector(Protocol):
    backend: Backend

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]: ...

    def decode(self, outputs: list[np.ndarray], rois: list[Roi], score_threshold: float) -> list[PersonDetection]:
        """Every person found in any of the ROIs (not yet merged across them)."""
        ...


class CropBuffer:
    """ROIs of a frame resampled into one reused NxHxWx3 uint8 batch (grown when more people come), with
    the sampling convention of the model's family (`edgepose.resampling`)."""

    def __init__(self, width: int, height: int, sampling: Sampling = "half-pixel"):
        self.width, self.height = width, height
        self._resample = RoiResampler(width, height, sampling)
        self._batch = np.zeros((1, height, width, 3), dtype=np.uint8)

    def fill(self, rgb: np.ndarray, rois: list[Roi]) -> np.ndarray:
        if self._batch.shape[0] < len(rois):
            self._batch = np.zeros((len(rois), self.height, self.width, 3), dtype=np.uint8)
        for i, roi in enumerate(rois):
            self._resample(rgb, roi, out=self._batch[i])
        return self._batch[: len(rois)]


def model_metadata(backend: Backend, metadata: ModelMetadata | None) -> ModelMetadata | None:
    """The model file's edgepose metadata: as given, else read from the backend's file."""
    return metadata or backend_metadata(backend)


def normalized_input(pixels: np.ndarray, normalization: Normalization | None, spec: TensorSpec) -> np.ndarray:
    """uint8 pixels as the input tensor wants them: raw for a plain uint8 input, else normalized (None:
    the pixel values as floats) and cast or quantized to the input's dtype."""
    if spec.dtype == np.uint8 and not spec.quantized:
        return pixels
    real = pixels.astype(np.float32) if normalization is None else normalization.apply(pixels)
    return to_input_dtype(real, spec)


def per_image(shape: tuple[int, ...]) -> int:
    """Values per image of a tensor (its size without the batch dimension)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def is_nchw(shape: tuple[int, ...]) -> bool:
    """Whether a 4-D image tensor is channels-first (1x3xHxW) rather than NHWC."""
    return len(shape) == 4 and shape[1] in (1, 3) and shape[-1] not in (1, 3)
