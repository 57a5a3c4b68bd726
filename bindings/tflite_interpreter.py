"""The TFLite interpreter API shared by LiteRT and tflite-runtime (same classes, different packages)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.bindings.base import Backend, TensorSpec
from edgepose.bindings.native_stderr import quiet_native_stderr
from edgepose.errors import ModelError


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=detail["name"],
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class TFLiteInterpreterBackend(Backend):
    """Wraps an `Interpreter` class from either runtime package."""

    def __init__(
        self,
        interpreter_cls: Any,
        path: str | Path,
        threads: int,
        name: str,
        delegates: list[Any] | None = None,
        batchable: bool | None = None,
    ):
        """`batchable`: None to find out on the first batch (resizing the input's batch dimension);
        False to run batches image by image without ever resizing."""
        self.name = name
        self.path = Path(path)
        self.threads = threads
        try:
            with quiet_native_stderr():
                self._interp = interpreter_cls(
                    model_path=str(path), num_threads=threads, experimental_delegates=delegates
                )
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{name} cannot load {path}: {_first_line(e)}") from e
        in_details = self._interp.get_input_details()
        out_details = self._interp.get_output_details()
        self.inputs = tuple(_spec(d) for d in in_details)
        self.outputs = tuple(_spec(d) for d in out_details)
        self._in_idx = [d["index"] for d in in_details]
        self._out_idx = [d["index"] for d in out_details]
        self._batch = 1
        self._single_outputs = self.outputs
        # None: not tried yet. Some graphs (MoveNet's GATHER_ND) only run with batch 1.
        self._batchable: bool | None = batchable

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self._batch != 1 and inputs[0].shape[0] == 1:
            self._set_batch(1)  # a single image after a batched run
        for idx, x in zip(self._in_idx, inputs, strict=False):
            self._interp.set_tensor(idx, x)
        try:
            self._interp.invoke()
            return [self._interp.get_tensor(i) for i in self._out_idx]
        except (ValueError, RuntimeError) as e:
            # A file whose structure is sound but whose data is not (a gather index out of range): the
            # verifier cannot see it, the kernel refuses it here.
            raise ModelError(f"{self.name} cannot run {self.path}: {_first_line(e)}") from e

    def run_batch(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        n = inputs[0].shape[0]
        if n == 1 or self._batchable is False:
            return self._loop(inputs)
        try:
            self._set_batch(n)
            outputs = self.run(inputs)
        except (ValueError, RuntimeError, ModelError):
            outputs = None
            self._batch = n  # the tensors may be half-resized: make _loop resize them back to 1
        # A graph with a hard-coded reshape runs but folds the batch into another axis: not usable.
        if outputs is None or any(o.shape != (n, *s.shape[1:]) for o, s in zip(outputs, self._single_outputs)):
            self._batchable = False
            return self._loop(inputs)
        self._batchable = True
        return outputs

    def close(self) -> None:
        self._interp = None
        super().close()

    def resize_input(self, shape: Sequence[int]) -> None:
        shape = [int(d) for d in shape]
        if list(self.inputs[0].shape) == shape:
            return
        try:
            self._interp.resize_tensor_input(self._in_idx[0], shape, strict=False)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.name} cannot resize the model input to {shape}: {e}") from e
        self._refresh_specs()

    def _loop(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._set_batch(1)
        return super().run_batch(inputs)

    def _set_batch(self, n: int) -> None:
        # Re-allocating costs about a millisecond, so it happens only when the number of people changes.
        if n != self._batch:
            for idx, spec in zip(self._in_idx, self.inputs, strict=True):
                self._interp.resize_tensor_input(idx, [n, *spec.shape[1:]], strict=False)
            self._interp.allocate_tensors()
            self._batch = n
            self._refresh_specs()

    def _refresh_specs(self) -> None:
        self.inputs = tuple(_spec(d) for d in self._interp.get_input_details())
        self.outputs = tuple(_spec(d) for d in self._interp.get_output_details())
