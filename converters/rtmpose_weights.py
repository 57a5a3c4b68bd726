"""Reading RTMPose weights: official mmpose ``.pth`` checkpoints, our ``.npz`` dumps, and OpenMMLab SDK zips.

Every failure a user can cause (wrong file, truncated download, checkpoint of another model, hostile
zip) becomes one ``ModelError`` line; tracebacks are for our bugs only.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgepose.errors import ModelError

from .rtmpose_torch import VARIANTS, RTMPose, build_rtmpose
from .sdk_zip import extract_sdk_zip  # noqa: F401 (re-exported: part of this module's API)

__all__ = [
    "extract_sdk_zip",
    "infer_variant",
    "load_rtmpose_state_dict",
    "load_rtmpose_weights",
    "rtmpose_from_checkpoint",
]

# Official checkpoints carry `meta.dataset_meta` with numpy arrays (sigmas, colours); torch's
# weights_only unpickler refuses those unless allowed. Numpy array reconstruction runs no user code,
# and nested objects still go through the same restricted unpickler, so allowing it is safe.


def _numpy_safe_globals() -> list[object]:
    """The numpy callables a plain ndarray pickle needs, under both module names numpy has used."""
    found: list[object] = [np.ndarray, np.dtype]
    try:  # numpy >= 2 moved the module; importing numpy.core there only warns.
        from numpy._core import multiarray  # type: ignore[attr-defined]
    except ImportError:
        from numpy.core import multiarray
    # Official checkpoints (2023) were pickled under numpy 1.x as numpy.core.multiarray.*, numpy 2 writes
    # numpy._core.multiarray.*; torch matches globals by name, so register both spellings.
    for fn in (multiarray._reconstruct, multiarray.scalar):
        found += [(fn, f"numpy.core.multiarray.{fn.__name__}"), (fn, f"numpy._core.multiarray.{fn.__name__}")]
    # numpy >= 1.25 pickles dtypes through their per-type classes (numpy.dtypes.Float32DType, ...).
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def _torch_load(path: Path) -> object:
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Either not a pickle at all, or one holding objects we refuse to construct (e.g. mmengine
        # classes in a training checkpoint). Name the offending globals when torch can list them.
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        if unsafe:
            raise ModelError(
                f"{path}: checkpoint holds non-tensor objects that are unsafe to load "
                f"({', '.join(unsafe[:3])}); re-save it as a plain state dict"
            ) from exc
        raise ModelError(f"{path}: not a PyTorch checkpoint ({_first_line(exc)})") from exc
    except Exception as exc:
        # Truncated zips give RuntimeError, short files EOFError, and garbage fed to the weights-only
        # unpickler anything at all (IndexError, KeyError, UnicodeDecodeError...): all mean a bad file.
        raise ModelError(f"{path}: unreadable or truncated PyTorch checkpoint ({_first_line(exc)})") from exc


def _npz_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as z:
            # np.array copies out of the (closing) archive; torch.from_numpy then shares that copy.
            return {k: torch.from_numpy(np.array(z[k])) for k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{path}: unreadable or truncated .npz state dict ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def load_rtmpose_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Key -> tensor from an mmpose ``.pth`` (``{"state_dict": ...}`` unwrapped, ``module.`` stripped) or an ``.npz``.

    Only tensors are returned; no key or shape checks against a model happen here (see
    ``load_rtmpose_weights``).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint file not found")
    raw = _npz_load(path) if path.suffix.lower() == ".npz" else _torch_load(path)

    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not raw:
        raise ModelError(f"{path}: no state dict inside (expected a key -> tensor mapping or {{'state_dict': ...}})")

    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelError(f"{path}: state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        # DataParallel / DistributedDataParallel checkpoints prefix every key with "module.".
        state[key.removeprefix("module.")] = value
    return state


_WIDTH_TO_VARIANT = {cfg.out_channels: name for name, cfg in VARIANTS.items()}


def infer_variant(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The variant name ("t", "s" or "m") from the backbone's last-stage width (384 / 512 / 768 channels)."""
    key = "backbone.stage4.0.conv.weight"
    weight = state_dict.get(key)
    if weight is None:
        raise ModelError(f"not an RTMPose (CSPNeXt) checkpoint: no {key}")
    width = int(weight.shape[0])
    if width not in _WIDTH_TO_VARIANT:
        known = ", ".join(f"{w} ({v})" for w, v in _WIDTH_TO_VARIANT.items())
        raise ModelError(f"unsupported RTMPose width: last stage has {width} channels; supported: {known}")
    return _WIDTH_TO_VARIANT[width]


def load_rtmpose_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strict load with one-line errors naming the first few missing / unexpected / mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            more = ", ..." if len(unexpected) > 3 else ""
            parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{more})")
        raise ModelError(f"checkpoint does not fit this RTMPose model: {'; '.join(parts)} keys")
    bad = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if bad:
        raise ModelError(f"checkpoint does not fit this RTMPose model: shape mismatch at {'; '.join(bad[:3])}")
    model.load_state_dict(dict(state_dict), strict=True)


def rtmpose_from_checkpoint(path: str | Path) -> RTMPose:
    """The matching RTMPose, weights loaded, in eval mode; variant, keypoints and input size come from the weights."""
    state = load_rtmpose_state_dict(path)
    variant = infer_variant(state)
    try:
        num_keypoints = int(state["head.final_layer.weight"].shape[0])
        # SimCC bins are input side * split ratio 2.0.
        input_size = (int(state["head.cls_x.weight"].shape[0]) // 2, int(state["head.cls_y.weight"].shape[0]) // 2)
    except KeyError as exc:
        raise ModelError(f"{path}: not an RTMPose checkpoint: no {exc.args[0]}") from exc
    try:
        model = build_rtmpose(variant, num_keypoints=num_keypoints, input_size=input_size)
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    load_rtmpose_weights(model, state)
    return model.eval()
