"""The family table: everything the runtime, the converters and eval know about a model family, in
one place. One vocabulary: family ∈ FAMILIES × task ∈ TASKS.

Adding a family = one model file in this folder + one row here (its model class per task, the
pipeline each mode runs, its input normalization and keypoint layout) + a tensor test in
`recognise` if files without metadata should be recognised.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.bindings import Backend
from edgepose.errors import ModelError
from edgepose.image import Normalization
from edgepose.keypoints import BLAZEPOSE33, COCO17, NO_KEYPOINTS, KeypointLayout
from edgepose.resampling import Sampling

TASKS = ("single", "multi", "detector")  # one person per input / everyone in one invoke / person boxes
MODES = ("single", "multi")  # what the user asks for: one person or everyone in the frame
PIPELINES = ("single-crop", "top-down", "bottom-up")

# Names older edgepose versions wrote into converted files' metadata.
FAMILY_ALIASES = {"blazepose-detector": "person-detector"}


@dataclass(frozen=True)
class Task:
    model: str  # "module:Class" under edgepose.models, imported only when used
    pipelines: dict[str, str] = field(default_factory=dict)  # mode -> pipeline kind; empty: not a pose model


@dataclass(frozen=True)
class Family:
    name: str
    default_task: str  # the task of a file whose metadata does not say
    tasks: dict[str, Task]
    normalization: Normalization  # the model input = (pixel - mean) / std; what converters embed
    layout: KeypointLayout
    # "module:function" (path -> (runnable path, model kwargs)) for files no stock runtime loads as
    # published, and "module:function" (path -> bool) recognising such a file before it is loaded.
    prepare: str | None = None
    claims_file: str | None = None
    # The pose score is a presence probability (BlazePose), not a mean keypoint score: conversion parity
    # counts its flips across 0.5.
    presence: bool = False
    # A keypoint counts as confident above this score (conversion parity compares those; visibility
    # logits and detector scores are probabilities, MoveNet/RTMPose scores are not).
    confident_score: float = 0.3
    # Conversion to full int8 must keep the mean keypoint error under this many input pixels (where the
    # family has a published bar; BlazePose landmarks: 1.5 px on the 256 input, issue 4), else float layers
    # are searched for.
    int8_max_px_err: float | None = None
    # Where an output pixel samples its ROI, as the family's reference implementation fed the model
    # (edgepose.resampling): "half-pixel" (TensorFlow) or "corners" (MediaPipe, mmpose). The person
    # detector stays on "half-pixel" although MediaPipe feeds it "corners": it only places crops, and
    # with "corners" its boxes moved by ~1 px, enough for the int8 MoveNet to lose an overlapped skier
    # (mean OKS of the default model on the shared photos 0.782 -> 0.742; BlazePose 0.659 -> 0.681).
    sampling: Sampling = "half-pixel"
    # How one person's video is smoothed: "one-euro" (edgepose's, `tracking.one_euro`) or "mediapipe-pose"
    # (MediaPipe's pose landmark filtering, `tracking.landmark_filter`: its One-Euro variant on the
    # landmarks, and on the auxiliary landmarks the next frame's crop is placed from).
    video_filter: str = "one-euro"

    def task(self, task: str) -> Task:
        if task not in self.tasks:
            raise ModelError(f"the {self.name} family has no {task} models")
        return self.tasks[task]

    def model_class(self, task: str) -> Any:
        return _load(self.task(task).model)

    def runnable(self, path: Path) -> tuple[Path, dict[str, Any]]:
        """The file a runtime can load for `path`, and extra arguments for the model class."""
        return _load(self.prepare)(path) if self.prepare else (path, {})


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(f"edgepose.models.{module}"), name)


_RAW_PIXELS = Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
_UNIT = Normalization(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
_SIGNED_UNIT = Normalization(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5))
_IMAGENET = Normalization(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))
_SINGLE_CROP = {"single": "single-crop", "multi": "top-down"}
_TRACKED_TOP_DOWN = {"single": "top-down", "multi": "top-down"}  # single: MediaPipe's tracking mode
_BOTTOM_UP = {"single": "bottom-up", "multi": "bottom-up"}

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("movenet", "single", {
            "single": Task("movenet:MoveNetSinglePose", _SINGLE_CROP),
            "multi": Task("movenet_multipose:MoveNetMultiPose", _BOTTOM_UP),
        }, _RAW_PIXELS, COCO17),
        Family("blazepose", "single", {"single": Task("blazepose:BlazePoseLandmark", _TRACKED_TOP_DOWN)}, _UNIT,
               BLAZEPOSE33, presence=True, confident_score=0.5, int8_max_px_err=1.5, sampling="corners",
               video_filter="mediapipe-pose"),
        Family("rtmpose", "single", {"single": Task("rtmpose:RTMPose", _TRACKED_TOP_DOWN)}, _IMAGENET, COCO17,
               sampling="corners"),
        Family("posenet", "multi", {"multi": Task("posenet:PoseNetMultiPose", _BOTTOM_UP)}, _SIGNED_UNIT, COCO17,
               prepare="posenet:runnable_file", claims_file="posenet:has_decoder_op"),
        Family("person-detector", "detector", {"detector": Task("person_detector:BlazePoseDetector")}, _SIGNED_UNIT,
               NO_KEYPOINTS, confident_score=0.5),
    )
}  # fmt: skip


def family(name: str) -> Family:
    name = FAMILY_ALIASES.get(name, name)
    if name not in FAMILIES:
        raise ModelError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def pipeline_kind(family_name: str, task: str, mode: str, model_name: str) -> str:
    """Which pipeline runs a (family, task) model in `mode`; a person detector is refused."""
    t = family(family_name).task(task)
    if not t.pipelines:
        raise ModelError(f"{model_name} is a person detector, not a pose model")
    return t.pipelines[mode]


def recognise_file(path: Path) -> str | None:
    """The family of a file recognisable before any runtime loads it (one a stock runtime cannot load)."""
    for f in FAMILIES.values():
        if f.claims_file and _load(f.claims_file)(path):
            return f.name
    return None


def recognise(backend: Backend) -> tuple[str, str]:
    """(family, task) of a model known by its tensors alone (any output order: int8 conversion
    reorders outputs). The last resort after the registry and the file's metadata."""
    shapes = [o.shape for o in backend.outputs]
    last = sorted(s[-1] for s in shapes if s)
    if 56 in last:
        return "movenet", "multi"
    if len(shapes) >= 3 and {17, 34, 64} <= set(last):
        return "posenet", "multi"
    if any(int(np.prod(s[1:])) == 195 for s in shapes):
        return "blazepose", "single"
    if last == [1, 12]:
        return "person-detector", "detector"
    if _has_simcc_outputs(backend):
        return "rtmpose", "single"
    return "movenet", "single"


def _has_simcc_outputs(backend: Backend) -> bool:
    """Two 3-D outputs whose last dims are twice the input's width and height (RTMPose's SimCC)."""
    from edgepose.models.rtmpose import find_simcc_outputs, input_layout

    try:
        _, width, height = input_layout(backend.inputs[0])
        find_simcc_outputs(backend.outputs, width, height, 2.0)
    except ModelError:
        return False
    return True
