"""Bottom-up models: the whole frame in one invoke, every person decoded from it (PoseNet, MoveNet MultiPose)."""

from __future__ import annotations

import time

import numpy as np
from edgepose.bindings import Backend
from edgepose.data import Timings
from edgepose.preprocess import Roi


class WholeFrameModel:
    """preprocess -> invoke -> decode; subclasses give the model's own preprocessing and decoding."""

    backend: Backend
    max_detections: int

    def preprocess(self, rgb: np.ndarray) -> tuple[list[np.ndarray], Roi]:
        raise NotImplementedError

    def decode(
        self, outputs: list[np.ndarray], roi: Roi, width: int, height: int, max_people: int
    ) -> list[tuple[np.ndarray, float]]:
        """Per person a Kx3 (x, y, score) array in original-image pixels and the person score, best first."""
        raise NotImplementedError

    def detect(
        self, rgb: np.ndarray, max_people: int | None = None, timings: Timings | None = None
    ) -> list[tuple[np.ndarray, float]]:
        """Every person in `rgb` (HxWx3 uint8), as `decode` returns them; stage times added to `timings`."""
        t0 = time.perf_counter()
        inputs, roi = self.preprocess(rgb)
        t1 = time.perf_counter()
        outputs = self.backend.run(inputs)
        t2 = time.perf_counter()
        people = self.decode(outputs, roi, rgb.shape[1], rgb.shape[0], max_people or self.max_detections)
        if timings is not None:
            timings.preprocess += (t1 - t0) * 1e3
            timings.inference += (t2 - t1) * 1e3
            timings.postprocess += (time.perf_counter() - t2) * 1e3
        return people
