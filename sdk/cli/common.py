"""What every `edgepose` subcommand shares: the stderr console and the one-line failure."""

from __future__ import annotations

import typer
from rich.console import Console

stderr = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """One line on stderr; the caller raises the returned Exit."""
    stderr.print(f"edgepose: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)
