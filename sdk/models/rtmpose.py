"""RTMPose (mmpose's RTMCCHead models, e.g. the 256x192 body rtmpose-t/s/m): crops and SimCC decoding.

A per-person crop model (`edgepose.models.base.CropModel`) for the top-down pipeline.

Crop (mmpose's GetBBoxCenterScale with padding 1.25, then TopdownAffine): the person box, padded by
1.25 and with its shorter side extended to the input's aspect (3:4 for 192x256), upright, resampled
to the input size; RGB, (pixel - mean) / std with the file's metadata normalization or RTMPose's
ImageNet mean/std. Layout NCHW (torch/mmdeploy ONNX: 1x3x256x192) or NHWC (onnx2tf TFLite:
1x256x192x3), read from the input shape.

Decode (mmpose's SimCCLabel.decode / get_simcc_maximum): two outputs, simcc_x (K x W*split) and simcc_y
(K x H*split), found by their shapes (int8 conversion reorders outputs); argmax along each, divided by
the split ratio, is the keypoint in crop pixels (pixel centres at integers, as in mmpose's cv2 crop).
The score is the smaller of the two maxima (mmpose: `max_val_x[max_val_x > max_val_y] = max_val_y`;
not the larger), and a keypoint scoring <= 0 is put at crop coordinate -1 before the division, as
mmpose does. Scores are the raw SimCC maxima, not probabilities.
"""

from __future__ import annotations

import numpy as np

from edgepose.assets.metadata import ModelMetadata
from edgepose.bindings import Backend, TensorSpec, dequantize
from edgepose.errors import ModelError
from edgepose.geometry import Roi, clip_to_frame
from edgepose.keypoints import COCO17_KEYPOINTS, layout_for
from edgepose.models.base import CropBuffer, Estimate, PersonDetection, model_metadata, normalized_input
from edgepose.models.families import FAMILIES

DEFAULT_NORMALIZATION = FAMILIES["rtmpose"].normalization  # ImageNet mean/std
BBOX_PADDING = 1.25  # mmpose's GetBBoxCenterScale default, used by every RTMPose config
# Next frame's crop: the box of the keypoints scoring above this (mmpose's demo threshold), grown by
# 1.25 as rtmlib's PoseTracker does (keypoints stop short of the head top and the soles), then padded
# like a detector box.
TRACK_KEYPOINT_SCORE = 0.3
TRACK_BOX_EXPANSION = 1.25
MIN_TRACK_KEYPOINTS = 4
MIN_TRACK_SIDE = 8.0  # pixels: a smaller box is noise, not a person


def box_roi(x0: float, y0: float, x1: float, y1: float, aspect: float, padding: float = BBOX_PADDING) -> Roi:
    """The upright crop mmpose takes for a person box: padded, then the shorter side extended so that
    width / height == aspect (bbox_xyxy2cs, then TopdownAffine's _fix_aspect_ratio)."""
    w, h = (x1 - x0) * padding, (y1 - y0) * padding
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    return Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, float(w), float(h))


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split: float) -> tuple[np.ndarray, np.ndarray]:
    """NxKx2 keypoints in crop pixels and NxK scores from NxKxWx and NxKxWy SimCC vectors (mmpose)."""
    locs = np.stack([simcc_x.argmax(axis=-1), simcc_y.argmax(axis=-1)], axis=-1).astype(np.float64)
    scores = np.minimum(simcc_x.max(axis=-1), simcc_y.max(axis=-1)).astype(np.float64)
    locs[scores <= 0.0] = -1.0
    return locs / split, scores


def find_simcc_outputs(
    outputs: tuple[TensorSpec, ...], width: int, height: int, split: float | None = None
) -> tuple[int, int, float]:
    """(index of simcc_x, index of simcc_y, split ratio), matched by shape: K x width*split and
    K x height*split. `split` None: derived from the shapes (last dim / input side)."""
    cands = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[2] > 0]
    ratios = [split] if split else sorted({outputs[i].shape[2] / side for i in cands for side in (width, height)})
    for ratio in ratios:
        xs = [i for i in cands if outputs[i].shape[2] == round(width * ratio)]
        ys = [i for i in cands if outputs[i].shape[2] == round(height * ratio)]
        pairs = [(i, j) for i in xs for j in ys if i != j and outputs[i].shape[1] == outputs[j].shape[1]]
        if pairs:
            # A square input gives both axes one shape: then the names decide, or mmpose's order (x, y).
            named = [(i, j) for i, j in pairs if _axis(outputs[i].name) == "x" and _axis(outputs[j].name) == "y"]
            i, j = (named or pairs)[0]
            return i, j, float(ratio)
    shapes = [o.shape for o in outputs]
    raise ModelError(f"not an RTMPose model: no SimCC outputs (K x {width}*s, K x {height}*s) among {shapes}")


