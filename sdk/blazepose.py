"""BlazePose GHUM full landmark model: 33 keypoints from a rotated person ROI.

Model facts (mediapipe/modules/pose_landmark): 256x256 RGB crop of the ROI, floats in [0, 1] (or the
normalization in the file's edgepose metadata); one output holds 39 landmarks x (x, y, z, visibility,
presence) in crop pixels, visibility and presence as logits; landmarks 33 and 34 are the hip centre
and a body-circle point, from which MediaPipe's tracking mode derives the next frame's ROI exactly as
from a detection; another (one value per image) is the probability that a person is in the crop at
all. Outputs are found by their sizes (195 and 1 per image), never by position: int8 conversion
reorders them.
"""

from __future__ import annotations

import math

import numpy as np
from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.blazepose_detector import ROI_SCALE, PersonDetection, normalize_radians
from edgepose.errors import ModelError
from edgepose.model_metadata import ModelMetadata, Normalization, backend_metadata
from edgepose.preprocess import Roi, RoiResampler

BLAZEPOSE33_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip

BLAZEPOSE33_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
    (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
    (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

# Where each COCO-17 keypoint sits among BlazePose's 33 (for metrics against COCO ground truth).
BLAZEPOSE_TO_COCO17: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

# OKS constants for tracking: COCO's where BlazePose has the COCO keypoint, the nearest COCO part's
# otherwise (eye corners and mouth like eyes and ears, fingers like wrists, heels and toes like ankles).
BLAZEPOSE33_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.035, 0.035, 0.026, 0.026, 0.079, 0.079, 0.072,
    0.072, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089,
    0.089, 0.089, 0.089, 0.089, 0.089,
)  # fmt: skip

NUM_LANDMARKS = 39
PRESENCE_THRESHOLD = 0.5  # MediaPipe's min_tracking_confidence default
INPUT_NORMALIZATION = Normalization(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))  # pixels / 255


def to_coco17(kps: np.ndarray) -> np.ndarray:
    """The COCO-17 subset of a 33x3 BlazePose keypoint array."""
    return kps[list(BLAZEPOSE_TO_COCO17)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class BlazePoseLandmark:
    """Runs rotated person ROIs through the landmark model (batched when the backend allows)."""

    keypoint_names = BLAZEPOSE33_KEYPOINTS
    skeleton = BLAZEPOSE33_SKELETON

    def __init__(self, backend: Backend, metadata: ModelMetadata | None = None):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        sizes = [_per_image(o.shape) for o in backend.outputs]
        if len(inp.shape) != 4 or inp.shape[3] != 3 or NUM_LANDMARKS * 5 not in sizes or 1 not in sizes:
            raise ModelError(
                f"not a BlazePose landmark model: input {inp.shape}, outputs {[o.shape for o in backend.outputs]}"
            )
        self._landmarks_out = sizes.index(NUM_LANDMARKS * 5)
        self._presence_out = sizes.index(1)
        metadata = metadata or backend_metadata(backend)
        self._normalization = (metadata.normalization if metadata else None) or INPUT_NORMALIZATION
        self.backend = backend
        self.input_size = inp.shape[1]
        self._resample = RoiResampler(self.input_size, self.input_size)
        self._batch = np.zeros((0, self.input_size, self.input_size, 3), dtype=np.uint8)
        self._in_spec = inp

    def crop(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        if self._batch.shape[0] < len(rois):
            self._batch = np.zeros((len(rois), self.input_size, self.input_size, 3), dtype=np.uint8)
        for i, roi in enumerate(rois):
            self._resample(rgb, roi, out=self._batch[i])
        return [to_input_dtype(self._normalization.apply(self._batch[: len(rois)]), self._in_spec)]

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        return person.roi(rotate=True)

    def estimate_batch(
        self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int
    ) -> list[tuple[np.ndarray, float, Roi | None]]:
        """Per ROI: 33 keypoints, presence as the pose score, the tracking ROI for the next frame."""
        decoded = self.decode(outputs, rois, width, height)
        return [(k, p, nxt if p >= PRESENCE_THRESHOLD else None) for k, p, nxt in decoded]

    def decode(
        self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int
    ) -> list[tuple[np.ndarray, float, Roi | None]]:
        """Per ROI: 33x3 (x, y, visibility) in image pixels, presence probability, next frame's ROI."""
        raw = dequantize(outputs[self._landmarks_out], self.backend.outputs[self._landmarks_out])
        raw = raw.reshape(len(rois), NUM_LANDMARKS, 5).astype(np.float64)
        presence = dequantize(outputs[self._presence_out], self.backend.outputs[self._presence_out])
        presence = presence.reshape(len(rois)).astype(np.float64)
        results = []
        for i, roi in enumerate(rois):
            x, y = roi.to_image(raw[i, :, 0] / self.input_size, raw[i, :, 1] / self.input_size)
            kps = np.stack([x, y, _sigmoid(raw[i, :, 3])], axis=1)
            next_roi = tracking_roi(kps[33], kps[34])  # from the unclipped auxiliary points
            body = kps[:33]
            np.clip(body[:, 0], 0.0, width - 1.0, out=body[:, 0])
            np.clip(body[:, 1], 0.0, height - 1.0, out=body[:, 1])
            results.append((body, float(presence[i]), next_roi))
        return results


def _per_image(shape: tuple[int, ...]) -> int:
    """Values per image of an output (its size without the batch dimension)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def tracking_roi(hip_centre: np.ndarray, circle_point: np.ndarray) -> Roi | None:
    """Next frame's ROI from the two auxiliary landmarks (MediaPipe's pose_landmarks_to_roi)."""
    dx, dy = circle_point[0] - hip_centre[0], circle_point[1] - hip_centre[1]
    radius = math.hypot(dx, dy)
    if radius < 2.0:
        return None
    side = 2.0 * radius * ROI_SCALE
    rotation = normalize_radians(math.pi / 2 - math.atan2(-dy, dx))
    return Roi(float(hip_centre[0]), float(hip_centre[1]), side, side, rotation)
