"""BlazePose GHUM full landmark model: 33 keypoints from a rotated person ROI.

Model facts (mediapipe/modules/pose_landmark): 256x256 RGB crop of the ROI, floats in [0, 1] (or the
normalization in the file's edgepose metadata); one output holds 39 landmarks x (x, y, z, visibility,
presence) in crop pixels, visibility and presence as logits; landmarks 33 and 34 are the hip centre
and a body-circle point, from which MediaPipe's tracking mode derives the next frame's ROI exactly as
from a detection; another (one value per image) is the probability that a person is in the crop at
all. Outputs are found by their sizes (195 and 1 per image), never by position: int8 conversion
reorders them. A third (117 per image, 39 x (x, y, z)) holds the world landmarks: metres, origin at
the hips' centre, in the axes of the upright crop; rotating x, y by the ROI's rotation puts them in the
image's axes (MediaPipe's WorldLandmarkProjectionCalculator: a rotation only, they have no pixel scale).
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.errors import ModelError
from edgepose.geometry import Roi, body_circle_roi, clip_to_frame
from edgepose.keypoints import BLAZEPOSE33
from edgepose.models.base import CropBuffer, Estimate, PersonDetection, model_metadata, per_image
from edgepose.models.families import FAMILIES

NUM_LANDMARKS = 39
# MediaPipe's RefineLandmarksFromHeatmapCalculator as tensors_to_pose_landmarks_and_segmentation
# configures it: a 7x7 window around each landmark, refined where the window's peak is >= 0.5.
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
PRESENCE_THRESHOLD = 0.5  # MediaPipe's min_tracking_confidence default
ROI_SCALE = 1.25  # MediaPipe's pose_detection_to_roi: the body circle's square, enlarged by 1.25
INPUT_NORMALIZATION = FAMILIES["blazepose"].normalization  # pixels / 255


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class BlazePoseLandmark:
    """Rotated person ROIs through the landmark model, batched when the backend allows (a CropModel)."""

    keypoint_layout = BLAZEPOSE33
    keypoint_names = BLAZEPOSE33.keypoints

    def __init__(self, backend: Backend, metadata=None):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        inp = backend.inputs[0]
        sizes = [per_image(o.shape) for o in backend.outputs]
        if len(inp.shape) != 4 or inp.shape[3] != 3 or NUM_LANDMARKS * 5 not in sizes or 1 not in sizes:
            raise ModelError(
                f"not a BlazePose landmark model: input {inp.shape}, outputs {[o.shape for o in backend.outputs]}"
            )
        self._landmarks_out = sizes.index(NUM_LANDMARKS * 5)
        self._presence_out = sizes.index(1)
        # 117 values per image could in principle be another tensor; the world landmarks are the 2-D one.
        world = [i for i, o in enumerate(backend.outputs) if len(o.shape) == 2 and o.shape[1] == NUM_LANDMARKS * 3]
        self._world_out = world[0] if world else None
        # The per-landmark heatmap (1xHxWx39 logits; 64x64 in the published models). A file without it
        # (a cut-down conversion) decodes from the regressed coordinates alone.
        heatmaps = [i for i, o in enumerate(backend.outputs) if len(o.shape) == 4 and o.shape[3] == NUM_LANDMARKS]
        self._heatmap_out = heatmaps[0] if heatmaps else None
        metadata = model_metadata(backend, metadata)
        self._normalization = (metadata.normalization if metadata else None) or INPUT_NORMALIZATION
        self.backend = backend
        self.input_size = inp.shape[1]
        # MediaPipe maps the ROI corners onto output pixel centres 0 and N (the table's "corners").
        self._crops = CropBuffer(self.input_size, self.input_size, FAMILIES["blazepose"].sampling)
        self._in_spec = inp

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        return person.roi(rotate=True, scale=ROI_SCALE)

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        return [to_input_dtype(self._normalization.apply(self._crops.fill(rgb, rois)), self._in_spec)]

    def decode(self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int) -> list[Estimate]:
        """Per ROI: 33x3 (x, y, visibility) in image pixels, the presence probability as the pose score,
        and the next frame's ROI from the landmarks' alignment points (None when nobody is present)."""
        raw = dequantize(outputs[self._landmarks_out], self.backend.outputs[self._landmarks_out])
        raw = raw.reshape(len(rois), NUM_LANDMARKS, 5).astype(np.float64)
        presence = dequantize(outputs[self._presence_out], self.backend.outputs[self._presence_out])
        presence = presence.reshape(len(rois)).astype(np.float64)
        heatmaps = None
        if self._heatmap_out is not None:
            spec = self.backend.outputs[self._heatmap_out]
            heatmaps = dequantize(outputs[self._heatmap_out], spec).reshape(len(rois), *spec.shape[1:])
        world = None
        if self._world_out is not None:
            spec = self.backend.outputs[self._world_out]
            world = dequantize(outputs[self._world_out], spec).reshape(len(rois), NUM_LANDMARKS, 3).astype(np.float64)
        results = []
        for i, roi in enumerate(rois):
            n = raw[i] / self.input_size
            if heatmaps is not None:
                n[:, :2] = refine_from_heatmap(n[:, :2], heatmaps[i])
            kps = roi.to_pixels(n[:, 0], n[:, 1], _sigmoid(raw[i, :, 3]), width, height, clip=False)
            next_roi = tracking_roi(kps[33], kps[34])  # from the unclipped auxiliary points
            body = clip_to_frame(kps[:33], width, height)
            p = float(presence[i])
            body_world = None if world is None else world_to_image_axes(world[i, :33], roi.rotation)
            results.append(Estimate(body, p, next_roi if p >= PRESENCE_THRESHOLD else None, body_world))
        return results


def world_to_image_axes(world: np.ndarray, rotation: float) -> np.ndarray:
    """World landmarks (Kx3 metres, upright-crop axes) turned by the crop's rotation into the image's axes:
    x right, y down, z away from the camera, as the image keypoints; metres stay metres."""
    cos, sin = math.cos(rotation), math.sin(rotation)
    out = np.array(world, dtype=np.float64)
    out[:, 0] = cos * world[:, 0] - sin * world[:, 1]
    out[:, 1] = sin * world[:, 0] + cos * world[:, 1]
    return out


def tracking_roi(hip_centre: np.ndarray, circle_point: np.ndarray) -> Roi | None:
    """Next frame's ROI from the two auxiliary landmarks (MediaPipe's pose_landmarks_to_roi)."""
    if math.hypot(*(circle_point[:2] - hip_centre[:2])) < 2.0:
        return None
    return body_circle_roi(hip_centre, circle_point, ROI_SCALE)


def refine_from_heatmap(
    xy: np.ndarray,
    heatmap: np.ndarray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> np.ndarray:
    """Landmarks (Nx2, normalized to the crop) moved to the centre of mass of their heatmap window.

    MediaPipe's RefineLandmarksFromHeatmapCalculator, to the letter: `heatmap` is HxWxN logits (a
    sigmoid makes them confidences); the window is `kernel` cells around the cell the landmark falls
    in, cut at the heatmap's edges; a landmark moves only where the window's peak confidence reaches
    `min_confidence`, and one outside the heatmap stays put. Cell (row, col) stands for the normalized
    point (col / W, row / H), MediaPipe's convention, kept because the model was trained with it.
    """
    h, w, channels = heatmap.shape
    if channels != len(xy):
        raise ValueError(f"a heatmap with {channels} channels for {len(xy)} landmarks")
    out = np.array(xy, dtype=np.float64)
    half = (kernel - 1) // 2
    # C++'s float -> int conversion truncates toward zero: -0.3 cells is cell 0, inside the heatmap.
    cols = np.trunc(out[:, 0] * w)
    rows = np.trunc(out[:, 1] * h)
    for k in range(len(out)):
        if not (0 <= cols[k] < w and 0 <= rows[k] < h):
            continue
        c, r = int(cols[k]), int(rows[k])
        r0, r1, c0, c1 = max(0, r - half), min(h, r + half + 1), max(0, c - half), min(w, c + half + 1)
        conf = _sigmoid(heatmap[r0:r1, c0:c1, k].astype(np.float64))
        total = conf.sum()
        if conf.max() >= min_confidence and total > 0:
            out[k, 0] = (conf.sum(axis=0) @ np.arange(c0, c1)) / total / w
            out[k, 1] = (conf.sum(axis=1) @ np.arange(r0, r1)) / total / h
    return out
