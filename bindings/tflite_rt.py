"""tflite-runtime: the fallback for .tflite files where LiteRT has no wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgepose.bindings.tflite_interpreter import TFLiteInterpreterBackend
from edgepose.errors import BackendError


def interpreter_module():
    try:
        from tflite_runtime import interpreter
    except ImportError as e:
        if importlib.util.find_spec("tflite_runtime") is not None:  # there, but its native part fails
            raise BackendError(f"tflite-runtime is installed but fails to import: {e}".splitlines()[0]) from e
        raise BackendError("tflite-runtime is not installed: pip install tflite-runtime") from e
    except (AttributeError, RuntimeError) as e:
        # tflite-runtime 2.14 is built against numpy 1.x and fails to import under numpy 2.
        import numpy

        raise BackendError(
            f"tflite-runtime failed to import under numpy {numpy.__version__}; it needs numpy<2 "
            "(pip install 'numpy<2') or use LiteRT: pip install ai-edge-litert"
        ) from e
    return interpreter


# tflite-runtime 2.14 segfaults in allocate_tensors() after the batch dimension of some graphs is resized
# (BlazePose's person detector; found by benchmarks/pi_os/check.sh, and on x86_64 too): a crash no
# `except` can catch, so batches run image by image there, which gives the same results.
BATCHABLE = False


def open_model(path: str | Path, threads: int) -> TFLiteInterpreterBackend:
    return TFLiteInterpreterBackend(
        interpreter_module().Interpreter, path, threads, "tflite-runtime", batchable=BATCHABLE
    )
