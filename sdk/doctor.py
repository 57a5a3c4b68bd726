"""`edgepose doctor`: can this machine run edgepose, and if not, why not.

One report of what a Raspberry Pi or Coral user otherwise finds out one error at a time: the board, the
CPU governor and throttling, numpy, each inference runtime (importable? which version? tflite-runtime's
numpy-2 incompatibility spelled out), libedgetpu and Coral devices, OpenCV, Picamera2 and the cameras,
the model folders and which registry models are present (their SHA-256 checked). The verdict comes from
running the default model once on the runtime `auto` picks: the report says ready only when that worked.
Every reading is taken from /proc, /sys and imports; nothing is installed, downloaded or opened for
writing, and cameras are listed, not opened.
"""

from __future__ import annotations

import contextlib
import importlib
import platform
import sys
import time

import numpy as np

from edgepose.assets.registry import DEFAULT_MODEL, REGISTRY, find_local, model_dirs
from edgepose.bench import device_info
from edgepose.bench.device_info import package_version
from edgepose.errors import EdgeposeError

SCHEMA = "edgepose-doctor/1"


def _backend(name: str, package: str, load) -> dict:
    """One runtime: importable, its version, and the one-line reason when it is not usable."""
    problem = None
    try:
        load()
    except EdgeposeError as e:
        problem = str(e)
    except Exception as e:  # a broken install (an ABI mismatch, a missing shared library): say what it was
        problem = f"{package} is installed but fails to import: {type(e).__name__}: {e}".splitlines()[0]
    version = package_version(package)
    return {"name": name, "package": package, "usable": problem is None, "version": version, "problem": problem}


def _onnxruntime() -> None:
    try:
        importlib.import_module("onnxruntime")
    except ImportError as e:
        raise EdgeposeError('onnxruntime is not installed: pip install "edgepose[onnx]" (only for .onnx models)') from e


def backends() -> list[dict]:
    from edgepose.bindings import litert, tflite_rt

    rows = [
        _backend("litert", "ai-edge-litert", litert.interpreter_module),
        _backend("tflite-runtime", "tflite-runtime", tflite_rt.interpreter_module),
        _backend("onnxruntime", "onnxruntime", _onnxruntime),
    ]
    coral = device_info._coral()
    has_lib = device_info._libedgetpu()
    devices = coral["usb"] + coral["pcie"]
    problem = None
    if not has_lib:
        problem = "libedgetpu is not installed (Coral's apt repository: libedgetpu1-std)"
    elif not devices:
        problem = "libedgetpu is installed but no Coral USB or PCIe device is attached"
    elif not any(r["usable"] for r in rows[:2]):
        problem = "a Coral device and libedgetpu, but no TFLite runtime to load its delegate"
    rows.append(
        {
            "name": "edgetpu",
            "package": "libedgetpu",
            "usable": problem is None,
            "version": None,
            "problem": problem,
            "devices": coral,
        }
    )
    return rows


def _opencv() -> dict:
    version = (
        package_version("opencv-python-headless")
        or package_version("opencv-python")
        or package_version("opencv-contrib-python")
    )
    try:
        cv2 = importlib.import_module("cv2")
    except Exception as e:  # noqa: BLE001 - a wheel for another numpy, a missing libGL: report, never raise
        missing = isinstance(e, ImportError) and version is None
        problem = 'not installed: pip install "edgepose[video]" (videos and OpenCV cameras)' if missing else str(e)
        return {"usable": False, "version": version, "problem": problem.splitlines()[0]}
    return {"usable": True, "version": getattr(cv2, "__version__", version), "problem": None}


def _picamera2() -> dict:
    try:
        module = importlib.import_module("picamera2")
    except Exception as e:  # noqa: BLE001 - on a Pi, libcamera's bindings can fail in many ways
        problem = (
            "not importable: on Raspberry Pi OS `sudo apt install python3-picamera2` and make the venv with "
            "--system-site-packages"
        )
        if not isinstance(e, ImportError):  # typically apt's simplejpeg under numpy 2
            problem = f"fails to import ({type(e).__name__}: {e}".splitlines()[0] + "); it needs numpy<2 in the venv"
        return {"usable": False, "version": None, "problem": problem, "cameras": []}
    cameras = []
    # Listing is best effort (libcamera may be busy); opening is left to `run --camera picam`.
    with contextlib.suppress(Exception):
        cameras = [str(c.get("Model", c)) for c in module.Picamera2.global_camera_info()]
    version = getattr(module, "__version__", None) or package_version("picamera2")
    return {"usable": True, "version": version, "problem": None, "cameras": cameras}


def _models() -> dict:
    present = []
    for spec in REGISTRY.values():
        try:
            path = find_local(spec)
        except EdgeposeError as e:
            present.append({"name": spec.name, "path": None, "sha256_ok": False, "problem": str(e)})
            continue
        if path is not None:
            present.append({"name": spec.name, "path": str(path), "sha256_ok": True, "problem": None})
    return {"dirs": [{"label": label, "path": str(d)} for label, d in model_dirs()], "present": present}


def _run_default() -> dict:
    """Load the default model with the runtime `auto` picks and run it once."""
    from edgepose.assets.registry import resolve_model
    from edgepose.bindings import open_backend

    try:
        resolved = resolve_model(DEFAULT_MODEL, download=False)
        backend = open_backend(resolved.path, "auto", threads=1)
        try:
            inputs = [np.zeros(spec.shape, spec.dtype) for spec in backend.inputs]
            backend.run(inputs)  # the first run allocates; the second is the one timed
            t0 = time.perf_counter()
            backend.run(inputs)
            ms = (time.perf_counter() - t0) * 1000
        finally:
            backend.close()
    except Exception as e:  # a broken runtime fails in its own ways: the doctor reports, never crashes
        problem = str(e) if isinstance(e, EdgeposeError) else f"{type(e).__name__}: {e}"
        return {"model": DEFAULT_MODEL, "ok": False, "backend": None, "invoke_ms": None, "problem": problem}
    return {"model": DEFAULT_MODEL, "ok": True, "backend": backend.name, "invoke_ms": round(ms, 2), "problem": None}


def doctor_report() -> dict:
    """Everything `edgepose doctor` shows, as one JSON-ready document (schema SCHEMA)."""
    fp = device_info.fingerprint()
    thermal = device_info.thermal_state()
    board = fp["board"]
    default = _run_default()
    rows = backends()
    if default["ok"]:
        speed = f"{default['invoke_ms']} ms an invoke, 1 thread"
        verdict = f"ready: {default['model']} runs on {default['backend']} ({speed})"
    else:
        verdict = f"not ready: {default['model']} cannot run: {default['problem']}"
    return {
        "schema": SCHEMA,
        "edgepose": package_version("edgepose") or "unknown",
        "python": platform.python_version(),
        "executable": sys.executable,
        "os": fp["os"],
        "machine": fp["machine"],
        "board": board,
        "raspberry_pi": bool(board and board.startswith("Raspberry Pi")),
        "cpu": {
            "model": fp["cpu"],
            "cores": fp["cores"],
            "governor": fp["governor"],
            "temperature_c": thermal.temp_c,
            "throttled": thermal.throttled,
            "throttled_now": device_info.throttled_now(thermal.throttled),
        },
        "numpy": np.__version__,
        "backends": rows,
        "coral": fp["coral"],
        "opencv": _opencv(),
        "picamera2": _picamera2(),
        "video_devices": device_info._glob("/dev/video*"),
        "models": _models(),
        "default_model": default,
        "ok": default["ok"],
        "verdict": verdict,
    }
