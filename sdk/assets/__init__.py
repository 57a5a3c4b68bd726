"""Model files: the registry (names, pins, resolution, the bundled defaults), edgepose metadata read
from TFLite/ONNX files, and TFLite graph editing. Below the models layer: nothing here runs a model."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """The user cache folder for downloaded models and derived files (PoseNet's decoder-free copy)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("edgepose")) / "models"
