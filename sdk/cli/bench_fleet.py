"""`edgepose bench --host ...`: the bench on boards over SSH, each board's run stored here, one table."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from edgepose.cli.common import fail, stderr
from edgepose.errors import EdgeposeError
from edgepose.io.atomic import atomic_output

if TYPE_CHECKING:
    from edgepose.bench.fleet import HostOutcome
    from edgepose.bench.runner import BenchOptions


def bench_fleet(
    opts: BenchOptions,
    hosts: list[str],
    fleet_settings: dict[str, Any],
    exercises_file: Path | None,
    json_out: Path | None,
    db_path: Path | None,
    debug: bool,
) -> None:
    """Bench every host at once; exit 1 when any board failed (the others are stored all the same)."""
    from edgepose.bench.db import ResultsDB
    from edgepose.bench.fleet import FleetOptions, parse_host, run_fleet

    try:
        fleet = FleetOptions(hosts=[parse_host(h) for h in hosts], **fleet_settings)
    except EdgeposeError as e:
        raise fail(str(e)) from None
    if len({h.spec for h in fleet.hosts}) != len(fleet.hosts):
        raise fail("--host: a board is named twice")
    documents: list[dict] = []
    failed: list[str] = []
    said: set[str] = set()
    devices: dict[str, str] = {}  # host -> device_id of the boards done
    progress = _progress(len(fleet.hosts))

    def on_done(outcome: HostOutcome) -> None:
        name = outcome.host.spec
        for line in outcome.remote_lines:
            level, _, rest = line.removeprefix("edgepose: ").partition(": ")
            if level == "note":  # the same note from every board (no --input, say) is said once
                if rest not in said:
                    said.add(rest)
                    _say(f"edgepose: note: {rest}")
            elif level in ("error", "warning") and not (outcome.error and rest in outcome.error):
                _say(f"edgepose: {level}: {name}: {rest}")
        if outcome.error is None and outcome.document is not None:
            _store(outcome)
        else:
            failed.append(name)
            _say(f"edgepose: error: {name}: {outcome.error}")
        if outcome.exit_status and name not in failed:  # some configurations failed there (said above)
            failed.append(name)
        if progress is not None:
            progress.advance(progress.task_ids[0])

    def _store(outcome: HostOutcome) -> None:
        name, doc = outcome.host.spec, outcome.document
        copied = f"; copied {', '.join(outcome.copied)}" if outcome.copied else ""
        where = doc["device"].get("board") or doc["device"].get("cpu") or "?"
        same = [other for other, device in devices.items() if device == doc["device"]["device_id"]]
        if same:
            _say(
                f"edgepose: warning: {name} and {same[0]} are the same device ({doc['device']['device_id']}): "
                "their runs overlapped and slowed each other"
            )
        devices[name] = doc["device"]["device_id"]
        if db_path is None:
            documents.append(doc)
            _say(f"edgepose: {name}: run {doc['run_id'][:8]} ({doc['label']}, {where}){copied}")
            return
        try:
            with ResultsDB(db_path) as results:
                new = results.append(doc)
        except EdgeposeError as e:
            failed.append(name)
            _say(f"edgepose: error: {name}: not stored: {e}")
            return
        documents.append(doc)
        verb = "stored run" if new else "run already stored:"
        _say(f"edgepose: {name}: {verb} {doc['run_id'][:8]} ({doc['label']}, {where}) in {db_path}{copied}")

    try:
        if progress is not None:
            progress.start()
        run_fleet(opts, fleet, exercises_file, on_done, debug)
    except EdgeposeError as e:
        if debug:
            raise
        raise fail(str(e)) from None
    except KeyboardInterrupt:
        # asyncio.run has cancelled every board's task, closing its connection: the remote runs are stopped.
        _stop(progress)
        stderr.print(
            f"edgepose: interrupted: remote runs stopped; {len(documents)} of {len(fleet.hosts)} board(s) finished",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    finally:
        _stop(progress)
    if documents:
        _write_json(documents, json_out)
        _print_table(documents, db_path, to_stderr=json_out == Path("-"))
    if failed:
        raise typer.Exit(1)


def _say(line: str) -> None:
    stderr.print(line, markup=False, soft_wrap=True)


def _progress(n: int):
    if not stderr.is_terminal:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("boards"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr.console
    )
    progress.add_task("boards", total=n)
    return progress


def _stop(progress) -> None:
    if progress is not None:
        progress.stop()


def _write_json(documents: list[dict], json_out: Path | None) -> None:
    """A list of run documents: what `bench export --json` writes and `bench import` reads."""
    if json_out is None:
        return
    text = json.dumps(documents, indent=2) + "\n"
    if json_out == Path("-"):
        sys.stdout.write(text)
        return
    try:
        with atomic_output(json_out) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except EdgeposeError as e:  # the runs are stored in the DB all the same
        _say(f"edgepose: error: --json {e}")


def _print_table(documents: list[dict], db_path: Path | None, to_stderr: bool) -> None:
    """The boards side by side, as `bench compare` shows them (from a scratch DB with --no-db)."""
    from rich.console import Console

    from edgepose.bench.db import ResultsDB
    from edgepose.cli.bench_results import results_table

    run_ids = [d["run_id"] for d in documents]
    with tempfile.TemporaryDirectory() as scratch:
        path = db_path if db_path is not None else Path(scratch) / "fleet.sqlite"
        with ResultsDB(path) as results:
            if db_path is None:
                results.import_runs(documents)
            rows = results.query(run_ids=run_ids, latest_only=False)
    console = Console(stderr=to_stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=to_stderr, highlight=False, width=1000)
    title = f"edgepose bench on {len(documents)} board(s): {len(rows)} result(s)"
    console.print(results_table(rows, history=False, title=title))
