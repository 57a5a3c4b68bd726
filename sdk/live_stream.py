"""Live-stream mode: `estimate_async(frame)` returns at once, inference runs on a worker thread, results
arrive through a callback.

MediaPipe's LIVE_STREAM mode is where its Raspberry Pi users struggle most: timestamps they must invent,
an exception on a repeated timestamp, a graph that hangs when frames come faster than it runs. Here:

- a timestamp is optional (a monotonic clock when absent); a frame whose timestamp does not increase is
  dropped and counted, never an exception;
- one frame is in flight and at most one waits: a newer frame replaces the waiting one (counted), so
  nothing queues up and memory stays flat however fast the producer is;
- results arrive in timestamp order (one worker);
- an exception raised by the callback is logged once with its traceback (later ones are counted) and
  the stream goes on;
- `close()` processes the frame still waiting, then joins the worker, in about a second at most (what is
  still waiting after that is dropped and counted).

Every frame offered is either delivered (`delivered`) or dropped (`dropped`): offered == delivered +
dropped, once closed. The worker holds the estimator: close it (or use it in a `with` block).
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.results import FrameResult

log = logging.getLogger("edgepose")

ResultCallback = Callable[[FrameResult, float], None]
JOIN_TIMEOUT_S = 1.0


@dataclass
class LiveStreamStats:
    offered: int = 0  # frames given to estimate_async
    delivered: int = 0  # results passed to the callback
    replaced: int = 0  # waiting frames replaced by a newer one
    out_of_order: int = 0  # frames whose timestamp did not increase
    failed: int = 0  # frames whose estimation raised (logged; the stream goes on)
    unfinished: int = 0  # frames still waiting when close() gave up on a slow worker, or reset() came
    callback_errors: int = 0  # exceptions raised by the callback
    first_error: str | None = None  # what the first failed frame raised

    @property
    def dropped(self) -> int:
        return self.replaced + self.out_of_order + self.failed + self.unfinished


class LiveStream:
    """The worker behind `PoseEstimator.estimate_async`. `estimate(rgb, timestamp_ms)` is the estimator's
    stream step (it serializes with the estimator's own lock)."""

    def __init__(self, estimate: Callable[[np.ndarray, float], FrameResult], callback: ResultCallback):
        self._estimate = estimate
        self._callback = callback
        self.stats = LiveStreamStats()
        self._cond = threading.Condition()
        self._waiting: tuple[np.ndarray, float] | None = None
        self._in_flight: float | None = None  # the timestamp being estimated or delivered
        self._closing = False
        self._last_ts: float | None = None
        self._thread: threading.Thread | None = None

    def submit(self, rgb: np.ndarray, timestamp_ms: float | None) -> bool:
        """Offer a frame (HxWx3 uint8, owned by the stream from now on); False when it was dropped at
        once for a timestamp that does not increase."""
        ts = time.monotonic() * 1000.0 if timestamp_ms is None else _check_timestamp(timestamp_ms)
        with self._cond:
            if self._closing:
                raise EdgeposeError("estimate_async after close(): this estimator's live stream is closed")
            self.stats.offered += 1
            if self._last_ts is not None and not ts > self._last_ts:
                self.stats.out_of_order += 1
                return False
            self._last_ts = ts
            if self._waiting is not None:
                self.stats.replaced += 1
            self._waiting = (rgb, ts)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="edgepose-live-stream", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def pending(self) -> tuple[float, ...]:
        """The timestamps of the frames whose results may still come (in flight, then waiting); any
        older frame offered was delivered or dropped."""
        with self._cond:
            held = (self._in_flight, None if self._waiting is None else self._waiting[1])
        return tuple(t for t in held if t is not None)

    def reset(self) -> None:
        """A new stream: its timestamps may start again from anywhere. The frame still waiting belongs to
        the old stream and is dropped (counted as unfinished)."""
        with self._cond:
            if self._waiting is not None:
                self._waiting = None
                self.stats.unfinished += 1
            self._last_ts = None

    def close(self, timeout_s: float | None = JOIN_TIMEOUT_S) -> None:
        """Process the waiting frame, then stop the worker. With a `timeout_s` (None: wait as long as it
        takes), return after about that long even if the worker is still busy (a slow model, a callback
        that never returns): the frame still waiting then is dropped (counted as unfinished), the one in
        flight is finished by the worker, a daemon thread left behind."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        worker = self._thread
        if worker is not None and worker is not threading.current_thread():  # close() from the callback
            worker.join(timeout_s)
            if worker.is_alive():
                with self._cond:
                    if self._waiting is not None:
                        self._waiting = None
                        self.stats.unfinished += 1
                log.warning("edgepose: live stream: the worker is still busy after %.1f s (slow model?)", timeout_s)
        if self.stats.callback_errors > 1:
            log.warning("edgepose: the result callback raised %d times in all", self.stats.callback_errors)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._in_flight = None
                while self._waiting is None and not self._closing:
                    self._cond.wait()
                if self._waiting is None:  # closing, nothing left
                    return
                (rgb, ts), self._waiting = self._waiting, None
                self._in_flight = ts
            self._deliver(rgb, ts)

    def _deliver(self, rgb: np.ndarray, ts: float) -> None:
        try:
            result = self._estimate(rgb, ts)
        except Exception as e:  # an estimation error must not kill the stream: counted and logged once
            with self._cond:
                self.stats.failed += 1
                first = self.stats.first_error is None
                if first:
                    self.stats.first_error = str(e) or type(e).__name__
            if first:
                log.error("edgepose: live stream: a frame failed (%s); further failures are counted", e)
            return
        with self._cond:
            self.stats.delivered += 1
        try:
            self._callback(result, ts)
        except Exception:
            with self._cond:
                self.stats.callback_errors += 1
                first = self.stats.callback_errors == 1
            if first:
                log.exception("edgepose: the live stream's result callback raised; the stream goes on")


def _check_timestamp(timestamp_ms: object) -> float:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, numbers.Real) or not math.isfinite(timestamp_ms):
        raise EdgeposeError(f"timestamp_ms must be a finite number of milliseconds or None, got {timestamp_ms!r}")
    return float(timestamp_ms)
