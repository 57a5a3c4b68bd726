"""Write files so that a crash or Ctrl-C never leaves a half-written output behind.

Every output is written to a temporary file beside it and renamed onto it when complete, so a reader
sees the old file or the new one, never a mix; of two runs writing the same output at once, the last
complete writer wins. Temporary names carry the writer's pid and host
(``.name.edgepose-tmp-PID@HOST-XXXX.ext``): SIGKILL cannot be caught, so the temporaries a dead process
of this host left are removed by the next writer of the same output.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from edgepose.errors import EdgeposeError

_TEMP_TAG = "edgepose-tmp"


def _process_umask() -> int:
    # Reading the umask means setting it; done once at import, before any thread of ours writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def _host() -> str:
    import socket  # only for the name of a temporary file: not worth its import on every start-up

    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _writer_tag() -> str:
    # pid@host: a pid means something only on its own host (a shared volume, NFS, containers).
    return f"{os.getpid()}@{_host()}"


def remove_stale_temps(target: str | Path) -> int:
    """Remove the temporaries of `target` left by writers of this host that no longer run; returns how
    many. Other hosts' temporaries are never touched: their pids cannot be checked from here."""
    target = Path(target)
    pattern = f".{glob.escape(target.stem)}.{_TEMP_TAG}-*{glob.escape(target.suffix)}"
    prefix, host = f".{target.stem}.{_TEMP_TAG}-", _host()
    removed = 0
    for tmp in target.parent.glob(pattern):
        match = re.match(r"(\d+)@([^-]+)-", tmp.name[len(prefix) :])
        if match and match.group(2) == host and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


class PendingFile:
    """A fresh temporary file beside `target`: `commit()` renames it onto `target`, `discard()` removes it.

    The temporary name keeps the suffix, so writers that pick a format by extension still work.
    """

    def __init__(self, target: str | Path):
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.target)
        prefix = f".{self.target.stem}.{_TEMP_TAG}-{_writer_tag()}-"
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=self.target.suffix, dir=self.target.parent)
        os.close(fd)
        self.path = Path(tmp)

    def commit(self) -> None:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        with contextlib.suppress(FileNotFoundError):
            os.chmod(self.path, 0o666 & ~_UMASK)
        os.replace(self.path, self.target)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`, else removed."""
    pending = PendingFile(target)
    try:
        yield pending.path
        pending.commit()
    finally:
        pending.discard()


def check_output_path(target: str | Path) -> None:
    """Refuse, before any work, an output that cannot be a file: a directory, a path under a file, a
    read-only place. One line naming `target`."""
    target = Path(target)
    if target.is_dir():
        raise EdgeposeError(f"{target}: is a directory; give a file name")
    if target.exists() and not target.is_file():
        raise EdgeposeError(f"{target}: cannot write: not a regular file")
    check_output_dir(target.parent, target)


def check_output_dir(folder: str | Path, named: str | Path | None = None) -> None:
    """Refuse a folder that cannot hold new files: under a file, or not writable (nearest existing one)."""
    folder = Path(folder)
    named = folder if named is None else named
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise EdgeposeError(f"{named}: cannot write: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise EdgeposeError(f"{named}: cannot write: {parent} is not writable")
            return


def output_error(target: str | Path, e: OSError) -> EdgeposeError:
    """One line for a failed write, naming the user's path, never the temporary file."""
    return EdgeposeError(f"{target}: cannot write: {e.strerror or e}")


@contextlib.contextmanager
def atomic_output(target: str | Path) -> Iterator[Path]:
    """atomic_path for user-named outputs: any OSError becomes one EdgeposeError naming `target`."""
    check_output_path(target)
    try:
        with atomic_path(target) as tmp:
            yield tmp
    except OSError as e:
        raise output_error(target, e) from None


def check_not_an_input(output: str | Path, inputs: Iterable[str | Path | None], option: str) -> None:
    """Refuse an output path that is one of the inputs (the same file by any path): writing it would
    destroy what is being read."""
    if not Path(output).exists():  # a file yet to be made is no input
        return
    for item in inputs:
        if item is not None and Path(item).exists() and os.path.samefile(output, item):
            raise EdgeposeError(f"{output}: {option} would overwrite the input {item}; give another path")
