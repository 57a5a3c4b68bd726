"""`edgepose bench`: time models on this device; `compare`, `export`, `import` work on the results DB."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgepose.assets.registry import DEFAULT_MODEL
from edgepose.bench.schema import STAGES
from edgepose.bindings import BACKENDS
from edgepose.cli.bench_results import compare_command, export_command, import_command
from edgepose.cli.common import fail, stderr
from edgepose.errors import EdgeposeError
from edgepose.io.atomic import atomic_output, check_output_path

if TYPE_CHECKING:
    from rich.console import Console

    from edgepose.bench.runner import BenchRun
    from edgepose.fitness import Exercise

bench_app = typer.Typer(
    help="Latency per device: the raw invoke and the whole pipeline per stage; a results DB to compare devices.",
    invoke_without_command=True,
)

bench_app.command("compare")(compare_command)
bench_app.command("export")(export_command)
bench_app.command("import")(import_command)


def _split(values: list[str] | None) -> list[str]:
    """`--threads 1,2,4` and `--threads 1 --threads 2` both work."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _threads(values: list[str] | None) -> list[int | None]:
    out: list[int | None] = []
    for v in _split(values):
        if not v.isdigit() or int(v) < 1:
            raise fail(f"--threads takes positive integers (e.g. 1,2,4), got {v!r}")
        out.append(int(v))
    return out or [None]


