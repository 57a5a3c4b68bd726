"""The one interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from edgepose.errors import ModelError


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


class Backend(ABC):
    """A loaded model ready to run. Loading happens once, in the constructor."""

    name: str = "backend"
    path: Path | None = None  # the model file, for what the runtime does not expose (edgepose metadata)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    threads: int

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
