"""PoseEstimator: a facade over one pipeline. image -> pipeline -> tracking (video) -> Pose objects.

Usage:
    from edgepose import PoseEstimator, PoseEstimatorOptions
    with PoseEstimator.create_from_options(PoseEstimatorOptions(threads=2)) as est:    # the default model
        poses = est.estimate("photo.jpg")                     # a still image
        for t_ms, frame in frames:                            # a video or camera
            poses = est.estimate_for_video(frame, t_ms)       # carried crops + smoothing

Live stream (a camera, results as they come; `edgepose.live_stream`):
    opts = PoseEstimatorOptions(running_mode="live_stream", result_callback=on_result)
    with PoseEstimator.create_from_options(opts) as est:
        for frame in camera:
            est.estimate_async(frame)                          # returns at once; on_result(result, t_ms)

Thread safety: calls on one estimator are serialized by a lock, so threads may share it safely (they
take turns; an interpreter is not reentrant). For parallel throughput give each thread its own estimator.
"""

from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from edgepose.assets.registry import DEFAULT_MODEL, resolve_model
from edgepose.bindings import Backend
from edgepose.errors import EdgeposeError
from edgepose.image import ImageInput, load_image
from edgepose.live_stream import LiveStream, LiveStreamStats
from edgepose.models.families import MODES, family
from edgepose.options import PoseEstimatorOptions, validate
from edgepose.pipelines.base import Pipeline, PipelineOutput, StageTimer
from edgepose.pipelines.build import build_pipeline, model_family, open_model
from edgepose.results import FrameResult, Pose, Timings, make_pose
from edgepose.tracking import (
    AuxiliaryRoiFilter,
    OneEuroParams,
    PoseLandmarkSmoother,
    PoseTracker,
    SinglePersonSmoother,
    Tracked,
    TrackerParams,
)

__all__ = ["MODES", "PoseEstimator", "PoseEstimatorOptions"]


