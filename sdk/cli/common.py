"""What every `edgepose` subcommand shares: the stderr console and the one-line failure."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

# Environment variables with which rich may treat a pipe as a terminal (rich's Console.is_terminal reads
# FORCE_COLOR and TTY_COMPATIBLE): with any of them set, rich decides.
_RICH_TERMINAL_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


class _StderrConsole:
    """rich's stderr Console, made on first use: rich.console costs ~17 ms of start-up, which a run whose
    stderr is a pipe or a log (no progress bar, no error) never needs."""

    _console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)
        return self._console

    @property
    def is_terminal(self) -> bool:
        if self._console is None and not _maybe_terminal():
            return False
        return self.console.is_terminal

    def __getattr__(self, name: str):
        return getattr(self.console, name)


def _maybe_terminal() -> bool:
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except ValueError:  # closed
        tty = False
    return tty or any(k in os.environ for k in _RICH_TERMINAL_ENV)


stderr = _StderrConsole()


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr; the caller raises the returned Exit."""
    stderr.print(f"edgepose: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def write_json(document: object, json_out: str | None) -> bool:
    """`--json FILE|-`: the document as indented JSON on stdout ("-") or into FILE, written whole or not at
    all. Returns True when stdout took it (the command prints nothing else there)."""
    if json_out is None:
        return False
    import json

    text = json.dumps(document, indent=2) + "\n"
    if json_out == "-":
        sys.stdout.write(text)
        return True
    from pathlib import Path

    from edgepose.errors import EdgeposeError
    from edgepose.io.atomic import atomic_output

    try:
        with atomic_output(Path(json_out)) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except EdgeposeError as e:
        raise fail(str(e)) from None
    return False


def check_camera(value: str | None) -> str | None:
    """The `--camera` option's check: N (OpenCV) or picam / picam:N, refused with one line otherwise."""
    if value is not None:
        from edgepose.errors import EdgeposeError
        from edgepose.io.picamera import parse_camera

        try:
            parse_camera(value)
        except EdgeposeError as e:
            raise fail(str(e)) from None
    return value


CAMERA_HELP = "Read a camera: N (OpenCV) or picam / picam:N (Picamera2, Raspberry Pi)."
