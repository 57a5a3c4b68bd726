"""OpenMMLab ONNX SDK zips (end2end.onnx + pipeline.json + deploy.json + detail.json), unpacked safely.

No torch here: an SDK zip already holds the ONNX graph.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from edgepose.errors import ModelError

# SDK zips are a few MB to ~100 MB; anything past these is a zip bomb or the wrong file.
SDK_ZIP_MAX_TOTAL_BYTES = 1 << 30
SDK_ZIP_MAX_MEMBERS = 1000
_CHUNK = 1 << 20


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
