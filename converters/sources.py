"""What a conversion starts from: the kind of source and the pose family it belongs to."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import ModelError
from edgepose.models.families import FAMILIES, FAMILY_ALIASES

KINDS = ("tflite", "onnx", "saved_model", "checkpoint", "sdk_zip")


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str
    family: str
    quantized: bool = False  # a quantized TFLite: its float graph is recovered by dequantizing


def identify(path: str | Path, family: str = "auto") -> Source:
    """Classify `path`; raises ModelError with one clear line for anything the converters cannot take."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"source not found: {path}")
    family = FAMILY_ALIASES.get(family, family)
    if family not in ("auto", *FAMILIES):
        raise ModelError(f"unknown family {family!r}; choose one of auto, {', '.join(FAMILIES)}")
    kind = _kind(path)
    if kind in ("checkpoint", "sdk_zip"):
        if family not in ("auto", "rtmpose"):
            raise ModelError(f"{path.name}: a {kind.replace('_', ' ')} source is an RTMPose model, not {family}")
        return Source(path, kind, "rtmpose")
    if kind == "saved_model":
        if family == "auto":
            raise ModelError(f"{path.name}: give --family for a SavedModel (movenet, blazepose, ...)")
        return Source(path, kind, family)
    found, quantized = _runtime_family(path)
    return Source(path, kind, found if family == "auto" else family, quantized)


def _kind(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise ModelError(f"{path} is a folder but not a TF SavedModel (no saved_model.pb)")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ModelError(f"source file is empty: {path}")
    if suffix == ".tflite":
        return "tflite"
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pth", ".pt", ".npz"):
        return "checkpoint"
    if suffix == ".zip" and zipfile.is_zipfile(path):
        return "sdk_zip"
    raise ModelError(
        f"{path.name}: not a source the converters take (.tflite, .onnx, SavedModel folder, "
        "RTMPose .pth/.npz, OpenMMLab SDK .zip)"
    )


def _runtime_family(path: Path) -> tuple[str, bool]:
    """(family, quantized) as the runtime sees the file: registry entry, embedded metadata, tensors."""
    from edgepose.assets.registry import REGISTRY, ResolvedModel, sha256_of
    from edgepose.bindings import open_backend
    from edgepose.models.families import recognise_file
    from edgepose.pipelines.build import model_family

    if path.suffix.lower() == ".tflite" and recognise_file(path) == "posenet":
        return "posenet", True
    digest = sha256_of(path)
    spec = next((s for s in REGISTRY.values() if s.sha256 == digest), None)
    backend = open_backend(path)
    quantized = any(t.quantized for t in backend.inputs + backend.outputs) or _has_int8_weights(path)
    family, task = model_family(ResolvedModel(path, str(path), spec), backend)
    if family == "movenet" and task == "multi":
        raise ModelError(f"{path.name}: MoveNet MultiPose is not supported by the converters (its input is dynamic)")
    return family, quantized


def _has_int8_weights(path: Path) -> bool:
    if path.suffix.lower() != ".tflite":
        return False
    import numpy as np

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return False
    # A quantized tensor has scales; a raw uint8 image input (float MoveNet) has none.
    return any(
        t["dtype"] in (np.int8, np.uint8) and len(t["quantization_parameters"]["scales"])
        for t in Interpreter(str(path)).get_tensor_details()
    )
