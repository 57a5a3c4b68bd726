"""How to build a PoseEstimator. Which pipelines an option applies to is checked where the pipeline is
built (`pipelines.build.PIPELINE_OPTIONS`)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.errors import EdgeposeError
from edgepose.models.families import MODES
from edgepose.tracking.one_euro import OneEuroParams


@dataclass
class PoseEstimatorOptions:
    """How to build a PoseEstimator.

    model: a registry name (`edgepose models list`) or a path to a .tflite/.onnx file.
    model_sha256: the model file's SHA-256 (or a prefix of at least 8 hex digits) to check before it loads;
        `edgepose models info MODEL` shows it. (A converted file also checks itself: its metadata records
        its content hash.)
    mode: "single" (one person) or "multi" (everyone); with the model it picks the pipeline.
    backend: "auto", "litert", "tflite-runtime", "onnxruntime" or "edgetpu".
    threads: CPU threads of the runtime, 1 to MAX_THREADS (None: one per core, up to 4).
    smoothing: keypoint smoothing in `estimate_for_video` (never applied to still images). Every pipeline.
    smoothing_params: None: the model family's own filter (BlazePose, one person: MediaPipe's pose
        landmark filtering, `tracking.landmark_filter`; otherwise One-Euro with `OneEuroParams()`).
        Given: One-Euro with these cutoffs, for every model.
    min_pose_score: poses scoring below this are dropped (MoveNet: mean keypoint score; PoseNet,
        MultiPose: the model's person score; BlazePose: its presence probability). Every pipeline.
    max_people: at most this many people per frame, best scores first (single mode: always one).
    min_keypoint_score: keypoints below this are left out of the bbox and of the drawing.
    roi_tracking: on video, crop around each person found in the previous frame instead of running
        on the whole frame (single-crop) or the detector (top-down) every frame. Single-crop and
        top-down pipelines; refused as False for bottom-up ones, which have no crops.
    refine_stills: on still images, a second pass on each person's own crop found by the first
        (MoveNet: letterbox then torso crop; mean OKS on the shared COCO photos goes from 0.54 to 0.85,
        benchmarks/letterbox_vs_crop.py). Single-crop and top-down pipelines; refused as False for
        bottom-up ones.
    running_mode: "video" (the default: `estimate` for stills, `estimate_for_video` for a stream, both
        synchronous) or "live_stream" (`estimate_async`: inference on a worker thread, results through
        `result_callback(result: FrameResult, timestamp_ms: float)`; see `edgepose.live_stream`).
    result_callback: the live stream's callback; required with "live_stream", refused otherwise.
    """

    model: str = DEFAULT_MODEL
    model_sha256: str | None = None
    mode: str = "single"
    backend: str = "auto"
    threads: int | None = None
    smoothing: bool = True
    smoothing_params: OneEuroParams | None = None
    min_pose_score: float = 0.15
    max_people: int = 10
    min_keypoint_score: float = 0.2
    roi_tracking: bool = True
    refine_stills: bool = True
    running_mode: str = "video"
    result_callback: Callable | None = None


MAX_THREADS = 64
RUNNING_MODES = ("video", "live_stream")


def validate(options: PoseEstimatorOptions, names: dict[str, str] | None = None) -> None:
    """Checks that need no model, each refused with one line that states the accepted range.

    `names` maps a field to what the caller calls it (the CLI: {"threads": "--threads", ...}).
    """

    def name(field_name: str) -> str:
        return (names or {}).get(field_name, field_name)

    if options.running_mode not in RUNNING_MODES:
        raise EdgeposeError(f"unknown {name('running_mode')} {options.running_mode!r}; choose video or live_stream")
    if options.running_mode == "live_stream" and not callable(options.result_callback):
        raise EdgeposeError("running_mode='live_stream' needs result_callback=fn(result, timestamp_ms)")
    if options.running_mode != "live_stream" and options.result_callback is not None:
        raise EdgeposeError("result_callback is only called in running_mode='live_stream'")
    if options.mode not in MODES:
        raise EdgeposeError(f"unknown {name('mode')} {options.mode!r}; choose single or multi")
    if not _is_int(options.max_people) or options.max_people < 1:
        raise EdgeposeError(f"{name('max_people')} must be an integer of at least 1, got {options.max_people!r}")
    pin = options.model_sha256
    if pin is not None and not (isinstance(pin, str) and 8 <= len(pin) <= 64 and _is_hex(pin)):
        raise EdgeposeError(f"{name('model_sha256')} must be 8 to 64 hex digits of a SHA-256, got {pin!r}")
    threads = options.threads
    if threads is not None and (not _is_int(threads) or not 1 <= threads <= MAX_THREADS):
        raise EdgeposeError(f"{name('threads')} must be an integer from 1 to {MAX_THREADS}, got {threads!r}")
    for score in ("min_pose_score", "min_keypoint_score"):
        value = getattr(options, score)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not 0.0 <= value <= 1.0:
            raise EdgeposeError(f"{name(score)} must be a number from 0 to 1, got {value!r}")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
