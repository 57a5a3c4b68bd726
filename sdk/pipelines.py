"""Multi-person (and BlazePose) pipelines, picked by the model's family.

- a MoveNet SinglePose model in multi mode -> top-down: BlazePose detector, one MoveNet crop each;
- blazepose-full -> top-down with the 33-keypoint landmark model on rotated crops (in single mode:
  one person, the detector only when nobody is tracked, like MediaPipe's tracking mode);
- an RTMPose model -> top-down with upright 3:4 crops (single mode: tracking mode, as for BlazePose);
- posenet-mobilenet, movenet-multipose-lightning -> bottom-up, one invoke for everyone.

A model file outside the registry is recognised by its edgepose metadata (written by the converters),
else by its tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from edgepose.bindings import Backend, open_backend
from edgepose.bindings.tflite_file import custom_ops
from edgepose.blazepose import BLAZEPOSE33_SKELETON, BlazePoseLandmark
from edgepose.blazepose_detector import BlazePoseDetector
from edgepose.data import COCO17_SKELETON, Timings
from edgepose.errors import ModelError
from edgepose.model_metadata import ModelMetadata, load_metadata
from edgepose.movenet import MoveNetSinglePose
from edgepose.registry import ModelSpec, ResolvedModel, resolve_model
from edgepose.topdown import DUPLICATE_DISTANCE, PersonFinder, TopDown, TopDownParams, drop_duplicates

NEVER = 1 << 30


class Pipeline(Protocol):
    keypoint_names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]

    def estimate(self, rgb: np.ndarray, timings: Timings) -> list[tuple[np.ndarray, float]]: ...

    def estimate_video(self, rgb: np.ndarray, timings: Timings) -> list[tuple[np.ndarray, float]]: ...

    def reset(self) -> None: ...


class BottomUp:
    """A model that finds everyone in one invoke (PoseNet, MoveNet MultiPose)."""

    skeleton = COCO17_SKELETON

    def __init__(self, model, max_people: int, min_pose_score: float):
        self.model = model
        self.keypoint_names = model.keypoint_names
        self.max_people = max_people
        self.min_pose_score = min_pose_score

    def estimate(self, rgb: np.ndarray, timings: Timings) -> list[tuple[np.ndarray, float]]:
        # Decode everyone the model can report, then keep the best: the decoder finds people in the order of
        # their strongest keypoint, not of their pose score.
        found = self.model.detect(rgb, self.model.max_detections, timings)
        people = [(k, s, None) for k, s in found if s >= self.min_pose_score]
        # The published decoder's NMS only compares one keypoint at a time; whole-pose duplicates slip through.
        people = drop_duplicates(people, DUPLICATE_DISTANCE)
        return [(k, s) for k, s, _ in people[: self.max_people]]

    estimate_video = estimate

    def reset(self) -> None:
        pass


class TopDownPipeline(TopDown):
    def __init__(self, finder: PersonFinder, model, params: TopDownParams, skeleton):
        super().__init__(finder, model, params)
        self.keypoint_names = model.keypoint_names
        self.skeleton = skeleton


def build_pipeline(
    resolved: ResolvedModel, backend: Backend, mode: str, max_people: int, min_pose_score: float,
    backend_name: str, threads: int | None,
) -> Pipeline | None:  # fmt: skip
    """The pipeline for this model and mode, or None for MoveNet's single-person fast path."""
    family, task = model_family(resolved, backend)
    people = 1 if mode == "single" else max_people
    if family == "posenet":
        from edgepose.posenet import PoseNetMultiPose

        return BottomUp(PoseNetMultiPose(backend, _posenet_params(resolved.path)), people, min_pose_score)
    if family == "movenet" and task == "multi":
        from edgepose.movenet_multipose import MoveNetMultiPose

        return BottomUp(MoveNetMultiPose(backend), people, min_pose_score)
    if task == "detector":
        raise ModelError(f"{resolved.name} is a person detector, not a pose model")
    if family == "movenet" and mode == "single":
        return None
    # The detector is a CPU TFLite model whatever runs the pose model (ONNX Runtime, an Edge TPU).
    detector_runtime = backend_name if backend_name in ("litert", "tflite-runtime") else "auto"
    detector = BlazePoseDetector(open_backend(resolve_model("blazepose-detector").path, detector_runtime, threads))
    params = TopDownParams(max_people=people, min_pose_score=min_pose_score)
    if mode == "single":
        params.redetect_every = NEVER  # MediaPipe's tracking mode: the detector only when lost
    if family == "blazepose":
        model, skeleton = BlazePoseLandmark(backend), BLAZEPOSE33_SKELETON
    elif family == "movenet":
        model, skeleton = MoveNetSinglePose(backend), COCO17_SKELETON
    elif family == "rtmpose":
        from edgepose.rtmpose import RTMPose

        model = RTMPose(backend)
        skeleton = COCO17_SKELETON if len(model.keypoint_names) == 17 else ()
    else:
        raise ModelError(f"{resolved.name}: no {mode}-person pipeline for the {family} family")
    return TopDownPipeline(PersonFinder(detector, params.tile_fraction, params.detection_score), model, params,
                           skeleton)


