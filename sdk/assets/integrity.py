"""Is a model file the one its converter wrote? A converted file records the SHA-256 of its own bytes.

`content_sha256` in the edgepose metadata is the SHA-256 of the whole file as written with 64 zeros in
place of that value: the converter writes the file with the zeros, hashes it, then writes the digest
over them (`stamp`). A reader puts the zeros back, hashes and compares (`check_content`), so a flipped
weight byte, a damaged graph or an edited metadata field is refused with one line before any runtime
loads the file. Files without edgepose metadata (the official
releases) carry no such hash: `edgepose models info` shows their SHA-256 to pin instead, and the
registry pins the official ones.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from pathlib import Path

from edgepose.assets.metadata import metadata_span
from edgepose.errors import ModelError

FIELD = "content_sha256"
PLACEHOLDER = "0" * 64


def content_sha256(buf: bytes | mmap.mmap, value_at: int) -> str:
    """SHA-256 of `buf` with the 64 hex digits at `value_at` (the recorded hash) read as PLACEHOLDER."""
    h = hashlib.sha256()
    h.update(buf[:value_at])
    h.update(PLACEHOLDER.encode())
    h.update(buf[value_at + len(PLACEHOLDER) :])
    return h.hexdigest()


def recorded_sha256(buf: bytes | mmap.mmap, path: Path) -> tuple[str, int] | None:
    """(the recorded hash, the offset of its 64 digits in the file), or None for a file whose metadata
    records none."""
    span = metadata_span(buf, path)
    if span is None:
        return None
    text = bytes(buf[span[0] : span[1]])
    try:
        value = json.loads(text).get(FIELD)
    except (ValueError, AttributeError, RecursionError):
        return None
    if not (isinstance(value, str) and len(value) == len(PLACEHOLDER)):
        return None
    key_at = text.find(f'"{FIELD}"'.encode())
    value_at = text.find(value.encode(), key_at) if key_at >= 0 else -1
    return (value, span[0] + value_at) if value_at >= 0 else None


def check_content(path: str | Path) -> bool:
    """Raise ModelError when `path` records a content hash it does not match. True when it was checked,
    False when the file records none."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                found = recorded_sha256(buf, path)
                if found is None:
                    return False
                recorded, value_at = found
                actual = content_sha256(buf, value_at)
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e
    if actual != recorded:
        raise ModelError(
            f"{path}: the file does not match the SHA-256 its edgepose metadata records "
            f"(got {actual[:12]}…, recorded {recorded[:12]}…): it changed after conversion; convert it again"
        )
    return True


def stamp(buf: bytes, path: Path) -> bytes:
    """The converter's last step: `buf` (a model whose metadata holds PLACEHOLDER as its content hash)
    with the placeholder replaced by the real hash, in place, same length."""
    found = recorded_sha256(buf, path)
    if found is None or found[0] != PLACEHOLDER:
        raise ModelError(f"{path}: no {FIELD} placeholder in its edgepose metadata")
    value_at = found[1]
    digest = content_sha256(buf, value_at).encode()
    return bytes(buf[:value_at]) + digest + bytes(buf[value_at + len(digest) :])
