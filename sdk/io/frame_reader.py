"""Decoding overlapped with inference: a video source read on a thread of its own, through a bounded queue.

OpenCV's decoder and the inference runtime both release the GIL, so the next frame is decoded while the
interpreter works on this one: the frame rate is set by the slower of the two instead of their sum. The
queue is short on purpose: it holds at most `depth` decoded frames (1 by default), so a slow consumer costs
a bounded amount of memory, and a camera's frames stay fresh. A file is read ahead, so its frames wait in
the queue: a file's capture-to-pose latency is about two pipeline times, a camera's (the oldest frame
dropped) one to two.

- A file is never dropped: the reader waits for room, and frames come out in order.
- A camera (a live source) drops its oldest queued frame when a new one arrives and the queue is full:
  the newest frame wins, and `dropped` counts what was skipped.
- An error while decoding reaches the consumer as the same exception, after the frames read before it.
- Closing (the loop ends, breaks, or raises, Ctrl-C included) stops the thread and releases the source.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgepose.io.video import VideoSource

_END = object()
# How often a blocked side looks again at whether the other side has stopped.
_POLL_S = 0.1


@dataclass(frozen=True)
class CapturedFrame:
    """One decoded frame, when it was captured (time.perf_counter(), seconds: the start of its latency), and
    the milliseconds its decoding took."""

    index: int
    t_ms: float
    rgb: np.ndarray
    captured: float
    decode_ms: float


class FrameReader:
    """Iterate a VideoSource's frames decoded on a background thread; use it as a context manager or
    call `close()` (iterating to the end closes it too)."""

    def __init__(
        self,
        source: VideoSource,
        max_frames: int | None = None,
        depth: int = 1,
        drop_oldest: bool | None = None,
    ):
        """`depth`: decoded frames queued at most. One is enough to overlap decoding with inference, and
        every frame queued adds a pipeline time to the latency of the frames behind it."""
        self.source = source
        self.drop_oldest = source.live if drop_oldest is None else drop_oldest
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.dropped = 0
        self._max_frames = max_frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name=f"edgepose-decode:{source.name}", daemon=True)
        self._started = False

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[CapturedFrame]:
        if self._stop.is_set():  # closed, or iterated to its end before
            return
        if not self._started:
            self._started = True
            self._thread.start()
        try:
            while True:
                # With a timeout, so that a reader closed from another thread, or a thread that ended
                # without a word, never leaves the consumer waiting.
                try:
                    item = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    if self._thread.is_alive():
                        continue
                    try:  # the thread may have put its last items after the timeout
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        return
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop decoding and wait for the thread, which releases the source. A read that hangs (an
        unplugged camera can block for seconds) is waited for at most `timeout_s`; the daemon thread
        then releases the source when the read returns."""
        self._stop.set()
        if not self._started:
            self.source.release()
            return
        deadline = time.perf_counter() + timeout_s
        # Make room for a put the thread may be blocked in, until it sees the stop.
        while self._thread.is_alive() and time.perf_counter() < deadline:
            self._drain()
            self._thread.join(_POLL_S)
        self._drain()

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _decode(self) -> None:
        frames = None
        try:
            frames = self.source.frames(self._max_frames)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    index, t_ms, rgb = next(frames)
                except StopIteration:
                    break
                if self._stop.is_set():
                    return
                now = time.perf_counter()
                self._put(CapturedFrame(index, t_ms, rgb, now, (now - t0) * 1000.0))
            self._put(_END)
        except BaseException as e:  # handed to the consumer, who raises it in its own thread
            self._put(e)
        finally:
            if frames is not None:
                frames.close()  # releases the capture when stopped early
            self.source.release()  # also when stopped before the first read (an unstarted generator)

    def _put(self, item: object) -> None:
        if self.drop_oldest and item is not _END and not isinstance(item, BaseException):
            while not self._stop.is_set():
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
            return
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
