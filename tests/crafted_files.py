"""Damaged copies of the shared files, made the way a hostile but fair user would make them."""

from __future__ import annotations

import random
import struct
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8 or pos + size > end:
            raise ValueError(f"unexpected MP4 box {kind!r} at {pos}")
        yield kind, pos, size
        pos += size


def _shift_chunk_offsets(moov: bytearray, start: int, end: int, delta: int) -> None:
    for kind, pos, size in _boxes(bytes(moov), start, end):
        if kind in _CONTAINERS:
            _shift_chunk_offsets(moov, pos + 8, pos + size, delta)
        elif kind in (b"stco", b"co64"):
            fmt = ">I" if kind == b"stco" else ">Q"
            width = struct.calcsize(fmt)
            (count,) = struct.unpack_from(">I", moov, pos + 12)
            for i in range(count):
                at = pos + 16 + i * width
                (offset,) = struct.unpack_from(fmt, moov, at)
                struct.pack_into(fmt, moov, at, offset + delta)


def faststart(data: bytes) -> bytes:
    """The same MP4 with its index (moov) before the media data, as streaming encoders write it: a file
    cut short then still opens and decodes up to the cut."""
    boxes = list(_boxes(data, 0, len(data)))
    moov = next((pos, size) for kind, pos, size in boxes if kind == b"moov")
    first_media = next(pos for kind, pos, _ in boxes if kind == b"mdat")
    index = bytearray(data[moov[0] : moov[0] + moov[1]])
    _shift_chunk_offsets(index, 8, len(index), len(index))
    rest = data[first_media : moov[0]] + data[moov[0] + moov[1] :]
    return data[:first_media] + bytes(index) + rest


def truncated_video(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """A faststart copy of `src` cut after `keep` of its bytes (a recording that was interrupted)."""
    data = faststart(src.read_bytes())
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def garbled_video(src: Path, dst: Path, seed: int = 1, keep: float = 0.5) -> Path:
    """A faststart copy of `src` whose second half is overwritten with random bytes."""
    data = bytearray(faststart(src.read_bytes()))
    rng = random.Random(seed)
    cut = int(len(data) * keep)
    data[cut:] = rng.randbytes(len(data) - cut)
    dst.write_bytes(bytes(data))
    return dst
