"""`edgepose models list`: every registry entry, where its file was found (bundled, EDGEPOSE_MODEL_DIR, cache)."""

from __future__ import annotations

import sys

import typer

from edgepose.assets import sha256_of
from edgepose.assets.integrity import check_content
from edgepose.assets.metadata import read_metadata
from edgepose.assets.registry import REGISTRY, is_present, model_dirs, resolve_model, where
from edgepose.cli.common import fail
from edgepose.errors import EdgeposeError

models_app = typer.Typer(no_args_is_help=True, help="The model registry.")


@models_app.command("list")
def models_list() -> None:
    """Every registry entry, and whether its file is present here."""
    from rich.console import Console
    from rich.table import Table

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


@models_app.command("info")
def models_info(model: str = typer.Argument(..., help="Registry name or .tflite/.onnx path.")) -> None:
    """A model file's SHA-256 (to pin: `run --model-sha256`), where it was found, its metadata, and its
    operators: for an Edge TPU build, which run in the TPU and which on the CPU."""
    from rich.console import Console

    from edgepose.assets.op_map import describe as describe_operators
    from edgepose.assets.op_map import operator_map

    try:
        resolved = resolve_model(model, download=False)
        path = resolved.path
        digest = sha256_of(path)
        size = path.stat().st_size
        meta = read_metadata(path)
        checked = check_content(path)
        ops = operator_map(resolved)
    except (EdgeposeError, OSError) as e:
        raise fail(str(e)) from None
    spec = resolved.spec
    pinned = spec.sha256 or spec.sha256_prefix if spec is not None else None
    official = bool(pinned) and digest.startswith(pinned)
    rows = [
        ("model", resolved.name),
        ("file", f"{path} ({where(path)})"),
        ("size", f"{size} bytes"),
        ("sha256", digest),
        ("registry pin", _pin_status(spec, digest)),
        ("family / task", f"{spec.family} / {spec.task}" if official else "from its metadata or tensors"),
        ("content hash", "verified (recorded in its metadata)" if checked else "not recorded"),
    ]
    if ops is not None:
        rows += describe_operators(ops)
    for key, value in sorted((meta or {}).items()):
        rows.append((f"metadata.{key}", str(value)))
    out = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    for key, value in rows:
        out.print(f"{key:16} {value}", markup=False, soft_wrap=True)


def _pin_status(spec, digest: str) -> str:
    if spec is None:
        return "none (not a registry file)"
    pinned = spec.sha256 or spec.sha256_prefix
    if not pinned:
        return f"none ({spec.name} has no pin)"
    if digest.startswith(pinned):
        return f"matches {spec.name}" + ("" if spec.sha256 else " (prefix)")
    return f"differs from {spec.name}'s: not the official file"


def _present(spec) -> str:
    """ "bundled" when the copy used is the one inside the package, "yes" for one in EDGEPOSE_MODEL_DIR or
    the cache, else "no"."""
    path = is_present(spec)
    if path is None:
        return "no"
    return "bundled" if where(path) == "bundled" else "yes"