class PoseEstimator:
    """Still images (`estimate`) and streams (`estimate_for_video`) through one pipeline."""

    def __init__(
        self, options: PoseEstimatorOptions, pipeline: Pipeline, model_name: str, video_filter: str = "one-euro"
    ):
        """`video_filter`: the model family's (the family table's `video_filter`) for single-person video."""
        self.options = options
        self.pipeline = pipeline
        self.model_name = model_name
        self.keypoint_names = pipeline.keypoint_layout.keypoints
        self.skeleton = pipeline.keypoint_layout.skeleton
        self._tracker: PoseTracker | SinglePersonSmoother | PoseLandmarkSmoother
        # MediaPipe's own loop for a family whose reference is MediaPipe's pose graph (one person): its
        # landmark filter, and the next crop from filtered auxiliary landmarks (`_carry`).
        self._carry: AuxiliaryRoiFilter | None = None
        one_euro = options.smoothing_params or OneEuroParams()
        if pipeline.kind == "single-crop":
            self._tracker = SinglePersonSmoother(options.smoothing, one_euro)
        elif (
            video_filter == "mediapipe-pose"
            and options.mode == "single"
            and options.smoothing_params is None
            and pipeline.kind == "top-down"
        ):
            self._tracker = PoseLandmarkSmoother(options.smoothing)
            self._carry = AuxiliaryRoiFilter()  # MediaPipe filters these whether or not smoothing is on
        else:
            params = TrackerParams(smoothing=options.smoothing, smoothing_params=one_euro)
            self._tracker = PoseTracker(params, sigmas=pipeline.keypoint_layout.sigmas or None)
        self._last_ts: float | None = None
        self._live: LiveStream | None = None
        if options.running_mode == "live_stream":
            self._live = LiveStream(self._live_frame, options.result_callback)
        # LiteRT's interpreter (its input/output buffers), the carried crops and the tracks are all
        # per-stream state: two threads interleaving on them corrupt each other's results.
        self._lock = threading.Lock()

    @classmethod
    def create_from_options(cls, options: PoseEstimatorOptions) -> PoseEstimator:
        validate(options)
        resolved = resolve_model(options.model)
        backend, extra = open_model(resolved, options.backend, options.threads, options.model_sha256)
        pipeline = None
        try:
            pipeline = build_pipeline(resolved, backend, options, extra)
            video_filter = family(model_family(resolved, backend)[0]).video_filter
            return cls(options, pipeline, resolved.name, video_filter)
        except BaseException:
            for opened in pipeline.backends.values() if pipeline is not None else (backend,):
                opened.close()
            raise

    @classmethod
    def create_from_model(cls, model: str = DEFAULT_MODEL, **kwargs) -> PoseEstimator:
        return cls.create_from_options(PoseEstimatorOptions(model=model, **kwargs))

    @property
    def backend(self) -> Backend:
        """The pose model's backend."""
        return self.pipeline.backends["pose"]

    @property
    def backends(self) -> dict[str, Backend]:
        """Every backend this estimator opened, by role ("pose", and "detector" for top-down)."""
        return dict(self.pipeline.backends)

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, timeout_s: float | None = 1.0) -> None:
        """Release every backend (pose model and detector). Safe to call twice. In live-stream mode the
        frame still waiting is processed first and the worker joined, waiting at most `timeout_s` (None:
        as long as it takes; what is still waiting then is dropped and counted)."""
        if self._live is not None:
            self._live.close(timeout_s)
        with self._lock:
            for backend in self.pipeline.backends.values():
                backend.close()

    # Still images -----------------------------------------------------------------------------
    def estimate(self, image: ImageInput) -> list[Pose]:
        """Poses in a still image (no tracking, no smoothing)."""
        return self.estimate_frame(image).poses

    def estimate_frame(self, image: ImageInput) -> FrameResult:
        """Like `estimate`, with the frame size and per-stage timings."""
        rgb = load_image(image)
        h, w = rgb.shape[:2]
        timings = Timings()
        with self._lock:
            out = self.pipeline.estimate(rgb, timings)
        timer = StageTimer(timings)
        poses = self._poses([Tracked(None, p.keypoints, p.score, i, p.world) for i, p in enumerate(out.people)])
        timer.lap("postprocess")
        return self._frame(out, poses, w, h, timings)

    # Video / camera ---------------------------------------------------------------------------
    def estimate_for_video(self, frame: ImageInput, timestamp_ms: float) -> list[Pose]:
        return self.estimate_video_frame(frame, timestamp_ms).poses

    def estimate_video_frame(self, frame: ImageInput, timestamp_ms: float) -> FrameResult:
        """One frame of a stream. Timestamps (ms) must increase; they drive the One-Euro filter."""
        if self._live is not None:
            raise EdgeposeError("this estimator is in live_stream mode: give frames to estimate_async")
        if not isinstance(timestamp_ms, numbers.Real) or not math.isfinite(timestamp_ms):
            raise EdgeposeError(f"timestamp_ms must be a finite number of milliseconds, got {timestamp_ms!r}")
        return self._video_frame(load_image(frame), timestamp_ms)

    # Live stream -----------------------------------------------------------------------------
    def estimate_async(self, frame: ImageInput, timestamp_ms: float | None = None) -> bool:
        """Offer a frame to the live stream (running_mode="live_stream") and return at once; its result
        reaches the result callback later, in timestamp order. `timestamp_ms`: when the frame was
        captured (None: now, on a monotonic clock). A frame whose timestamp does not increase is dropped
        (returns False); a frame still waiting when a newer one comes is replaced. Both are counted in
        `dropped_frames`. Bad input raises at once, here. The worker thread holds this estimator until
        `close()` (or the end of a `with` block)."""
        if self._live is None:
            raise EdgeposeError(
                "estimate_async needs PoseEstimatorOptions(running_mode='live_stream', result_callback=fn)"
            )
        rgb = load_image(frame)
        if isinstance(frame, np.ndarray) and np.may_share_memory(rgb, frame):
            rgb = rgb.copy()  # the caller may refill its buffer (cameras do) before the worker gets to it
        return self._live.submit(rgb, timestamp_ms)

    @property
    def dropped_frames(self) -> int:
        """Live stream: frames offered but never delivered (replaced while waiting, a timestamp that did
        not increase, or a failed estimation). 0 in the other modes."""
        return self._live.stats.dropped if self._live is not None else 0

    @property
    def pending_timestamps(self) -> tuple[float, ...]:
        """Live stream: the timestamps whose results may still come (the frame in flight, the one
        waiting); every older frame was delivered or dropped. Empty in the other modes."""
        return self._live.pending() if self._live is not None else ()

    @property
    def live_stats(self) -> LiveStreamStats | None:
        """Live stream: offered, delivered and each kind of drop; None in the other modes."""
        return self._live.stats if self._live is not None else None

    def _live_frame(self, rgb, timestamp_ms: float) -> FrameResult:
        # The live stream orders its own timestamps; an earlier one here is a new stream after reset()
        # whose first frame raced the old stream's last: it starts the stream state afresh.
        return self._video_frame(rgb, timestamp_ms, restart_on_earlier=True)

    def _video_frame(self, rgb, timestamp_ms: float, restart_on_earlier: bool = False) -> FrameResult:
        h, w = rgb.shape[:2]
        timings = Timings()
        with self._lock:
            if self._last_ts is not None and not timestamp_ms > self._last_ts:
                if not restart_on_earlier:
                    raise EdgeposeError(f"timestamps must increase: got {timestamp_ms} ms after {self._last_ts} ms")
                self._reset_stream()
            self._last_ts = float(timestamp_ms)
            if self._carry is None:
                out = self.pipeline.estimate_video(rgb, timings)
            else:
                t = timestamp_ms / 1000.0
                out = self.pipeline.estimate_video(rgb, timings, carry=lambda roi: self._carry(roi, t))
                if all(p.roi is None for p in out.people):
                    self._carry.reset()  # the person is lost: MediaPipe's filters start afresh
            timer = StageTimer(timings)
            tracked = self._tracker.update(out.people, timestamp_ms, w, h, self.options.min_keypoint_score)
            timer.lap("tracking")
        poses = self._poses(tracked)
        timer.lap("postprocess")
        return self._frame(out, poses, w, h, timings)

    def reset(self) -> None:
        """Forget the tracked crops, tracks, smoothing state and the last timestamp (a new stream). In
        live-stream mode the new stream's timestamps may start again; its frame still waiting is dropped."""
        if self._live is not None:
            self._live.reset()
        with self._lock:
            self._reset_stream()

    def _reset_stream(self) -> None:
        self._last_ts = None
        self._tracker.reset()
        if self._carry is not None:
            self._carry.reset()
        self.pipeline.reset()

    # Internals --------------------------------------------------------------------------------
    def _poses(self, people: list[Tracked]) -> list[Pose]:
        """Pose objects, best first, at most max_people; the pipeline's score is the pose score."""
        names, min_kp = self.keypoint_names, self.options.min_keypoint_score
        poses = [
            make_pose(p.keypoints, names, min_kp, p.id, p.score, p.world)
            for p in people
            if p.score >= self.options.min_pose_score
        ]
        poses.sort(key=lambda p: -p.score)
        return poses[: 1 if self.options.mode == "single" else self.options.max_people]

    @staticmethod
    def _frame(out: PipelineOutput, poses: list[Pose], width: int, height: int, timings: Timings) -> FrameResult:
        roi = None if out.roi is None else (out.roi.cx, out.roi.cy, out.roi.width)
        return FrameResult(poses=poses, width=width, height=height, timings=timings, roi=roi)