def _has_posenet_decoder(path: Path) -> bool:
    try:
        return "PosenetDecoderOp" in custom_ops(path)
    except ModelError:
        return False  # not a readable TFLite file: open_backend says why


def _posenet_params(path: Path) -> dict | None:
    """The decoder op's settings; None (the published defaults) for a file already cut before it."""
    from edgepose.posenet_graph import decoder_params

    return decoder_params(path) if _has_posenet_decoder(path) else None


# The task a family's models have when the metadata does not say.
_DEFAULT_TASK = {"movenet": "single", "blazepose": "single", "blazepose-detector": "detector", "rtmpose": "single",
                 "posenet": "multi"}  # fmt: skip


def model_family(resolved: ResolvedModel, backend: Backend) -> tuple[str, str]:
    """(family, task): the registry's, else the file's metadata, else guessed from its tensors."""
    spec = resolved.spec
    return (spec.family, spec.task) if spec else _file_family(resolved.path, backend)


def _file_family(path: Path, backend: Backend) -> tuple[str, str]:
    """(family, task) of a model given by path with no registry entry: its metadata, else its tensors."""
    meta = _metadata(path)
    if meta is not None and meta.family is not None:
        return meta.family, meta.task or _DEFAULT_TASK[meta.family]
    return _guess_family(backend)


def _metadata(path: Path) -> ModelMetadata | None:
    try:
        return load_metadata(path)
    except ModelError:
        return None  # unreadable now: open_backend read it a moment ago, so let the model code say why


def _guess_family(backend: Backend) -> tuple[str, str]:
    """(family, task) of a model recognised by its tensors alone (any output order: int8 conversion
    reorders outputs)."""
    shapes = [o.shape for o in backend.outputs]
    last = sorted(s[-1] for s in shapes if s)
    if 56 in last:
        return "movenet", "multi"
    if len(shapes) >= 3 and {17, 34, 64} <= set(last):
        return "posenet", "multi"
    if any(int(np.prod(s[1:])) == 195 for s in shapes):
        return "blazepose", "single"
    if last == [1, 12]:
        return "blazepose", "detector"
    if _has_simcc_outputs(backend):
        return "rtmpose", "single"
    return "movenet", "single"


def _has_simcc_outputs(backend: Backend) -> bool:
    """Two 3-D outputs whose last dims are twice the input's width and height (RTMPose's SimCC)."""
    from edgepose.rtmpose import find_simcc_outputs, input_layout

    try:
        _, width, height = input_layout(backend.inputs[0])
        find_simcc_outputs(backend.outputs, width, height, 2.0)
    except ModelError:
        return False
    return True


def open_model(resolved: ResolvedModel, spec: ModelSpec | None, backend_name: str, threads: int | None) -> Backend:
    """The backend for a pose model; PoseNet's Coral file is first cut before its decoder op."""
    path = resolved.path
    # By registry name or by file: a Coral PoseNet still carrying its decoder op is cut first.
    is_posenet = spec.family == "posenet" if spec is not None else _has_posenet_decoder(path)
    if is_posenet:
        from edgepose.posenet_graph import cpu_posenet_model

        path, _ = cpu_posenet_model(path)
    return open_backend(path, backend_name, threads, cpu_model=spec.cpu_equivalent if spec else None)
