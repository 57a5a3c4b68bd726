"""The one interface every inference backend implements."""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.errors import BackendError, ModelError


@dataclass(frozen=True)
class TensorSpec:
    """What a model tensor looks like, so callers feed the right dtype without guessing.

    `scale == 0` means the tensor is not quantized: its values are the real values.
    Otherwise real = (q - zero_point) * scale.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


Listener = Callable[[Sequence[np.ndarray]], None]


class Backend(ABC):
    """A loaded model ready to run. Loading happens once, in the constructor.

    `listening(callback)` is the public hook on what a backend is fed: every `run` / `run_batch` call
    passes its inputs to the callback first (bench captures a real preprocessed input this way,
    calibration records what the runtime feeds a model). Subclasses implement `run` as usual; the
    hook wraps it once, at class creation, and costs one dict lookup per call when nobody listens.
    """

    name: str = "backend"
    path: Path | None = None  # the model file, for what the runtime does not expose (edgepose metadata)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    threads: int

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for method in ("run", "run_batch"):
            fn = cls.__dict__.get(method)
            if fn is not None and not getattr(fn, "_announced", False):
                setattr(cls, method, _announced(fn))

    @contextlib.contextmanager
    def listening(self, callback: Listener) -> Iterator[None]:
        """Within the block, `callback(inputs)` before every run / run_batch of this backend."""
        listeners = self.__dict__.setdefault("_listeners", [])
        listeners.append(callback)
        try:
            yield
        finally:
            listeners.remove(callback)

    def close(self) -> None:
        """Release the runtime's interpreter or session. The backend cannot run afterwards."""
        self._closed = True

    @property
    def closed(self) -> bool:
        return self.__dict__.get("_closed", False)

    @abstractmethod
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Feed `inputs` (already in the input specs' dtypes), invoke, return the outputs in spec order."""

    def run_batch(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run N images at once (inputs with a leading batch dimension N); outputs stacked along it.

        This default loops with one invoke per image on the already-allocated tensors; backends that
        can resize the batch dimension do it in one invoke.
        """
        n = inputs[0].shape[0]
        per_image = [self.run([x[i : i + 1] for x in inputs]) for i in range(n)]
        return [np.concatenate([out[k] for out in per_image]) for k in range(len(per_image[0]))]

    def resize_input(self, shape: Sequence[int]) -> None:
        """Give input 0 a new shape (models with dynamic height/width, such as MoveNet MultiPose)."""
        raise ModelError(f"{self.name} cannot resize the input of this model")

    def describe(self) -> str:
        return f"{self.name} ({self.threads} threads)"


def _announced(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def run(self: Backend, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        state = self.__dict__
        if state.get("_closed"):
            raise BackendError(f"{self.name}: the model was closed (PoseEstimator.close); open it again")
        listeners = state.get("_listeners")
        if listeners and not state.get("_announcing"):
            # Set first: a run_batch that loops over run, or a listener that runs the model itself,
            # announces the call once, not again for each inner run.
            self._announcing = True
            try:
                for callback in listeners:
                    callback(inputs)
                return fn(self, inputs)
            finally:
                self._announcing = False
        return fn(self, inputs)

    run._announced = True  # type: ignore[attr-defined]
    return run


Backend.run_batch = _announced(Backend.run_batch)  # type: ignore[method-assign]


def to_input_dtype(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Convert real-valued input to what `spec` expects (quantizing when it is quantized)."""
    if spec.quantized:
        info = np.iinfo(spec.dtype)
        q = np.round(values.astype(np.float32) / spec.scale + spec.zero_point)
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return values.astype(spec.dtype, copy=False)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values of an output tensor, whatever its storage type."""
    if spec.quantized:
        return (values.astype(np.float32) - spec.zero_point) * spec.scale
    return values.astype(np.float32, copy=False)
