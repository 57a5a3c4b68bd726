"""MoveNet SinglePose (Lightning / Thunder, any precision): preprocessing, decoding, crop tracking.

Output 1x1x17x3: (y, x, score) per COCO-17 keypoint, normalized to the square model input; found by
its shape, not its position (converters may add or reorder outputs). Float inputs get the pixels as
they are (0..255), unless the file's edgepose metadata gives another normalization.
"""

from __future__ import annotations

import numpy as np
from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.blazepose_detector import PersonDetection
from edgepose.data import COCO17_KEYPOINTS, Keypoint, Pose
from edgepose.errors import ModelError
from edgepose.model_metadata import ModelMetadata, backend_metadata
from edgepose.preprocess import Roi, RoiResampler, SquareRoi

# Keypoint indices used by the torso-based crop.
_SHOULDERS = (5, 6)
_HIPS = (11, 12)
_TORSO = _SHOULDERS + _HIPS
# From MoveNet's published cropping algorithm: a keypoint counts as seen above this score, and the
# square covers 1.9x the torso extent or 1.2x the body extent from the hip centre, whichever is larger.
CROP_KEYPOINT_SCORE = 0.2
TORSO_EXPANSION = 1.9
BODY_EXPANSION = 1.2
# The detector's body circle has the hip centre as its centre and reaches the top of the head, so
# 1.2x its diameter frames the body as MoveNet's own crop rule would.
DETECTION_ROI_SCALE = 1.2


class MoveNetSinglePose:
    """Runs one square ROI of a frame through a MoveNet SinglePose model."""

    keypoint_names = COCO17_KEYPOINTS

    def __init__(
        self, backend: Backend, min_keypoint_score: float = CROP_KEYPOINT_SCORE, metadata: ModelMetadata | None = None
    ):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 3 or inp.shape[1] != inp.shape[2]:
            raise ModelError(f"not a MoveNet SinglePose model: input shape {inp.shape} is not 1xNxNx3")
        found = [i for i, o in enumerate(backend.outputs) if tuple(o.shape[-2:]) == (17, 3)]
        if not found:
            shapes = [o.shape for o in backend.outputs]
            raise ModelError(f"not a MoveNet SinglePose model: no 1x1x17x3 output among {shapes}")
        self._out_index = found[0]
        out = backend.outputs[self._out_index]
        metadata = metadata or backend_metadata(backend)
        self._normalization = metadata.normalization if metadata else None
        self.backend = backend
        self.min_keypoint_score = min_keypoint_score
        self.input_size = inp.shape[1]
        self._resample = RoiResampler(self.input_size, self.input_size)
        self._batch = np.zeros((1, self.input_size, self.input_size, 3), dtype=np.uint8)
        self._in_spec = inp
        self._out_spec = out
        # Raw uint8 pixels go straight in; float or quantized inputs get one conversion per frame.
        self._direct = inp.dtype == np.uint8 and not inp.quantized

    def preprocess(self, image: np.ndarray, roi: Roi) -> list[np.ndarray]:
        return self.crop(image, [roi])

    def crop(self, image: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        """The model input for a batch of ROIs (one per person), resampled into a reused buffer."""
        if self._batch.shape[0] < len(rois):
            self._batch = np.zeros((len(rois), self.input_size, self.input_size, 3), dtype=np.uint8)
        for i, roi in enumerate(rois):
            self._resample(image, roi, out=self._batch[i])
        pixels = self._batch[: len(rois)]
        if self._direct:
            return [pixels]
        real = pixels.astype(np.float32) if self._normalization is None else self._normalization.apply(pixels)
        return [to_input_dtype(real, self._in_spec)]

    def decode(self, outputs: list[np.ndarray], roi: Roi, width: int, height: int) -> np.ndarray:
        """17x3 array of (x, y, score), x and y in original-image pixels."""
        return self.decode_batch(outputs, [roi], width, height)[0]

    def decode_batch(self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int) -> list[np.ndarray]:
        kps = dequantize(outputs[self._out_index], self._out_spec).reshape(len(rois), 17, 3)
        results = []
        for k, roi in zip(kps, rois, strict=True):
            out = np.empty((17, 3), dtype=np.float64)
            out[:, 0], out[:, 1] = roi.to_image(k[:, 1], k[:, 0])
            np.clip(out[:, 0], 0.0, width - 1.0, out=out[:, 0])
            np.clip(out[:, 1], 0.0, height - 1.0, out=out[:, 1])
            out[:, 2] = k[:, 2]
            results.append(out)
        return results

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        """An upright square on the detected body circle: MoveNet was trained on upright people."""
        return person.roi(rotate=False, scale=DETECTION_ROI_SCALE)

    def estimate_batch(
        self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int
    ) -> list[tuple[np.ndarray, float, Roi | None]]:
        """Per ROI: keypoints, pose score (mean keypoint score) and the torso crop for the next frame."""
        return [
            (kps, float(kps[:, 2].mean()), torso_crop(kps, width, height))
            for kps in self.decode_batch(outputs, rois, width, height)
        ]

    def to_pose(self, kps: np.ndarray, pose_id: int | None = None) -> Pose:
        return make_pose(kps, self.keypoint_names, self.min_keypoint_score, pose_id)


def make_pose(
    kps: np.ndarray,
    names: tuple[str, ...],
    min_keypoint_score: float = CROP_KEYPOINT_SCORE,
    pose_id: int | None = None,
    score: float | None = None,
) -> Pose:
    """A Pose from an Nx3 (x, y, score) array: score = `score` or the mean keypoint score, bbox over
    the confident keypoints."""
    scores = kps[:, 2]
    confident = scores >= min_keypoint_score
    sel = kps[confident] if confident.any() else kps
    lo = sel[:, :2].min(axis=0)
    hi = sel[:, :2].max(axis=0)
    bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    keypoints = tuple(Keypoint(n, x, y, s) for n, (x, y, s) in zip(names, kps.tolist()))
    return Pose(keypoints=keypoints, score=float(scores.mean() if score is None else score), bbox=bbox, id=pose_id)


def torso_crop(kps: np.ndarray, width: int, height: int) -> SquareRoi | None:
    """The square MoveNet's published algorithm would crop next, or None to go back to the full frame.

    `kps`: 17x3 (x, y, score) in pixels. Centre: the hip midpoint. Half side: the larger of 1.9x the
    torso's and 1.2x the body's extent from it, capped at the farthest frame edge from the centre.
    """
    seen = kps[:, 2] > CROP_KEYPOINT_SCORE
    if not (seen[list(_SHOULDERS)].any() and seen[list(_HIPS)].any()):
        return None
    xy = kps[:, :2]
    cx, cy = (xy[_HIPS[0]] + xy[_HIPS[1]]) / 2.0
    torso = np.abs(xy[list(_TORSO)] - (cx, cy)).max()
    body = np.abs(xy[seen] - (cx, cy)).max()
    half = max(torso * TORSO_EXPANSION, body * BODY_EXPANSION)
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2.0 or half < 4.0:
        return None
    return SquareRoi(float(cx), float(cy), float(2.0 * half))
