"""Reading RTMPose weights: official mmpose ``.pth`` checkpoints, our ``.npz`` dumps, and OpenMMLab SDK zips.

Every failure a user can cause (wrong file, truncated download, checkpoint of another model, hostile
zip) becomes one ``ModelError`` line; tracebacks are for our bugs only.
"""

from __future__ import annotations

import pickle
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from edgepose.errors import ModelError
from torch import nn

from .rtmpose_torch import VARIANTS, RTMPose, build_rtmpose

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
# SDK zips are a few MB to ~100 MB; anything past these is a zip bomb or the wrong file.
SDK_ZIP_MAX_TOTAL_BYTES = 1 << 30
SDK_ZIP_MAX_MEMBERS = 1000
_CHUNK = 1 << 20


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


# ---------------------------------------------------------------------------------------------------
# OpenMMLab SDK zips (end2end.onnx + pipeline.json + deploy.json + detail.json)
# ---------------------------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def _safe_member_path(info: zipfile.ZipInfo, zip_path: Path) -> PurePosixPath:
    name = info.filename
    # Zip names use "/", but hostile archives use "\" or drive letters to escape on Windows.
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ModelError(f"{zip_path}: refusing zip member with an absolute path: {name!r}")
    if ".." in parts:
        raise ModelError(f"{zip_path}: refusing zip member that escapes the folder: {name!r}")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ModelError(f"{zip_path}: refusing symbolic link in zip: {name!r}")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def extract_sdk_zip(zip_path: str | Path, dest_dir: str | Path) -> Path:
    """Safely unpack an OpenMMLab ONNX SDK zip into ``dest_dir``; returns the path of ``end2end.onnx``.

    ``end2end.onnx`` may sit at the top or inside one top-level folder. Absolute paths, ``..``,
    symlinks, more than 1000 members and more than 1 GiB uncompressed are refused before anything
    is written; the size cap is enforced again while writing, since headers can lie.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    if not zip_path.is_file():
        raise ModelError(f"{zip_path}: SDK zip not found")
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{zip_path}: not a zip file ({_first_line(exc)})") from exc

    with zf:
        infos = zf.infolist()
        if len(infos) > SDK_ZIP_MAX_MEMBERS:
            raise ModelError(f"{zip_path}: {len(infos)} members; an SDK zip has a handful, refusing")
        members = [(info, _safe_member_path(info, zip_path)) for info in infos]
        declared = sum(info.file_size for info in infos)
        if declared > SDK_ZIP_MAX_TOTAL_BYTES:
            raise ModelError(
                f"{zip_path}: unpacks to {_size(declared)}, over the {_size(SDK_ZIP_MAX_TOTAL_BYTES)} limit; refusing"
            )

        onnx_members = [rel for info, rel in members if not info.is_dir() and rel.name == "end2end.onnx"]
        onnx_members = [rel for rel in onnx_members if len(rel.parts) <= 2]
        if not onnx_members:
            raise ModelError(f"{zip_path}: no end2end.onnx at the top or in one top-level folder; not an SDK zip")
        if len(onnx_members) > 1:
            listed = ", ".join(str(p) for p in onnx_members[:3])
            raise ModelError(f"{zip_path}: several end2end.onnx ({listed}); expected one model per zip")

        dest_dir.mkdir(parents=True, exist_ok=True)
        root = dest_dir.resolve()
        written = 0
        for info, rel in members:
            if not rel.parts:
                continue
            target = root.joinpath(*rel.parts)
            # Belt and braces: a pre-existing symlink inside dest_dir could still redirect a write.
            if not target.resolve().is_relative_to(root):
                raise ModelError(f"{zip_path}: zip member {info.filename!r} resolves outside {dest_dir}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > SDK_ZIP_MAX_TOTAL_BYTES:
                            limit = _size(SDK_ZIP_MAX_TOTAL_BYTES)
                            raise ModelError(f"{zip_path}: unpacks to more than {limit} (zip bomb?); refusing")
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                # Corrupt data (CRC mismatch), unsupported compression, or an encrypted member.
                raise ModelError(f"{zip_path}: cannot extract {info.filename!r} ({_first_line(exc)})") from exc
            except ModelError:
                target.unlink(missing_ok=True)
                raise
    return root.joinpath(*onnx_members[0].parts)