@bench_app.callback()
def bench(
    ctx: typer.Context,
    model: list[str] = typer.Option(None, "--model", "-m", help=f"Name or file; repeat. (default: {DEFAULT_MODEL})"),
    backend: list[str] = typer.Option(None, "--backend", help=f"{' | '.join(BACKENDS)}; repeat or comma list."),
    threads: list[str] = typer.Option(None, "--threads", help="Thread counts to sweep, e.g. 1,2,4."),
    runs: int = typer.Option(None, "--runs", help="Timed frames per config (default: 100)."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed frames first (at least 1)."),
    duration: float = typer.Option(None, "--duration", help="Seconds of whole frames per config (invokes: as long)."),
    mode: str = typer.Option("single", "--mode", help="single | multi"),
    input_: Path = typer.Option(None, "--input", help="Photo or video to time on (default: a generated frame)."),
    stills: bool = typer.Option(False, "--stills", help="Time each frame as a still photo, not as a stream."),
    label: str = typer.Option(None, "--label", help="Device name in the results (default: the hostname)."),
    exercise: str = typer.Option(
        None, "--exercise", "-e", help="Also count this exercise's reps per frame, timed as a 'fitness' stage."
    ),
    exercises_file: Path = typer.Option(None, "--exercises-file", help="Your own exercises (JSON or TOML)."),
    json_out: Path = typer.Option(None, "--json", help="Write the full result here (- for stdout)."),
    db: Path = typer.Option(None, "--db", help="Results DB (default: user data dir or $EDGEPOSE_BENCH_DB)."),
    no_db: bool = typer.Option(False, "--no-db", help="Do not store the result in a database."),
    host: list[str] = typer.Option(
        None,
        "--host",
        help="Bench on this board over SSH instead: user@host or user@host:port; repeat for several, all at once.",
    ),
    identity: Path = typer.Option(None, "--identity", "-i", help="--host: the private key to log in with."),
    remote_cmd: str = typer.Option(
        None, "--remote-cmd", help="--host: the command line (run by sh) of edgepose on the boards (default: edgepose)."
    ),
    remote_dir: str = typer.Option(
        None, "--remote-dir", help="--host: where copied files go on a board (default: ~/.cache/edgepose/fleet)."
    ),
    known_hosts: Path = typer.Option(
        None, "--known-hosts", help="--host: the known_hosts file host keys are checked in (default: ~/.ssh's)."
    ),
    accept_new_host_key: bool = typer.Option(
        False, "--accept-new-host-key", help="--host: trust a board not yet in known_hosts (and record its key)."
    ),
    ssh_timeout: float = typer.Option(
        None, "--ssh-timeout", min=1.0, help="--host: seconds to connect to a board (default: 15)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    """Time models on this device: raw invoke and the whole pipeline per stage, with the device's state."""
    from rich.console import Console

    if ctx.invoked_subcommand is not None:
        return
    backends = _split(backend) or ["auto"]
    for b in backends:
        if b not in BACKENDS:
            raise fail(f"unknown --backend {b!r}; choose one of {', '.join(BACKENDS)}")
    if host and label is not None:
        raise fail("--label names this machine; with --host each board is labelled by its own hostname")
    ssh_only = {
        "--identity": identity is not None,
        "--remote-cmd": remote_cmd is not None,
        "--remote-dir": remote_dir is not None,
        "--known-hosts": known_hosts is not None,
        "--accept-new-host-key": accept_new_host_key,
        "--ssh-timeout": ssh_timeout is not None,
    }
    given = [name for name, on in ssh_only.items() if on]
    if given and not host:
        raise fail(f"{', '.join(given)}: only with --host (a bench on boards over SSH)")
    extra = _user_exercises(exercise, exercises_file)
    # Imported here, not at start-up: the runner loads the estimator and its pipelines.
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from edgepose.bench.runner import BenchOptions, check_options, run_bench

    opts = BenchOptions(
        models=model or [DEFAULT_MODEL],
        backends=backends,
        threads=_threads(threads),
        runs=runs if runs is not None or duration is not None else 100,
        warmup=warmup,
        duration_s=duration,
        mode=mode,
        input=input_,
        stills=stills,
        label=label,
        exercise=exercise,
        extra_exercises=extra,
    )
    try:
        check_options(opts)  # refused before anything is loaded or created, or any board contacted
    except EdgeposeError as e:
        raise fail(str(e)) from None
    db_path = _check_outputs(json_out, db, store=not no_db)
    if host:
        from edgepose.cli.bench_fleet import bench_fleet

        fleet = dict(
            identity=identity,
            remote_cmd=remote_cmd,
            remote_dir=remote_dir,
            known_hosts=known_hosts,
            accept_new_host_key=accept_new_host_key,
            connect_timeout_s=ssh_timeout,
        )
        fleet = {k: v for k, v in fleet.items() if v is not None}
        bench_fleet(opts, host, fleet, exercises_file, json_out, db_path, debug)
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=stderr.console,
        transient=True,
        disable=not stderr.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("loading", total=1.0)
            result = run_bench(
                opts,
                progress=lambda f: progress.update(task, completed=f, description="timing"),
                on_config=lambda name: progress.update(task, description=f"loading {name}"),
            )
    except EdgeposeError as e:
        if debug:
            raise
        raise fail(str(e)) from None
    for note in result.notes:
        stderr.print(f"edgepose: note: {note}", markup=False, soft_wrap=True)
    for f in result.failures:
        stderr.print(f"edgepose: error: {f.config}: {f.message}", markup=False, soft_wrap=True)
    for r in result.document["results"]:
        for w in r["warnings"]:
            stderr.print(f"edgepose: warning: {r['model']} ({r['threads']} threads): {w}", markup=False, soft_wrap=True)
    if not result.document["results"]:
        raise typer.Exit(2)
    _save(result, json_out, db_path)
    # With --json - the JSON owns stdout; the tables go to stderr.
    to_stderr = json_out == Path("-")
    console = Console(stderr=to_stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=to_stderr, highlight=False, width=150)  # a log file gets whole columns
    _print_tables(result, console)
    if result.failures:
        raise typer.Exit(1)


def _user_exercises(exercise: str | None, exercises_file: Path | None) -> dict[str, Exercise] | None:
    """The exercises of --exercises-file, read before anything is loaded or created."""
    if exercises_file is None:
        return None
    if exercise is None:
        raise fail("--exercises-file needs --exercise NAME")
    # Imported only with --exercises-file: the fitness layer is no part of the CLI's start-up.
    from edgepose.fitness import load_exercises

    try:
        return load_exercises(exercises_file)
    except EdgeposeError as e:
        raise fail(str(e)) from None


def _check_outputs(json_out: Path | None, db: Path | None, store: bool) -> Path | None:
    """Refuse unusable output paths before the timing, not after a long sweep; the DB is opened (and
    created) now. Returns the DB path, or None with --no-db."""
    if json_out is not None and json_out != Path("-"):
        try:
            check_output_path(json_out)
        except EdgeposeError as e:
            raise fail(f"--json {e}") from None
    if not store:
        return None
    from edgepose.bench.db import ResultsDB, default_db_path

    path = db or default_db_path()
    try:
        with ResultsDB(path):
            pass
    except OSError as e:
        raise fail(f"--db {path}: {e.strerror or e}") from None
    return path


def _save(result: BenchRun, json_out: Path | None, db_path: Path | None) -> None:
    text = json.dumps(result.document, indent=2)
    if json_out == Path("-"):
        sys.stdout.write(text + "\n")
    elif json_out is not None:
        try:
            with atomic_output(json_out) as tmp:
                tmp.write_text(text + "\n", encoding="utf-8")
        except EdgeposeError as e:  # the run is still stored in the DB below
            stderr.print(f"edgepose: error: --json {e}", markup=False, soft_wrap=True)
    if db_path is None:
        return
    from edgepose.bench.db import ResultsDB

    with ResultsDB(db_path) as results:
        results.append(result.document)
    stderr.print(f"edgepose: stored run {result.document['run_id'][:8]} in {db_path}", markup=False, soft_wrap=True)


def _ms(stats: dict, key: str = "p50") -> str:
    return f"{stats[key]:.2f}"


def _print_tables(result: BenchRun, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    doc = result.document
    dev, inp, results = doc["device"], doc["input"], doc["results"]
    where = dev["board"] or f"{dev['cpu']} x{dev['cores']}"
    how = "stills" if doc["settings"]["stills"] else "stream"
    if doc["settings"].get("exercise"):
        how += f" counting {doc['settings']['exercise']} reps"
    table = Table(
        title=escape(
            f"edgepose bench on {doc['label']} ({where}); {inp['kind']} {inp['width']}x"
            f"{inp['height']} as a {how}; ms per frame"
        ),
        caption=f"process peak RSS over the run: {results[0]['peak_rss_mb']:.0f} MB "
        "(all configurations loaded together)",
    )
    for col in (
        "model",
        "prec.",
        "backend",
        "thr",
        "MB",
        "invoke p50",
        "pipeline p50",
        "p90",
        "p99",
        "fps",
        "stream fps",
        "latency",
        "cpu",
        "model RSS",
        "speedup",
    ):
        table.add_column(col, justify="left" if col in ("model", "prec.", "backend") else "right")
    # Speedup of each thread count over the fewest threads timed for the same model and backend.
    base: dict[tuple, float] = {}
    for r in sorted(results, key=lambda r: r["threads"]):
        base.setdefault((r["model"], r["backend"]), r["pipeline_ms"]["p50"])
    for r in results:
        backend = r["backend"] + (f"+{r['delegate']}" if r["delegate"] and r["delegate"] not in r["backend"] else "")
        marks = (" [red]THROTTLED[/red]" if r["thermal"]["throttled"] else "") + (
            " [yellow]![/yellow]" if r["warnings"] else ""
        )
        p50 = r["pipeline_ms"]["p50"]
        table.add_row(
            escape(r["model"]),
            r["precision"],
            backend,
            str(r["threads"]),
            f"{r['model_size_bytes'] / 1e6:.1f}",
            _ms(r["invoke_ms"]) + marks,
            _ms(r["pipeline_ms"]),
            _ms(r["pipeline_ms"], "p90"),
            _ms(r["pipeline_ms"], "p99"),
            f"{r['fps']:.1f}",
            f"{r['throughput_fps']:.1f}" if "throughput_fps" in r else "-",
            _ms(r["latency_ms"]) if "latency_ms" in r else "-",
            f"{r['cpu_util']:.2f}",
            f"{r['model_rss_mb']:.0f}",
            f"{base[(r['model'], r['backend'])] / p50:.2f}x" if p50 > 0 else "-",
        )
    console.print(table)
    stages = Table(title="per stage, p50 ms")
    stages.add_column("model")
    stages.add_column("thr", justify="right")
    for stage in STAGES:
        stages.add_column(stage, justify="right")
    # The rep counter takes hundredths of a millisecond: three decimals, or it would read 0.00.
    fitness = any(r.get("fitness_ms") for r in results)
    if fitness:
        stages.add_column("fitness", justify="right")
    for r in results:
        cells = [_ms(r["stages_ms"][s]) for s in STAGES]
        if fitness:
            cells.append(f"{r['fitness_ms']['p50']:.3f}" if r.get("fitness_ms") else "-")
        stages.add_row(escape(r["model"]), str(r["threads"]), *cells)
    console.print(stages)
    temps = [r["thermal"] for r in results if r["thermal"]["before_c"] is not None]
    if temps:
        console.print(
            f"SoC temperature {min(t['before_c'] for t in temps):.1f} C before, up to "
            f"{max(t['max_c'] for t in temps):.1f} C during the run",
            highlight=False,
        )
