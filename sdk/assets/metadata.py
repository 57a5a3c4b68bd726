"""edgepose metadata embedded in converted model files, read without any ML runtime.

The contract (written by `edgepose.converters.metadata`, read here):

One JSON object, UTF-8, stored under the key ``"edgepose"``:

- TFLite: a ``Model.metadata`` entry named ``edgepose`` whose ``Buffer.data`` holds the JSON bytes;
- ONNX: a ``ModelProto.metadata_props`` entry with key ``edgepose`` and the JSON text as value.

Fields (all optional for the reader; unknown fields are ignored)::

    family            a row of the family table (edgepose.models.families): "movenet" | "blazepose" |
                      "rtmpose" | "posenet" | "person-detector" ("blazepose-detector", the old name, is read as it)
    task              "single" | "detector" | "multi"
    keypoint_names    ["nose", ...]
    input_size        [width, height]
    input_layout      "NHWC" | "NCHW"
    normalization     {"mean": [r, g, b], "std": [r, g, b]}: model input = (RGB pixel 0..255 - mean) / std
                      (MoveNet float: mean 0, std 1; BlazePose: mean 0, std 255;
                      RTMPose: mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375))
    simcc_split_ratio 2.0 (rtmpose only: SimCC bins per input pixel)
    source            file name of the model it was converted from
    source_sha256     its SHA-256
    format            "tflite-int8", "tflite-fp16", "onnx-fp32", ...
    converter         "edgepose <version>"
    content_sha256    SHA-256 of the whole file with 64 zeros in place of this value (written last, in
                      place): the weights, the graph, this metadata, everything the converter wrote.
                      Checked on every load (`edgepose.assets.integrity`).

A reader never fails on metadata: JSON that does not parse, or is not an object, counts as no
metadata, and a field with a wrong type or value counts as absent. The file format itself is parsed
by hand (the flatbuffer in `edgepose.bindings.tflite_file`, the protobuf here), so this works with
numpy and the standard library alone, whatever runtime (or none) is installed.
"""

from __future__ import annotations

import functools
import json
import math
import mmap
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepose.bindings.tflite_file import is_tflite_buffer, metadata_entry_span
from edgepose.errors import ModelError
from edgepose.image import Normalization
from edgepose.models.families import FAMILIES, FAMILY_ALIASES, TASKS

METADATA_KEY = "edgepose"
LAYOUTS = ("NHWC", "NCHW")
# ModelProto.metadata_props and StringStringEntryProto's fields, from onnx.proto.
_ONNX_METADATA_PROPS = 14
_ONNX_ENTRY_KEY = 1
_ONNX_ENTRY_VALUE = 2


@dataclass(frozen=True)
class ModelMetadata:
    """The typed view of the edgepose metadata; None where the file says nothing (or nothing valid)."""

    family: str | None = None
    task: str | None = None
    keypoint_names: tuple[str, ...] | None = None
    input_size: tuple[int, int] | None = None  # width, height
    input_layout: str | None = None
    normalization: Normalization | None = None
    simcc_split_ratio: float | None = None
    source: str | None = None
    source_sha256: str | None = None
    format: str | None = None
    converter: str | None = None
    content_sha256: str | None = None

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any], strict: bool = False) -> ModelMetadata | None:
        """Parse the JSON text (or the already-decoded object). None when it is not a JSON object.

        Lenient by default (a bad field is dropped); `strict=True` raises ValueError instead, for the
        converters, which must never write metadata a reader would ignore.
        """
        obj = data if isinstance(data, Mapping) else _json_object(data)
        if obj is None:
            if strict:
                raise ValueError("edgepose metadata must be a JSON object")
            return None
        values: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            if name not in obj:
                continue
            value = parse(obj[name])
            if value is None and strict:
                raise ValueError(f"edgepose metadata: invalid {name!r}: {obj[name]!r}")
            values[name] = value
        return cls(**values)


def _json_object(data: str | bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data)
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return obj if isinstance(obj, dict) else None


