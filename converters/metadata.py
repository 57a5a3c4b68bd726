"""Embed edgepose metadata into converted TFLite and ONNX files, so the runtime needs no flags.

The contract (read back by `edgepose.assets.metadata` without any ML runtime):

One JSON object, UTF-8, stored under the key ``"edgepose"``:

- TFLite: a ``Model.metadata`` entry named ``edgepose`` whose ``Buffer.data`` holds the JSON bytes
  (an existing ``edgepose`` entry has its buffer replaced; every other entry is kept);
- ONNX: a ``ModelProto.metadata_props`` entry with key ``edgepose`` and the JSON text as value
  (any existing ``edgepose`` entries are replaced by one).

Fields: see `edgepose.assets.metadata` (the reader), which documents the contract.

Readers ignore unknown fields and treat malformed JSON as no metadata; the writers here refuse a
known field with a wrong value (`ModelMetadata.from_json(strict=True)`), so nothing is written that
a reader would silently drop. Both writers are atomic: a temporary file beside `path_out`, renamed.
`path_in` and `path_out` may be the same file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgepose.assets import integrity
from edgepose.assets.metadata import METADATA_KEY, ModelMetadata
from edgepose.assets.registry import sha256_of
from edgepose.assets.tflite_edit import load_model_tree
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path
from edgepose.models.families import FAMILIES

# Keys a converted pose model must carry for `edgepose run --model FILE` to need no other flag.
REQUIRED = ("family", "task", "input_size", "input_layout", "normalization")
# TFLite kernels read weights in place; keep the new buffers as aligned as the converter makes them.
_BUFFER_ALIGNMENT = 16

# RTMPose's ImageNet mean/std, as the family table has them.
RTMPOSE_MEAN = FAMILIES["rtmpose"].normalization.mean
RTMPOSE_STD = FAMILIES["rtmpose"].normalization.std


def make_metadata(
    family: str,
    task: str,
    input_size: tuple[int, int],
    input_layout: str,
    mean: Sequence[float],
    std: Sequence[float],
    source: str | Path,
    fmt: str,
    keypoint_names: Sequence[str] = (),
    simcc_split_ratio: float | None = None,
) -> dict[str, Any]:
    """The metadata object for a converted model; `source` is the file it was converted from
    (hashed here when it exists)."""
    source = Path(source)
    meta: dict[str, Any] = {
        "family": family,
        "task": task,
        "keypoint_names": list(keypoint_names),
        "input_size": [int(input_size[0]), int(input_size[1])],
        "input_layout": input_layout,
        "normalization": {"mean": [float(m) for m in mean], "std": [float(s) for s in std]},
    }
    if not meta["keypoint_names"]:
        del meta["keypoint_names"]  # a detector has none
    if simcc_split_ratio is not None:
        meta["simcc_split_ratio"] = float(simcc_split_ratio)
    meta["source"] = source.name
    if source.is_file():
        meta["source_sha256"] = sha256_of(source)
    meta["format"] = fmt
    meta["converter"] = f"edgepose {_version()}"
    return meta


def metadata_json(meta: dict[str, Any]) -> bytes:
    """The UTF-8 JSON to embed. Raises ValueError for metadata a reader would not accept."""
    if not isinstance(meta, dict):
        raise ValueError("edgepose metadata must be a dict")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"edgepose metadata lacks {', '.join(missing)}")
    ModelMetadata.from_json(meta, strict=True)
    return json.dumps(meta, ensure_ascii=False, allow_nan=False).encode("utf-8")


def embed_metadata(path_in: str | Path, path_out: str | Path, meta: dict[str, Any]) -> None:
    """`embed_onnx_metadata` for .onnx files, `embed_tflite_metadata` for anything else."""
    embed = embed_onnx_metadata if Path(path_in).suffix.lower() == ".onnx" else embed_tflite_metadata
    embed(path_in, path_out, meta)


def _with_hash_placeholder(meta: dict[str, Any]) -> bytes:
    # The real hash is written over the placeholder once the file's bytes are final (integrity.stamp).
    return metadata_json({**meta, integrity.FIELD: integrity.PLACEHOLDER})


def embed_tflite_metadata(path_in: str | Path, path_out: str | Path, meta: dict[str, Any]) -> None:
    """Write `path_in` to `path_out` with `meta` (and the file's content hash) as its `edgepose`
    Model.metadata entry."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    payload = _with_hash_placeholder(meta)
    path_in, path_out = Path(path_in), Path(path_out)
    model = load_model_tree(path_in)
    buffers = model.buffers or []
    if any(b.offset > 1 for b in buffers):
        # Weights stored after the flatbuffer (models over 2 GB) would be lost by repacking it.
        raise ModelError(f"{path_in} keeps its weights outside the flatbuffer; not supported")

    data = np.frombuffer(payload, dtype=np.uint8)
    entries = [m for m in model.metadata or [] if m.name in (METADATA_KEY, METADATA_KEY.encode())]
    if any(not 0 < m.buffer < len(buffers) for m in entries):
        raise ModelError(f"{path_in}: its edgepose metadata entry points at no buffer")
    if entries:
        for m in entries:  # the buffer is the entry's own: no tensor refers to it
            buffers[m.buffer].data = data
    else:
        buffers.append(schema.BufferT(data=data))
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_KEY, len(buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    model.buffers = buffers

    builder = _aligning_builder(path_in.stat().st_size + len(payload) + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    data = integrity.stamp(bytes(builder.Output()), path_out)
    with atomic_path(path_out) as tmp:
        tmp.write_bytes(data)


def embed_onnx_metadata(path_in: str | Path, path_out: str | Path, meta: dict[str, Any]) -> None:
    """Write `path_in` to `path_out` with `meta` (and the file's content hash) as its `edgepose`
    metadata_props entry."""
    import onnx  # workstation only: the runtime reads the entry by hand

    payload = _with_hash_placeholder(meta).decode("utf-8")
    path_in, path_out = Path(path_in), Path(path_out)
    try:
        model = onnx.load(str(path_in))
    except Exception as e:  # onnx raises DecodeError, OSError or its own errors for bad files
        raise ModelError(f"onnx cannot load {path_in}: {type(e).__name__}") from e
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=payload)
    data = integrity.stamp(model.SerializeToString(), path_out)
    with atomic_path(path_out) as tmp:
        tmp.write_bytes(data)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edgepose")
    except PackageNotFoundError:
        return "unknown"


def _aligning_builder(size: int) -> Any:
    import flatbuffers

    class AligningBuilder(flatbuffers.Builder):
        """Starts byte vectors (tensor weights) on 16-byte boundaries, as TFLite's converter does;
        the generated object API would align them to 1 byte only."""

        def CreateNumpyVector(self, x):  # noqa: N802 - flatbuffers' own name
            if x.dtype.itemsize != 1 or x.ndim != 1:
                return super().CreateNumpyVector(x)
            payload = x.tobytes()
            self.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            self.head = self.head - len(payload)
            self.Bytes[self.head : self.head + len(payload)] = payload
            return self.EndVector()

    return AligningBuilder(size)
