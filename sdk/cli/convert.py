"""`edgepose convert`: the workstation converters behind one command (the runtime never imports them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgepose.cli.common import fail

if TYPE_CHECKING:
    from rich.console import Console


def convert_command(
    source: Path = typer.Argument(..., help="TFLite, ONNX, SavedModel folder, RTMPose .pth/.npz, OpenMMLab SDK .zip"),
    to: str = typer.Option(..., "--to", help="onnx, onnx-int8, tflite-fp32, tflite-fp16 or tflite-int8"),
    output: Path = typer.Option(..., "-o", "--output", help="the converted file (.onnx or .tflite)"),
    calib: Path = typer.Option(None, "--calib", help="folder of real photos: int8 calibration and the parity check"),
    family: str = typer.Option(
        "auto", "--family", help="movenet, blazepose, person-detector, rtmpose, posenet or auto"
    ),
    variant: str = typer.Option(None, "--variant", help="RTMPose t, s or m (checked against the weights)"),
    report: Path = typer.Option(None, "--report", help="write the parity report here as JSON"),
    min_oks: float = typer.Option(None, "--min-oks", help="parity bar (default 0.98 float, 0.90 int8)"),
    max_px_err: float = typer.Option(None, "--max-px-err", help="mean keypoint error bar, model-input pixels"),
    io_type: str = typer.Option("float", "--io-type", help="tflite-int8 input/output: float, int8 or uint8"),
    mixed_precision: bool = typer.Option(
        True,
        "--mixed-precision/--no-mixed-precision",
        help="when int8 misses the bar, keep the most sensitive layers in float",
    ),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
) -> None:
    """Convert a pose model for the edge, then prove on real images how close it stays to its source."""
    from rich.console import Console

    try:
        from edgepose.converters.convert import ConvertOptions
        from edgepose.converters.convert import convert as run_conversion
    except ImportError as e:
        raise fail(
            f"edgepose convert needs the workstation extra ({e.name} missing): pip install 'edgepose[convert]'"
        ) from None
    from edgepose.bindings.native_stderr import quiet_native_stderr

    # TensorFlow and the converters it drives write pages of native logs to fd 2, silenced; progress and
    # the report go to stdout, so stderr carries only the one-line error when there is one.
    console = Console(file=os.fdopen(os.dup(1), "w", buffering=1), highlight=False)
    opts = ConvertOptions(
        source=source,
        to=to,
        output=output,
        calib=calib,
        family=family,
        variant=variant,
        report=report,
        min_oks=min_oks,
        max_px_err=max_px_err,
        io_type=io_type,
        mixed_precision=mixed_precision,
        progress=lambda m: console.print(f"[dim]edgepose convert:[/dim] {m}"),
    )
    with quiet_native_stderr():
        result = run_conversion(opts)
    _print_report(result.report, console)
    if not result.report.passed:
        raise fail(
            f"parity below the bar (mean OKS {result.report.mean_oks:.3f} < {result.report.min_oks}"
            + (f" or mean error > {result.report.max_mean_px_err} px" if result.report.max_mean_px_err else "")
            + f", presence flips {result.report.presence_flips}); {result.output} kept for inspection",
            code=1,
        )


def _print_report(r, console: Console) -> None:
    from rich.table import Table

    if r.keypoints_compared == 0 and "parity" in r.extra:  # structural parity only (PoseNet's decoder cut)
        console.print(
            f"parity: {r.extra['parity']}; {r.inputs} runtime inputs run; "
            f"{r.source_size_bytes / 1e6:.2f} MB -> {r.size_bytes / 1e6:.2f} MB",
            markup=False,
        )
        return
    table = Table(title=f"parity: {Path(r.output).name} ({r.format}) vs source", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("images / model inputs", f"{r.images} / {r.inputs}"),
        ("keypoints compared", str(r.keypoints_compared)),
        ("mean / max error (model-input px)", f"{r.mean_px_err:.3f} / {r.max_px_err:.3f}"),
        ("mean OKS vs source", f"{r.mean_oks:.4f} (bar {r.min_oks})"),
        ("keypoint score MAE", f"{r.score_mae:.4f}"),
        ("presence flips", str(r.presence_flips)),
        ("size source / output", f"{r.source_size_bytes / 1e6:.2f} MB / {r.size_bytes / 1e6:.2f} MB"),
        ("invoke source / output (median)", f"{r.invoke_ms['source']:.2f} ms / {r.invoke_ms['output']:.2f} ms"),
    ]
    if "plain_int8" in r.extra and r.extra.get("float_layers"):
        p = r.extra["plain_int8"]
        rows.append(
            (
                "plain int8 (before the search)",
                f"OKS {p['mean_oks']:.3f}, {p['mean_px_err']:.2f} px mean, {p['presence_flips']} flips",
            )
        )
        rows.append(("layers kept float", f"{len(r.extra['float_layers'])} (names in the --report JSON)"))
    if "vs_source_file" in r.extra:
        v = r.extra["vs_source_file"]
        rows.append(("vs the quantized source file", f"OKS {v['mean_oks']:.3f}, {v['mean_px_err']:.2f} px mean"))
    rows.append(("passed", "yes" if r.passed else "NO"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if r.extra.get("most_sensitive"):
        console.print(f"most sensitive layers: {', '.join(r.extra['most_sensitive'][:5])}", markup=False)
    if r.extra.get("fallback"):
        console.print(f"fallback: {r.extra['fallback']}", markup=False)
