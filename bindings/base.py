"""The one interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    threads: int

    @abstractmethod
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Feed `inputs` (already in the input specs' dtypes), invoke, return the outputs in spec order."""

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
