"""Inference backends. Nothing else in edgepose touches a runtime directly.

Usage:
    backend = open_backend("model.tflite", backend="auto", threads=2)
    backend.inputs[0].shape, backend.inputs[0].dtype   # what to feed
    outputs = backend.run([x])
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

from edgepose.bindings.base import Backend, TensorSpec, dequantize, to_input_dtype
from edgepose.bindings.tflite_file import verify_model
from edgepose.errors import BackendError, ModelError

BACKENDS = ("auto", "litert", "tflite-runtime", "onnxruntime", "edgetpu")

__all__ = ["BACKENDS", "Backend", "TensorSpec", "default_threads", "dequantize", "open_backend", "to_input_dtype"]


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def open_backend(
    path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    cpu_model: str | None = None,
) -> Backend:
    """Load `path` with the chosen runtime. `auto` picks by file type, LiteRT before tflite-runtime.

    `cpu_model` names the CPU equivalent of an Edge TPU model, for the error shown without a TPU.
    """
    from edgepose.bindings import edgetpu, litert, onnx_runtime, tflite_rt

    path = Path(path)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1):
        raise BackendError(f"threads must be a positive integer (or None: automatic), got {threads!r}")
    threads = int(threads) if threads is not None else default_threads()
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.stat().st_size == 0:
        raise ModelError(f"model file is empty: {path}")

    if path.suffix.lower() == ".onnx":
        if backend not in ("auto", "onnxruntime"):
            raise BackendError(f"{path.name} is an ONNX model; use --backend onnxruntime (or auto)")
        return onnx_runtime.open_model(path, threads)

    if backend == "onnxruntime":
        raise BackendError(f"{path.name} is not an ONNX model; onnxruntime runs .onnx files")
    # The whole flatbuffer is verified before any interpreter maps it: non-TFLite, truncated and corrupt
    # files (an index, offset or size outside the file) are refused here with one line.
    edgetpu_build = verify_model(path).is_edgetpu
    if edgetpu_build or backend == "edgetpu":
        if not edgetpu_build:
            raise BackendError(f"{path.name} is not compiled for the Edge TPU; run edgetpu_compiler first")
        return edgetpu.open_model(path, threads, cpu_model)
    if backend == "litert":
        return litert.open_model(path, threads)
    if backend == "tflite-runtime":
        return tflite_rt.open_model(path, threads)
    try:
        return litert.open_model(path, threads)
    except BackendError as litert_missing:
        try:
            return tflite_rt.open_model(path, threads)
        except BackendError as e:
            raise BackendError(f"no TFLite runtime: {litert_missing}; {e}") from e
