"""Write files so that a crash or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgepose.errors import EdgeposeError


def _process_umask() -> int:
    # Reading the umask means setting it; done once at import, before any thread of ours writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`, else removed.

    The temporary name keeps the suffix, so writers that pick a format by extension still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def check_output_path(target: str | Path) -> None:
    """Refuse, before any work, an output that cannot be a file: a directory, or a path under a file."""
    target = Path(target)
    if target.is_dir():
        raise EdgeposeError(f"{target}: is a directory; give a file name")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise EdgeposeError(f"{target}: cannot write: {parent} is not a directory")
            if not os.access(parent, os.W_OK):
                raise EdgeposeError(f"{target}: cannot write: {parent} is not writable")
            break


@contextlib.contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """atomic_path for user-named outputs: any OSError becomes one EdgeposeError naming `target`, never
    the temporary file."""
    check_output_path(target)
    try:
        with atomic_path(target) as tmp:
            yield tmp
    except OSError as e:
        raise EdgeposeError(f"{target}: cannot write: {e.strerror or e}") from None
