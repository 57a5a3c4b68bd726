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


# --ray, shared by `run` and `eval`: the options, their check without --ray, and Ray's threads default.
def ray_option(what: str, same: str) -> bool:
    return typer.Option(
        False,
        "--ray",
        help=f"{what} over a Ray cluster (pip install 'edgepose\\[ray]'): a local one, or --ray-address. {same}",
    )


def ray_address_option(shared: str) -> str | None:
    return typer.Option(
        None,
        "--ray-address",
        help=f"With --ray: an existing cluster (HOST:6379, ray://HOST:10001 or auto). {shared}",
    )


def ray_workers_option() -> int | None:
    return typer.Option(
        None, "--ray-workers", min=1, help="With --ray: workers, one model each (default: cluster CPUs / --threads)."
    )


def ray_batch_option(items: str) -> int | None:
    return typer.Option(
        None,
        "--ray-batch",
        min=1,
        help=f"With --ray: {items} per task (default: 8, fewer if that would idle a worker).",
    )


def refuse_ray_options(address: str | None, workers: int | None, batch: int | None) -> None:
    """Without --ray, its options are refused, never ignored."""
    for given, flag in ((address, "--ray-address"), (workers, "--ray-workers"), (batch, "--ray-batch")):
        if given is not None:
            raise fail(f"{flag} needs --ray")


def ray_threads(address: str | None, threads: int | None) -> int:
    """Ray importable (else its install line), and the threads per worker: workers share the cores, 1 each
    unless --threads says otherwise."""
    from edgepose.cluster.ray_pool import require_ray
    from edgepose.errors import EdgeposeError

    try:
        require_ray(local=address is None)
    except EdgeposeError as e:
        raise fail(str(e)) from None
    return 1 if threads is None else threads
