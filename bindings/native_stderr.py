"""Keep native libraries' own log lines off the user's stderr."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native libraries writing straight to fd 2 (LiteRT's "Created TensorFlow Lite XNNPACK
    delegate", FFmpeg's "moov atom not found"), so a user sees only our one-line messages.

    Errors still reach the user: the libraries report them to Python, and we re-word them.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters, some test runners)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
