"""`edgepose bench compare | export | import`: reading and merging the results database.

Plain functions with typer defaults; cli/bench.py registers them under the `bench` group.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgepose.cli.common import fail, stderr
from edgepose.errors import EdgeposeError

if TYPE_CHECKING:
    from rich.table import Table

    from edgepose.bench.db import ResultsDB

_DB_HELP = "Results database (default: $EDGEPOSE_BENCH_DB, else bench.sqlite in the user data dir)."
_MODEL_HELP = "Only this model: a registry name, or part of one (repeatable)."
_DEVICE_HELP = "Only this device: its --label, or a prefix of its device_id (repeatable)."
_ALL_HELP = "Every stored result (history), not only the newest per device and configuration."


def compare_command(
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    model: list[str] | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    device: list[str] | None = typer.Option(None, "--device", "-d", help=_DEVICE_HELP),
    all_: bool = typer.Option(False, "--all", help=_ALL_HELP),
    plot: Path | None = typer.Option(None, "--plot", metavar="OUT.png", help="Also draw the latencies as a PNG."),
) -> None:
    """Compare stored results across devices, models, precisions and threads."""
    from rich.console import Console

    _refuse_directories(plot)
    with _open_existing(db) as rdb:
        rows = _matching(rdb, model, device, all_)
    # Piped or redirected: the whole table at its natural width (not expanded), never cut to a terminal's.
    out = Console(width=None if sys.stdout.isatty() else 1000)
    out.print(results_table(rows, history=all_))
    if plot is not None:
        from edgepose.bench.chart import plot_latency

        try:
            plot_latency(rows, plot)
        except EdgeposeError as e:
            raise fail(str(e)) from None
        stderr.print(f"edgepose: wrote {plot}", markup=False, soft_wrap=True)


def export_command(
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
    csv: Path | None = typer.Option(None, "--csv", help="Write one CSV row per result here."),
    json_: Path | None = typer.Option(None, "--json", help="Write the full run documents (re-importable) here."),
    model: list[str] | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    device: list[str] | None = typer.Option(None, "--device", "-d", help=_DEVICE_HELP),
    all_: bool = typer.Option(False, "--all", help=_ALL_HELP),
) -> None:
    """Export stored results as CSV (one row per result) and/or JSON (the whole runs that hold them)."""
    if csv is None and json_ is None:
        raise fail("give --csv FILE and/or --json FILE")
    _refuse_directories(csv, json_)
    with _open_existing(db) as rdb:
        rows = _matching(rdb, model, device, all_)
        try:
            if csv is not None:
                from edgepose.bench.db import export_csv

                typer.echo(f"wrote {export_csv(csv, rows)} results to {csv}")
            if json_ is not None:
                # Whole documents, never trimmed to the matching results: a run_id always means the same
                # run, so importing the full run later is not mistaken for a duplicate of a partial one.
                typer.echo(f"wrote {rdb.export_json(json_, {r['run_id'] for r in rows})} runs to {json_}")
        except EdgeposeError as e:
            raise fail(str(e)) from None


def import_command(
    sources: list[Path] = typer.Argument(..., help="Results databases (.sqlite) or JSON run documents to merge."),
    db: Path | None = typer.Option(None, "--db", help=_DB_HELP),
) -> None:
    """Merge other results databases (e.g. copied from a Raspberry Pi) or JSON exports, by run_id."""
    from edgepose.bench.db import ResultsDB

    try:
        with ResultsDB(_db_path(db)) as rdb:
            for source in sources:
                if not source.is_file():
                    raise EdgeposeError(f"{source}: no such file")
                imported, present = rdb.import_db(source) if _is_sqlite(source) else rdb.import_json(source)
                typer.echo(f"imported {imported} runs ({present} already present) from {source}")
    except (EdgeposeError, OSError) as e:
        raise fail(_message(e)) from None


def _refuse_directories(*outputs: Path | None) -> None:
    """Before any work: an output path that is a directory (the writers check again, and name the path)."""
    for out in outputs:
        if out is not None and out.is_dir():
            raise fail(f"{out}: is a directory; give a file name")


def _db_path(db: Path | None) -> Path:
    # The results database (sqlite3) is loaded by the commands that open one, not at start-up.
    from edgepose.bench.db import default_db_path

    return db if db is not None else default_db_path()


@contextlib.contextmanager
def _open_existing(db: Path | None) -> Iterator[ResultsDB]:
    """The database to read; a missing one is an error, never created empty just to be read."""
    from edgepose.bench.db import ResultsDB

    try:
        rdb = ResultsDB(_db_path(db), create=False)
    except EdgeposeError as e:
        raise fail(str(e)) from None
    with rdb:
        yield rdb


def _matching(rdb: ResultsDB, model: list[str] | None, device: list[str] | None, all_: bool) -> list[dict]:
    """The rows to show; exit 2 when the database is unusable, 1 when nothing matches."""
    try:
        rows = rdb.query(models=model, devices=device, latest_only=not all_)
        empty = not rows and not rdb.runs()
    except EdgeposeError as e:
        raise fail(str(e)) from None
    if empty:
        raise fail(f"{rdb.path}: no results stored yet", 1)
    if not rows:
        raise fail(f"no stored results match {_filters(model, device)}", 1)
    return rows


def _filters(model: list[str] | None, device: list[str] | None) -> str:
    terms = [f"--model {m}" for m in model or []] + [f"--device {d}" for d in device or []]
    return " ".join(terms)


def _message(e: Exception) -> str:
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}"
    return str(e)


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def results_table(rows: list[dict], history: bool, title: str | None = None) -> Table:
    from rich.table import Table
    from rich.text import Text

    if title is None:
        title = f"edgepose bench: {len(rows)} results" + (" (history)" if history else " (newest per configuration)")
    table = Table(title=title, caption="ms per frame; invoke = the model alone, pipeline = decode to poses")
    for name in ("device", "hardware", "model", "precision", "backend", "threads", "input"):
        table.add_column(name, no_wrap=True)
    # model RSS: what loading this configuration added. Not peak RSS: a run loads all its configurations
    # together, so its peak is the whole run's and depends on which other models it loaded.
    for name in ("invoke p50", "p50", "p90", "p99", "fps", "cpu", "model RSS MB"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("throttled", no_wrap=True)
    table.add_column("date (UTC)", no_wrap=True)
    for i, r in enumerate(rows):
        # A rule between configurations, so one model's rows on the different devices read as one block.
        last_of_group = i + 1 == len(rows) or _group(rows[i + 1]) != _group(r)
        # Text cells, never markup: labels, model names and anything else from the DB are shown as they are
        # (a label "lab[/bold]" would be a markup error; markup.escape would still double a trailing "\\").
        names = (r["label"], _hardware(r), r["model"], r["precision"], _backend(r), str(r["threads"]), _input(r))
        numbers = (
            _ms(r["invoke_p50_ms"]),
            _ms(r["pipeline_p50_ms"]),
            _ms(r["pipeline_p90_ms"]),
            _ms(r["pipeline_p99_ms"]),
            _num(r["fps"], "{:.1f}"),
            _num(r["cpu_util"], "{:.2f}"),
            _num(r["model_rss_mb"], "{:.0f}"),
        )
        throttled = Text("THROTTLED", style="bold red") if r["throttled"] else Text("no")
        date = (r["created_utc"] or "")[:16].replace("T", " ")
        table.add_row(*map(Text, names), *map(Text, numbers), throttled, Text(date), end_section=last_of_group)
    return table


def _input(row: dict) -> str:
    """'video 960x540', 'image 640x425 stills', 'generated 640x480'."""
    text = f"{row['input_kind']} {row['input_width']}x{row['input_height']}"
    return text + (" stills" if row["stills"] else "")


def _backend(row: dict) -> str:
    delegate = f"+{row['delegate']}" if row["delegate"] else ""
    return row["backend"] + delegate + (" multi" if row["mode"] == "multi" else "")


def _group(row: dict) -> tuple:
    return row["model"], row["precision"]


def _hardware(row: dict) -> str:
    """The board ('Raspberry Pi 5 Model B'), else the CPU without its trademarks and clock, else the arch."""
    text = row.get("board") or row.get("cpu") or row.get("machine") or "?"
    text = re.sub(r"\s+Rev\s+\S+$", "", text)
    text = re.sub(r"\((R|TM)\)|\bCPU\b|@.*$", "", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    return text if len(text) <= 28 else text[:27] + "…"


def _ms(value: float | None) -> str:
    return _num(value, "{:.1f}")


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)