def _choice(options: tuple[str, ...]):
    return lambda v: v if isinstance(v, str) and v in options else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _number(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _names(v: Any) -> tuple[str, ...] | None:
    if isinstance(v, list) and v and all(isinstance(n, str) for n in v):
        return tuple(v)
    return None


def _size(v: Any) -> tuple[int, int] | None:
    if isinstance(v, list) and len(v) == 2 and all(isinstance(d, int) and not isinstance(d, bool) for d in v):
        return (v[0], v[1]) if v[0] > 0 and v[1] > 0 else None
    return None


def _rgb(v: Any) -> tuple[float, float, float] | None:
    if not isinstance(v, list) or len(v) != 3:
        return None
    values = [_number(c) for c in v]
    return None if None in values else (values[0], values[1], values[2])  # type: ignore[return-value]


def _normalization(v: Any) -> Normalization | None:
    if not isinstance(v, dict):
        return None
    mean, std = _rgb(v.get("mean")), _rgb(v.get("std"))
    if mean is None or std is None or min(std) <= 0:
        return None
    return Normalization(mean, std)


def _split_ratio(v: Any) -> float | None:
    ratio = _number(v)
    return ratio if ratio is not None and ratio > 0 else None


_PARSERS = {
    "family": lambda v: _choice(tuple(FAMILIES))(FAMILY_ALIASES.get(v, v) if isinstance(v, str) else v),
    "task": _choice(TASKS),
    "keypoint_names": _names,
    "input_size": _size,
    "input_layout": _choice(LAYOUTS),
    "normalization": _normalization,
    "simcc_split_ratio": _split_ratio,
    "source": _text,
    "source_sha256": _text,
    "format": _text,
    "converter": _text,
    "content_sha256": lambda v: v if isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) else None,
}


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The raw edgepose metadata object of a .tflite or .onnx file, or None when it has none.

    None also for files that are not readable models or whose metadata is not a JSON object: the
    backend that loads the model reports what is wrong with the file. ModelError only when the file
    cannot be read at all.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if size == 0:
                return None
            # Mapped, not read: an ONNX file is mostly weights the walk below skips over.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                raw = _metadata_bytes(buf, path)
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e
    return None if raw is None else _json_object(raw)


def load_metadata(path: str | Path) -> ModelMetadata | None:
    """The typed edgepose metadata of a model file, or None (see `read_metadata`)."""
    raw = read_metadata(path)
    return None if raw is None else ModelMetadata.from_json(raw)


def backend_metadata(backend: Any) -> ModelMetadata | None:
    """The metadata of the file a backend was loaded from (None for backends without a file)."""
    path = getattr(backend, "path", None)
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    # Cached: the pipeline and each model it builds ask for the same file.
    return _cached_metadata(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached_metadata(path: str, size: int, mtime_ns: int) -> ModelMetadata | None:
    try:
        return load_metadata(path)
    except ModelError:
        return None


def _metadata_bytes(buf: mmap.mmap, path: Path) -> bytes | None:
    span = metadata_span(buf, path)
    return None if span is None else bytes(buf[span[0] : span[1]])


def metadata_span(buf: bytes | mmap.mmap, path: Path) -> tuple[int, int] | None:
    """(start, end) of the edgepose JSON bytes inside a model file's bytes, or None when it has none."""
    if is_tflite_buffer(buf[:8]):
        try:
            return metadata_entry_span(buf, METADATA_KEY)  # type: ignore[arg-type]
        except ModelError:
            return None
    if path.suffix.lower() == ".onnx":
        return onnx_metadata_span(buf, METADATA_KEY)
    return None


def onnx_metadata_span(buf: bytes | mmap.mmap, key: str) -> tuple[int, int] | None:
    """(start, end) of the value of `metadata_props[key]` in a serialized ONNX ModelProto, or None.

    Walks the top-level message only (skipping the graph by its length). Anything that is not
    well-formed protobuf gives None.
    """
    found = None
    try:
        for field, value in _fields(buf, 0, len(buf)):
            if field == _ONNX_METADATA_PROPS and isinstance(value, tuple):
                entry = dict(f for f in _fields(buf, *value) if isinstance(f[1], tuple))
                k, v = entry.get(_ONNX_ENTRY_KEY), entry.get(_ONNX_ENTRY_VALUE)
                if k is not None and v is not None and bytes(buf[k[0] : k[1]]) == key.encode():
                    found = v  # the last entry wins, like a map's
    except ValueError:
        return None
    return found


def _varint(buf: bytes | mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("bad varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes | mmap.mmap, pos: int, end: int):
    """(field number, varint value or (start, end) of a length-delimited payload) of one message."""
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield field, value
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ValueError("field past end of message")
            yield field, (pos, pos + n)
            pos += n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:  # groups (3, 4) are not used by onnx.proto; 6 and 7 do not exist
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("message overruns its end")
