"""`edgepose models list`: every registry entry, where its file was found (bundled, EDGEPOSE_MODEL_DIR, cache)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from edgepose.assets.registry import REGISTRY, is_present, model_dirs, where

models_app = typer.Typer(no_args_is_help=True, help="The model registry.")


@models_app.command("list")
def models_list() -> None:
    """Every registry entry, and whether its file is present here."""
    table = Table(title="edgepose models")
    table.add_column("name", no_wrap=True)
    for col in ("task", "input", "precision", "present", "sha256"):
        table.add_column(col)
    for spec in REGISTRY.values():
        pin = spec.sha256[:12] if spec.sha256 else f"{spec.sha256_prefix} (prefix)" if spec.sha256_prefix else "none"
        table.add_row(
            spec.name,
            spec.task,
            f"{spec.input_size[0]}x{spec.input_size[1]}",
            spec.precision,
            _present(spec),
            pin,
        )
    out = Console(width=None if sys.stdout.isatty() else 120)
    out.print(table)
    for label, d in model_dirs():
        out.print(f"searched ({label}): {d}", markup=False, highlight=False)


def _present(spec) -> str:
    """ "bundled" when the copy used is the one inside the package, "yes" for one in EDGEPOSE_MODEL_DIR or
    the cache, else "no"."""
    path = is_present(spec)
    if path is None:
        return "no"
    return "bundled" if where(path) == "bundled" else "yes"
