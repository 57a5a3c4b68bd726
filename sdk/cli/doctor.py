"""`edgepose doctor`: what this machine has for edgepose, and whether the default model runs."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from edgepose.cli.common import fail, write_json
from edgepose.errors import EdgeposeError
from edgepose.io.atomic import check_output_path


def doctor_command(
    json_out: str | None = typer.Option(None, "--json", help="Write the report as JSON here ('-': stdout)."),
) -> None:
    """Can this machine run edgepose? Board, CPU, runtimes, Coral, cameras, models; exit 1 if not."""
    if json_out not in (None, "-"):
        try:
            check_output_path(Path(json_out))
        except EdgeposeError as e:
            raise fail(str(e)) from None
    from edgepose.doctor import doctor_report

    report = doctor_report()
    if not write_json(report, json_out):
        _print(report)
    if not report["ok"]:
        raise typer.Exit(1)


def _print(r: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def state(ok: bool | None) -> str:
        return "[green]ok[/]" if ok else "[yellow]-[/]" if ok is None else "[red]no[/]"

    table = Table(title=f"edgepose {escape(r['edgepose'])} doctor", show_lines=False)
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("details")
    cpu = r["cpu"]
    table.add_row("python", state(True), escape(f"{r['python']} ({r['executable']})"))
    table.add_row("system", state(True), escape(f"{r['os']}, {r['machine']}"))
    table.add_row("board", state(None if r["board"] is None else True), escape(r["board"] or "not a device-tree board"))
    cpu_text = f"{cpu['model']}, {cpu['cores']} cores, governor {cpu['governor'] or 'unknown'}"
    if cpu["temperature_c"] is not None:
        cpu_text += f", {cpu['temperature_c']} °C"
    if cpu["throttled"] is not None:
        cpu_text += f", throttled={cpu['throttled']}" + (" (throttling now)" if cpu["throttled_now"] else "")
    # A Pi on "ondemand"/"powersave" runs a model's first frames slowly: benches should say "performance".
    slow_governor = cpu["governor"] not in (None, "performance", "schedutil")
    table.add_row("cpu", state(None if slow_governor or cpu["throttled_now"] else True), escape(cpu_text))
    table.add_row("numpy", state(True), escape(r["numpy"]))
    for b in r["backends"]:
        # One usable TFLite runtime is enough: the others are optional, marked "-" rather than "no".
        text = f"{b['package']} {b['version']}" if b["usable"] else b["problem"]
        if b["name"] == "edgetpu":
            text = f"Coral USB {b['devices']['usb']}, PCIe {b['devices']['pcie']}" + (
                f": {b['problem']}" if b["problem"] else ", libedgetpu found"
            )
        table.add_row(f"backend {b['name']}", state(b["usable"] or None), escape(text))
    for name in ("opencv", "picamera2"):
        item = r[name]
        text = item["version"] or "" if item["usable"] else item["problem"]
        if name == "picamera2" and item["usable"]:
            text += f"; cameras: {', '.join(item['cameras']) or 'none found'}"
        table.add_row(name, state(item["usable"] or None), escape(text or ""))
    table.add_row("video devices", state(None), escape(", ".join(r["video_devices"]) or "none"))
    for d in r["models"]["dirs"]:
        table.add_row(f"models ({d['label']})", state(None), escape(d["path"]))
    for m in r["models"]["present"]:
        table.add_row(f"model {m['name']}", state(m["sha256_ok"]), escape(m["path"] or m["problem"]))
    d = r["default_model"]
    text = f"{d['backend']}, {d['invoke_ms']} ms an invoke" if d["ok"] else d["problem"]
    table.add_row(f"runs {d['model']}", state(d["ok"]), escape(text))
    out = Console(width=None if sys.stdout.isatty() else 160)
    out.print(table)
    out.print(("[green]" if r["ok"] else "[red]") + escape(r["verdict"]) + "[/]")
