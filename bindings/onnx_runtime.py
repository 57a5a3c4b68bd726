"""ONNX Runtime for .onnx files (the `edgepose[onnx]` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepose.bindings.base import Backend, TensorSpec
from edgepose.errors import BackendError, ModelError

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def _spec(arg) -> TensorSpec:
    # Dynamic dimensions come back as strings or None; 1 is what a single image needs.
    shape = tuple(d if isinstance(d, int) else 1 for d in arg.shape)
    return TensorSpec(name=arg.name, shape=shape, dtype=np.dtype(_ORT_TYPES.get(arg.type, np.float32)))


class OnnxRuntimeBackend(Backend):
    def __init__(self, path: str | Path, threads: int):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendError('ONNX Runtime is not installed: pip install "edgepose[onnx]"') from e
        self.name = "onnxruntime"
        self.path = Path(path)
        self.threads = threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for bad files
            first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"onnxruntime cannot load {path}: {first_line}") from e
        self.inputs = tuple(_spec(a) for a in self._sess.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._sess.get_outputs())
        self._in_names = [s.name for s in self.inputs]
        # A symbolic batch dimension (as RTMPose exports have) takes all crops in one run.
        self._dynamic_batch = all(not isinstance(a.shape[0], int) for a in self._sess.get_inputs())

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, dict(zip(self._in_names, inputs, strict=False)))

    def run_batch(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.run(inputs) if self._dynamic_batch else super().run_batch(inputs)

    def close(self) -> None:
        self._sess = None
        super().close()


def open_model(path: str | Path, threads: int) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(path, threads)
