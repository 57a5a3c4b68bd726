"""LiteRT (`ai-edge-litert`): the default backend for .tflite files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgepose.bindings.tflite_interpreter import TFLiteInterpreterBackend
from edgepose.errors import BackendError


def interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError as e:
        if importlib.util.find_spec("ai_edge_litert") is not None:  # there, but its native part fails
            raise BackendError(f"ai-edge-litert is installed but fails to import: {e}".splitlines()[0]) from e
        raise BackendError("LiteRT is not installed: pip install ai-edge-litert") from e
    return interpreter


def open_model(path: str | Path, threads: int) -> TFLiteInterpreterBackend:
    return TFLiteInterpreterBackend(interpreter_module().Interpreter, path, threads, "litert")
