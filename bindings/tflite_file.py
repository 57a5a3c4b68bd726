"""Read what we need from a .tflite flatbuffer without any runtime: validity and custom op names.

Done by hand (bounds-checked) so that an Edge TPU build is recognised, and a wrong or truncated file
refused, before any interpreter touches it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from edgepose.errors import ModelError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
_MODEL_OPERATOR_CODES = 1  # field index in tflite's schema: table Model
_OPCODE_CUSTOM_CODE = 1  # field index in tflite's schema: table OperatorCode


class _Reader:
    def __init__(self, buf: bytes):
        self.buf = buf

    def u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table field, or None when the field is absent."""
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        vt_size = struct.unpack_from("<H", self.buf, vtable)[0]
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = struct.unpack_from("<H", self.buf, vtable + slot)[0]
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

    def string(self, pos: int) -> str:
        n = self.u32(pos)
        if pos + 4 + n > len(self.buf):
            raise struct.error("string past end of file")
        return self.buf[pos + 4 : pos + 4 + n].decode("utf-8", "replace")


def custom_ops(path: str | Path) -> list[str]:
    """Names of the custom ops a .tflite file uses. Raises ModelError if it is not a TFLite model."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)")
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