def _axis(name: str) -> str | None:
    tail = name.lower().split(":")[0].rstrip("0123456789_")
    return tail[-1] if tail[-1:] in ("x", "y") else None


def input_layout(spec: TensorSpec, hint: str | None = None) -> tuple[str, int, int]:
    """("NCHW" or "NHWC", width, height) of an image input; `hint` (the metadata's) breaks a tie."""
    shape = spec.shape
    if len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ModelError(f"not an RTMPose model: input shape {shape} is neither 1x3xHxW nor 1xHxWx3")
    nchw = shape[1] == 3 and (shape[3] != 3 or hint == "NCHW")
    return ("NCHW", shape[3], shape[2]) if nchw else ("NHWC", shape[2], shape[1])


class RTMPose:
    """Upright person crops through an RTMPose model, batched when the backend allows (a CropModel)."""

    def __init__(self, backend: Backend, metadata: ModelMetadata | None = None):
        """`metadata`: the model file's edgepose metadata; None reads it from the backend's file."""
        metadata = model_metadata(backend, metadata) or ModelMetadata()
        self.backend = backend
        self._in_spec = backend.inputs[0]
        self.layout, self.input_width, self.input_height = input_layout(self._in_spec, metadata.input_layout)
        self._x_out, self._y_out, self.split = find_simcc_outputs(
            backend.outputs, self.input_width, self.input_height, metadata.simcc_split_ratio
        )
        k = backend.outputs[self._x_out].shape[1]
        names = metadata.keypoint_names
        if names is None or len(names) != k:
            names = COCO17_KEYPOINTS if k == 17 else tuple(f"keypoint_{i}" for i in range(k))
        self.keypoint_layout = layout_for(tuple(names))
        self.keypoint_names: tuple[str, ...] = self.keypoint_layout.keypoints
        self.normalization = metadata.normalization or DEFAULT_NORMALIZATION
        self.aspect = self.input_width / self.input_height
        self._crops = CropBuffer(self.input_width, self.input_height, FAMILIES["rtmpose"].sampling)

    def roi_for_detection(self, person: PersonDetection) -> Roi:
        """The crop for a detected person: the body circle's square, as a person box (upright)."""
        return box_roi(*person.body_box(), aspect=self.aspect)

    def preprocess(self, rgb: np.ndarray, rois: list[Roi]) -> list[np.ndarray]:
        """The model input for a batch of ROIs (one per person); a raw uint8 input takes the pixels as
        they are (the model normalizes them itself)."""
        x = normalized_input(self._crops.fill(rgb, rois), self.normalization, self._in_spec)
        return [np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if self.layout == "NCHW" else x]

    def decode(self, outputs: list[np.ndarray], rois: list[Roi], width: int, height: int) -> list[Estimate]:
        """Per ROI: Kx3 (x, y, score) in image pixels, the mean keypoint score and the next frame's crop."""
        n, k, specs = len(rois), len(self.keypoint_names), self.backend.outputs
        simcc_x = dequantize(outputs[self._x_out], specs[self._x_out]).reshape(n, k, -1)
        simcc_y = dequantize(outputs[self._y_out], specs[self._y_out]).reshape(n, k, -1)
        locs, scores = decode_simcc(simcc_x, simcc_y, self.split)
        results = []
        for i, roi in enumerate(rois):
            # Crop pixel c (centres at integers) is the sample the resampler took at c / size: mmpose's
            # affine crop ("corners" sampling), whose decoding is the same locs / size.
            nx, ny = locs[i, :, 0] / self.input_width, locs[i, :, 1] / self.input_height
            raw = roi.to_pixels(nx, ny, scores[i], width, height, clip=False)
            kps = clip_to_frame(raw.copy(), width, height)
            # The next crop comes from the unclipped keypoints: a person leaving the frame keeps their size.
            results.append(Estimate(kps, float(kps[:, 2].mean()), self.tracking_roi(raw[:, :2], kps[:, 2])))
        return results

    def tracking_roi(self, xy: np.ndarray, scores: np.ndarray) -> Roi | None:
        """The next frame's crop from this frame's unclipped keypoints, or None when too few were found."""
        seen = xy[scores > TRACK_KEYPOINT_SCORE]
        if len(seen) < MIN_TRACK_KEYPOINTS:
            return None
        lo, hi = seen.min(axis=0), seen.max(axis=0)
        centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0 * TRACK_BOX_EXPANSION
        (x0, y0), (x1, y1) = centre - half, centre + half
        roi = box_roi(float(x0), float(y0), float(x1), float(y1), self.aspect)
        return roi if max(roi.width, roi.height) >= MIN_TRACK_SIDE else None
