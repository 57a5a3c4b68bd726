"""LiteRT (`ai-edge-litert`): the default backend for .tflite files."""

from __future__ import annotations

from pathlib import Path

from edgepose.bindings.tflite_interpreter import TFLiteInterpreterBackend
from edgepose.errors import BackendError


def interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as e:
        raise BackendError("LiteRT is not installed: pip install ai-edge-litert") from e
    return interpreter


def open_model(path: str | Path, threads: int) -> TFLiteInterpreterBackend:
    return TFLiteInterpreterBackend(interpreter_module().Interpreter, path, threads, "litert")
