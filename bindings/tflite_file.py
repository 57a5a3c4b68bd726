"""Read what we need from a .tflite flatbuffer without any runtime: validity, custom op names, metadata.

Done by hand (bounds-checked) so that an Edge TPU build is recognised, and a wrong or truncated file
refused, before any interpreter touches it; and so that edgepose's own metadata (embedded by the
converters) is readable where no flatbuffers package or TFLite schema is installed.
"""

from __future__ import annotations

import struct
from pathlib import Path

from edgepose.errors import ModelError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
# Field indices in tflite's schema.fbs.
_MODEL_OPERATOR_CODES = 1  # table Model
_MODEL_BUFFERS = 4
_MODEL_METADATA = 6
_OPCODE_CUSTOM_CODE = 1  # table OperatorCode
_BUFFER_DATA = 0  # table Buffer
_BUFFER_OFFSET = 1
_BUFFER_SIZE = 2
_METADATA_NAME = 0  # table Metadata
_METADATA_BUFFER = 1


class _Reader:
    """Flatbuffer access where every read is bounds-checked: a bad offset raises struct.error."""

    def __init__(self, buf: bytes):
        self.buf = buf

    def _at(self, fmt: str, pos: int) -> int:
        # struct counts negative offsets from the end; a corrupt offset must fail instead.
        if pos < 0:
            raise struct.error("offset before start of file")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def u32(self, pos: int) -> int:
        return self._at("<I", pos)

    def u64(self, pos: int) -> int:
        return self._at("<Q", pos)

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table field, or None when the field is absent."""
        vtable = table - self._at("<i", table)
        vt_size = self._at("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self._at("<H", vtable + slot)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> list[int]:
        """Positions of the elements of a vector of tables/strings stored at field `pos`."""
        vec = self.deref(pos)
        n = self.u32(vec)
        if vec + 4 + 4 * n > len(self.buf):
            raise struct.error("vector past end of file")
        return [self.deref(vec + 4 + 4 * i) for i in range(n)]

    def byte_vector(self, pos: int) -> bytes:
        """The contents of a [ubyte] vector stored at field `pos`."""
        vec = self.deref(pos)
        n = self.u32(vec)
        if vec + 4 + n > len(self.buf):
            raise struct.error("byte vector past end of file")
        return bytes(self.buf[vec + 4 : vec + 4 + n])

    def string(self, pos: int) -> str:
        n = self.u32(pos)
        if pos + 4 + n > len(self.buf):
            raise struct.error("string past end of file")
        return self.buf[pos + 4 : pos + 4 + n].decode("utf-8", "replace")


def _read_tflite(path: Path) -> bytes:
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e
    if not is_tflite_buffer(buf):
        raise ModelError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)")
    return buf


def is_tflite_buffer(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[4:8] == b"TFL3"


def custom_ops(path: str | Path) -> list[str]:
    """Names of the custom ops a .tflite file uses. Raises ModelError if it is not a TFLite model."""
    path = Path(path)
    buf = _read_tflite(path)
    r = _Reader(buf)
    try:
        root = r.deref(0)
        codes = r.field(root, _MODEL_OPERATOR_CODES)
        names = []
        for code in r.vector(codes) if codes is not None else []:
            f = r.field(code, _OPCODE_CUSTOM_CODE)
            if f is not None:
                names.append(r.string(r.deref(f)))
        return names
    except (struct.error, IndexError) as e:
        raise ModelError(f"{path} is a truncated or corrupt TFLite model") from e


def is_edgetpu_model(path: str | Path) -> bool:
    return EDGETPU_CUSTOM_OP in custom_ops(path)


def metadata_entry(buf: bytes, name: str) -> bytes | None:
    """The bytes of the Model.metadata entry called `name` in a TFLite flatbuffer, or None.

    The last entry of that name wins (a re-embedding tool may have appended one). Raises ModelError
    when `buf` is not a readable TFLite flatbuffer.
    """
    if not is_tflite_buffer(buf):
        raise ModelError("not a TFLite model (no TFL3 flatbuffer identifier)")
    r = _Reader(buf)
    try:
        root = r.deref(0)
        entries = r.field(root, _MODEL_METADATA)
        index = None
        for entry in r.vector(entries) if entries is not None else []:
            name_at = r.field(entry, _METADATA_NAME)
            buffer_at = r.field(entry, _METADATA_BUFFER)
            if name_at is not None and buffer_at is not None and r.string(r.deref(name_at)) == name:
                index = r.u32(buffer_at)
        if index is None:
            return None
        buffers_at = r.field(root, _MODEL_BUFFERS)
        buffers = r.vector(buffers_at) if buffers_at is not None else []
        return _buffer_bytes(r, buffers[index]) if index < len(buffers) else None
    except (struct.error, IndexError) as e:
        raise ModelError("truncated or corrupt TFLite model") from e


def _buffer_bytes(r: _Reader, buffer: int) -> bytes | None:
    data = r.field(buffer, _BUFFER_DATA)
    if data is not None:
        content = r.byte_vector(data)
        if content:
            return content
    # Models over 2 GB keep buffers after the flatbuffer: `offset` from the file start (1 is a sentinel).
    offset_at, size_at = r.field(buffer, _BUFFER_OFFSET), r.field(buffer, _BUFFER_SIZE)
    offset = r.u64(offset_at) if offset_at is not None else 0
    size = r.u64(size_at) if size_at is not None else 0
    if offset > 1 and size > 0 and offset + size <= len(r.buf):
        return bytes(r.buf[offset : offset + size])
    return None
