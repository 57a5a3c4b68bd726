"""PoseNet multi-person (bottom-up): letterboxed inference and the published multi-pose decoder in numpy.

The model (with its PosenetDecoderOp cut off, see `edgepose.assets.tflite_edit`) outputs, on a grid with
one cell per `stride` input pixels:
- heatmaps 17 channels: part logits;
- short offsets 34 channels: [dy x17][dx x17] from the cell to the part, in input pixels;
- mid offsets 64 channels: [fwd dy x16][fwd dx x16][bwd dy x16][bwd dx x16] along the 16 tree edges.
Decoding follows tfjs-models' posenet `decodeMultiplePoses` (with 2 offset refinement steps).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.assets.tflite_edit import DECODER_OP, DEFAULT_PARAMS, cpu_posenet_model
from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.bindings.tflite_file import custom_ops
from edgepose.errors import ImageError, ModelError
from edgepose.geometry import Roi
from edgepose.keypoints import COCO17
from edgepose.models.base import Estimate
from edgepose.resampling import RoiResampler

# PoseNet's tree over COCO-17 as (parent, child); edge i owns channel i of each mid-offset block.
POSE_TREE: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 3), (0, 2), (2, 4), (0, 5), (5, 7), (7, 9), (5, 11),
    (11, 13), (13, 15), (0, 6), (6, 8), (8, 10), (6, 12), (12, 14), (14, 16),
)  # fmt: skip
LOCAL_MAXIMUM_RADIUS = 1
OFFSET_REFINE_STEPS = 2
NUM_PARTS = 17
NUM_EDGES = len(POSE_TREE)


class _Grid:
    """The decoder's view of one frame's outputs, with the lookups the tree walk needs."""

    def __init__(self, scores: np.ndarray, short: np.ndarray, mid: np.ndarray, stride: int):
        self.scores, self.short, self.stride = scores, short, stride
        self.fwd, self.bwd = mid[..., : 2 * NUM_EDGES], mid[..., 2 * NUM_EDGES :]
        self.height, self.width = scores.shape[:2]

    def cell(self, x: float, y: float) -> tuple[int, int]:
        # floor(v + 0.5) is JavaScript's Math.round, which the reference decoder uses.
        iy = min(max(math.floor(y / self.stride + 0.5), 0), self.height - 1)
        ix = min(max(math.floor(x / self.stride + 0.5), 0), self.width - 1)
        return iy, ix

    def part_position(self, iy: int, ix: int, part: int) -> tuple[float, float]:
        return (
            ix * self.stride + float(self.short[iy, ix, NUM_PARTS + part]),
            iy * self.stride + float(self.short[iy, ix, part]),
        )

    def traverse(self, edge: int, source: tuple[float, float], target: int, disp: np.ndarray) -> tuple[float, ...]:
        """Position and score of part `target`, reached from `source` along `edge` of displacement field `disp`."""
        iy, ix = self.cell(*source)
        x = source[0] + float(disp[iy, ix, NUM_EDGES + edge])
        y = source[1] + float(disp[iy, ix, edge])
        for _ in range(OFFSET_REFINE_STEPS):
            x, y = self.part_position(*self.cell(x, y), target)
        iy, ix = self.cell(x, y)
        return x, y, float(self.scores[iy, ix, target])


def part_candidates(scores: np.ndarray, threshold: float) -> list[tuple[float, int, int, int]]:
    """(score, y, x, part) of every local maximum at or above `threshold`, highest score first."""
    r = LOCAL_MAXIMUM_RADIUS
    h, w = scores.shape[:2]
    padded = np.pad(scores, ((r, r), (r, r), (0, 0)), constant_values=-np.inf)
    local_max = np.full_like(scores, -np.inf)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            np.maximum(local_max, padded[dy : dy + h, dx : dx + w], out=local_max)
    ys, xs, ks = np.nonzero((scores >= threshold) & (scores >= local_max))
    values = scores[ys, xs, ks]
    order = np.argsort(-values, kind="stable")
    return list(zip(values[order].tolist(), ys[order].tolist(), xs[order].tolist(), ks[order].tolist()))


def decode_multiple_poses(
    scores: np.ndarray,
    short: np.ndarray,
    mid: np.ndarray,
    stride: int,
    max_poses: int,
    score_threshold: float,
    nms_radius: float,
) -> list[tuple[np.ndarray, float]]:
    """Poses from HxWx17 part scores (probabilities), HxWx34 short and HxWx64 mid offsets.

    Returns, in root-candidate order, a 17x3 (x, y, score) array in input pixels and the instance score.
    """
    grid = _Grid(scores, short, mid, stride)
    r2 = nms_radius * nms_radius
    found: list[np.ndarray] = []  # 17x3 per pose
    result = []
    for root_score, iy, ix, part in part_candidates(scores, score_threshold):
        if len(found) >= max_poses:
            break
        x, y = grid.part_position(iy, ix, part)
        # Part-based NMS: a root already claimed by the same part of an earlier pose starts no new pose.
        if any((p[part, 0] - x) ** 2 + (p[part, 1] - y) ** 2 <= r2 for p in found):
            continue
        kps: list[tuple[float, ...] | None] = [None] * NUM_PARTS
        kps[part] = (x, y, root_score)
        for edge in reversed(range(NUM_EDGES)):  # towards the root of the tree
            parent, child = POSE_TREE[edge]
            if kps[child] is not None and kps[parent] is None:
                kps[parent] = grid.traverse(edge, kps[child][:2], parent, grid.bwd)
        for edge, (parent, child) in enumerate(POSE_TREE):  # towards the leaves
            if kps[parent] is not None and kps[child] is None:
                kps[child] = grid.traverse(edge, kps[parent][:2], child, grid.fwd)
        pose = np.array(kps, dtype=np.float64)
        result.append((pose, _instance_score(pose, found, r2)))
        found.append(pose)
    return result


def _instance_score(pose: np.ndarray, earlier: list[np.ndarray], r2: float) -> float:
    """Mean keypoint score, counting only keypoints not claimed by the same part of an earlier pose."""
    if not earlier:
        return float(pose[:, 2].mean())
    d2 = ((np.stack(earlier)[:, :, :2] - pose[None, :, :2]) ** 2).sum(axis=2)
    claimed = (d2 <= r2).any(axis=0)
    return float(pose[~claimed, 2].sum() / NUM_PARTS)


class PoseNetMultiPose:
    """A whole frame, letterboxed, through a decoder-free PoseNet model; every person decoded (a FrameModel)."""

    keypoint_layout = COCO17
    keypoint_names = COCO17.keypoints

    def __init__(self, backend: Backend, params: dict | None = None):
        inp = backend.inputs[0]
        if len(inp.shape) != 4 or inp.shape[0] != 1 or inp.shape[3] != 3:
            raise ModelError(f"not a PoseNet model: input shape {inp.shape} is not 1xHxWx3")
        # The stripped model's output order is not guaranteed: tell the heads apart by channel count.
        heads = {spec.shape[-1]: i for i, spec in enumerate(backend.outputs) if len(spec.shape) == 4}
        if sorted(heads) != [17, 34, 64] or len({backend.outputs[i].shape[1:3] for i in heads.values()}) != 1:
            shapes = [spec.shape for spec in backend.outputs]
            raise ModelError(f"not a decoder-free PoseNet model: outputs {shapes} are not 17/34/64-channel grids")
        self.backend = backend
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.max_detections = int(self.params["max_detections"])
        self.input_height, self.input_width = inp.shape[1], inp.shape[2]
        self._heads = (heads[17], heads[34], heads[64])
        self._in_spec = inp
        self._resample = RoiResampler(self.input_width, self.input_height)
        # uint8 inputs take raw pixels: their quantization (1/128, 128 in Coral's file) is the [-1, 1] scaling.
        self._direct = inp.dtype == np.uint8

    def preprocess(self, rgb: np.ndarray) -> tuple[list[np.ndarray], Roi]:
        """The model input for `rgb` (HxWx3 uint8) and the letterbox ROI that maps results back."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
            raise ImageError(f"expected an HxWx3 RGB image, got shape {getattr(rgb, 'shape', None)}")
        h, w = rgb.shape[:2]
        roi = Roi.letterbox_to(w, h, self.input_width, self.input_height)
        pixels = self._resample(rgb, roi)[None]
        if self._direct:
            return [pixels], roi
        return [to_input_dtype(pixels.astype(np.float32) / 127.5 - 1.0, self._in_spec)], roi

    def decode(
        self, outputs: list[np.ndarray], roi: Roi, width: int, height: int, max_people: int = 20
    ) -> list[Estimate]:
        """Per person a 17x3 (x, y, score) array in original-image pixels and the instance score, best first."""
        heat, short, mid = (dequantize(outputs[i], self.backend.outputs[i])[0] for i in self._heads)
        scores = 1.0 / (1.0 + np.exp(-heat))  # the heatmaps are logits
        poses = decode_multiple_poses(
            scores, short, mid,
            stride=int(self.params["stride"]),
            max_poses=max_people,
            score_threshold=float(self.params["score_threshold"]),
            nms_radius=float(self.params["nms_radius"]),
        )  # fmt: skip
        people = []
        for kps, score in poses:
            # Keypoints are in input-pixel indices (pixel centres at integers); the ROI is normalized to edges.
            nx, ny = (kps[:, 0] + 0.5) / self.input_width, (kps[:, 1] + 0.5) / self.input_height
            people.append(Estimate(roi.to_pixels(nx, ny, kps[:, 2], width, height), score, None))
        people.sort(key=lambda p: -p[1])
        return people


def has_decoder_op(path: Path) -> bool:
    """Whether `path` is a TFLite file ending in Coral's PosenetDecoderOp (no stock runtime has it)."""
    try:
        return DECODER_OP in custom_ops(path)
    except ModelError:
        return False  # not a readable TFLite file: open_backend says why


def runnable_file(path: Path) -> tuple[Path, dict[str, Any]]:
    """Coral's file cut before its decoder op (a cached copy; the user's file is never modified) and the
    op's settings; a file already cut runs as it is, with the published defaults."""
    if not has_decoder_op(path):
        return path, {}
    cut, params = cpu_posenet_model(path)
    return cut, {"params": params}
