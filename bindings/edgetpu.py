"""The Coral Edge TPU: a TFLite interpreter with the libedgetpu delegate."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

from edgepose.bindings import litert, tflite_rt
from edgepose.bindings.tflite_interpreter import TFLiteInterpreterBackend
from edgepose.errors import BackendError

_LIBEDGETPU = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}


def no_tpu_message(path: str | Path, cpu_model: str | None) -> str:
    alt = f", or use the CPU model `{cpu_model}`" if cpu_model else ", or use a CPU build of the model"
    return f"{Path(path).name} is compiled for the Edge TPU; install libedgetpu and attach a Coral device{alt}"


def open_model(path: str | Path, threads: int, cpu_model: str | None = None) -> TFLiteInterpreterBackend:
    try:
        module = litert.interpreter_module()
        name = "edgetpu (litert)"
    except BackendError:
        module = tflite_rt.interpreter_module()
        name = "edgetpu (tflite-runtime)"
    lib = _LIBEDGETPU.get(platform.system(), "libedgetpu.so.1")
    try:
        # Probe the library first: the runtimes' load_delegate leaves a half-built object behind when
        # the library is missing, and its destructor prints a stray traceback at exit.
        ctypes.CDLL(lib)
        delegate = module.load_delegate(lib)
    except (OSError, ValueError, RuntimeError) as e:
        raise BackendError(no_tpu_message(path, cpu_model)) from e
    # An Edge TPU build is compiled for one input shape: batches run image by image.
    return TFLiteInterpreterBackend(module.Interpreter, path, threads, name, delegates=[delegate], batchable=False)
