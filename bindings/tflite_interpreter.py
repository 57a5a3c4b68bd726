"""The TFLite interpreter API shared by LiteRT and tflite-runtime (same classes, different packages)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from edgepose.bindings.base import Backend, TensorSpec
from edgepose.errors import ModelError
from edgepose.native_stderr import quiet_native_stderr


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteInterpreterBackend(Backend):
    """Wraps an `Interpreter` class from either runtime package."""

    def __init__(
        self,
        interpreter_cls: Any,
        path: str | Path,
        threads: int,
        name: str,
        delegates: list[Any] | None = None,
    ):
        self.name = name
        self.threads = threads
        try:
            with quiet_native_stderr():
                self._interp = interpreter_cls(
                    model_path=str(path), num_threads=threads, experimental_delegates=delegates
                )
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"{name} cannot load {path}: {first_line}") from e
        in_details = self._interp.get_input_details()
        out_details = self._interp.get_output_details()
        self.inputs = tuple(_spec(d) for d in in_details)
        self.outputs = tuple(_spec(d) for d in out_details)
        self._in_idx = [d["index"] for d in in_details]
        self._out_idx = [d["index"] for d in out_details]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        for idx, x in zip(self._in_idx, inputs, strict=False):
            self._interp.set_tensor(idx, x)
        self._interp.invoke()
        return [self._interp.get_tensor(i) for i in self._out_idx]
