"""The results database of `edgepose bench`: atomic appends (even under SIGKILL), merge by run_id,
export/import round trips, latest-per-configuration queries, the chart, and clean failures on bad files.

Everything runs on sample documents (tests/bench_samples.py): no models, no timings, no network.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from edgepose.bench import db as bench_db
from edgepose.bench.chart import bar_label, plot_latency
from edgepose.bench.db import CONFIG_KEY, CSV_COLUMNS, SCHEMA_VERSION, ResultsDB, default_db_path, export_csv
from edgepose.bench.schema import RUN_SCHEMA
from edgepose.cli.bench_results import compare_command, export_command, import_command
from edgepose.errors import EdgeposeError
from tests.bench_samples import sample_run

REPO = Path(__file__).resolve().parents[1]
MODELS = ("movenet-lightning-int8", "movenet-lightning-int8-edgetpu", "blazepose-full")


def _app() -> typer.Typer:
    """The three commands as cli/bench.py registers them: `bench compare | export | import`."""
    app = typer.Typer()
    bench = typer.Typer()
    app.add_typer(bench, name="bench")
    bench.command("compare")(compare_command)
    bench.command("export")(export_command)
    bench.command("import")(import_command)
    return app


def bench(*args: str | Path):
    return CliRunner().invoke(_app(), ["bench", *map(str, args)])


def assert_one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepose: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def make_db(path: Path, *runs: dict) -> Path:
    with ResultsDB(path) as db:
        for run in runs:
            assert db.append(run)
    return path


# -- sample documents and appends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"label": "pi4", "throttled": True},
        {"models": MODELS, "mode": "multi"},
        {"input_kind": "video", "size": (960, 540)},
        {"input_kind": "image", "size": (640, 425), "stills": True},
    ],
)
def test_sample_runs_are_schema_valid(kwargs: dict) -> None:
    run = sample_run(**kwargs)
    jsonschema.validate(run, RUN_SCHEMA)
    assert sample_run(**kwargs) == run  # seeded: the same arguments give the same document
    for r in run["results"]:
        thermal = r["thermal"]
        assert thermal["max_c"] >= max(thermal["before_c"], thermal["after_c"])
        assert (r["detector"] is not None) == (r["family"] == "blazepose")


def test_append_is_idempotent_and_lossless(tmp_path: Path) -> None:
    run = sample_run(models=MODELS)
    with ResultsDB(tmp_path / "bench.sqlite") as db:
        assert db.append(run) is True
        assert db.append(run) is False
        assert db.documents() == [run]
        [summary] = db.runs()
        assert summary["n_results"] == len(run["results"]) == len(db.query(latest_only=False))


def test_append_refuses_bad_documents_and_writes_nothing(tmp_path: Path) -> None:
    good = sample_run()
    broken = sample_run(seed=1)
    del broken["results"][1]["pipeline_ms"]
    with ResultsDB(tmp_path / "bench.sqlite") as db:
        with pytest.raises(EdgeposeError, match="schema"):
            db.append({**good, "schema": "edgepose-bench/99"})
        with pytest.raises(EdgeposeError, match="run_id"):
            db.append({k: v for k, v in good.items() if k != "run_id"})
        with pytest.raises(EdgeposeError, match="malformed"):
            db.import_runs([good, broken])  # one batch: the good run is not written either
        assert db.runs() == []


def test_default_db_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEPOSE_BENCH_DB", str(tmp_path / "x.sqlite"))
    assert default_db_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("EDGEPOSE_BENCH_DB")
    assert default_db_path().name == "bench.sqlite"


# -- atomicity under SIGKILL ---------------------------------------------------------------------------

# Appends runs of 2100 results each (a transaction of a few hundred ms) until killed.
_WRITER = """
import sys, uuid
sys.path.insert(0, sys.argv[2])
from edgepose.bench.db import ResultsDB
from tests.bench_samples import sample_run
template = sample_run(models=tuple(f"model-{i:04d}" for i in range(700)), threads=(1, 2, 4))
with ResultsDB(sys.argv[1]) as db:
    while True:
        db.append({**template, "run_id": uuid.uuid4().hex})
"""
_RESULTS_PER_RUN = 2100
_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


def _committed_runs(path: Path) -> int:
    """Runs visible to a read-only reader; -1 while the file is missing, locked or awaiting rollback."""
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0.05)
        try:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return -1


def _journal_is_hot(journal: Path) -> bool:
    """SQLite writes the journal's magic only once the journal is synced, right before it modifies the
    database file; from then until the commit deletes the journal, a crash leaves a hot journal to roll back."""
    try:
        with journal.open("rb") as f:
            return f.read(8) == _JOURNAL_MAGIC
    except FileNotFoundError:
        return False


def _kill_mid_append(db: Path, deadline: float) -> bool:
    """Start a writer, wait for it to commit a run, SIGKILL it while a later append is modifying the file.

    True when the kill left a hot rollback journal, i.e. it landed mid-transaction with the file half-written.
    """
    journal = db.with_name(db.name + "-journal")
    before = max(_committed_runs(db), 0)
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db), str(REPO)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while _committed_runs(db) <= before:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer committed no run in time"
            time.sleep(0.002)
        while not _journal_is_hot(journal):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never started modifying the file"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    return _journal_is_hot(journal)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_append_leaves_whole_runs_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "bench.sqlite"
    deadline = time.monotonic() + 60
    mid_write = 0
    for _ in range(6):
        mid_write += _kill_mid_append(db, deadline)
        if mid_write >= 2:
            break
    assert mid_write >= 1, "no kill landed inside a transaction"
    committed = _committed_runs(db)

    with ResultsDB(db) as rdb:  # a writable open rolls the killed transaction back
        documents = rdb.documents()
        summaries = rdb.runs()
    assert not _journal_is_hot(db.with_name(db.name + "-journal"))
    assert len(documents) == len(summaries) >= max(committed, 1)
    assert all(len(d["results"]) == _RESULTS_PER_RUN for d in documents)
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        counts = con.execute(
            "SELECT u.n_results, (SELECT count(*) FROM results r WHERE r.run_id = u.run_id) FROM runs u"
        ).fetchall()
    finally:
        con.close()
    assert counts and all(n_results == n_rows == _RESULTS_PER_RUN for n_results, n_rows in counts)


# -- merge, export, import -----------------------------------------------------------------------------


def test_import_export_round_trip(tmp_path: Path) -> None:
    a = make_db(tmp_path / "a.sqlite", sample_run("pi5", models=MODELS, seed=1))
    pi4_runs = [sample_run("pi4", models=MODELS, seed=s, created_utc=f"2026-01-1{s}T08:00:00Z") for s in (2, 3)]
    b = make_db(tmp_path / "b.sqlite", *pi4_runs)

    with ResultsDB(a) as db:
        assert db.import_db(b) == (2, 0)
        assert db.import_db(b) == (0, 2)
        history = db.query(latest_only=False)
        latest = db.query()
        documents = {d["run_id"]: d for d in db.documents()}
    assert len(documents) == 3
    assert len(history) == 3 * len(MODELS) * 3
    assert len(latest) == 2 * len(MODELS) * 3  # the newer pi4 run hides the older one

    csv_path = tmp_path / "out" / "a.csv"
    assert export_csv(csv_path, history) == len(history)
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        table = list(reader)
    assert len(table) == len(history)
    for row in table:
        document = documents[row["run_id"]]
        [result] = [r for r in document["results"] if (r["model"], r["threads"]) == (row["model"], int(row["threads"]))]
        assert row["label"] == document["label"] and row["board"] == (document["device"]["board"] or "")
        assert float(row["pipeline_p50_ms"]) == result["pipeline_ms"]["p50"]
        assert float(row["invoke_p99_ms"]) == result["invoke_ms"]["p99"]
        assert float(row["inference_p50_ms"]) == result["stages_ms"]["inference"]["p50"]
        assert row["delegate"] == (result["delegate"] or "")

    json_path = tmp_path / "a.json"
    with ResultsDB(a) as db:
        assert db.export_json(json_path) == 3
    imported = bench("import", json_path, "--db", tmp_path / "c.sqlite")
    assert imported.exit_code == 0 and imported.stdout.startswith("imported 3 runs (0 already present)")
    with ResultsDB(tmp_path / "c.sqlite") as db:
        assert db.query(latest_only=False) == history
        assert db.query() == latest
        assert {d["run_id"]: d for d in db.documents()} == documents  # lossless

    result = bench("compare", "--db", a)
    assert result.exit_code == 0, result.output
    assert "pi4" in result.stdout and "pi5" in result.stdout and "Raspberry Pi 5" in result.stdout
    again = bench("import", b, "--db", a)
    assert again.exit_code == 0 and "imported 0 runs (2 already present)" in again.stdout


def test_cli_export_writes_csv_and_whole_runs(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", sample_run("pi5", models=MODELS), sample_run("pi4", models=MODELS))
    out_csv, out_json = tmp_path / "pi4.csv", tmp_path / "pi4.json"
    result = bench("export", "--db", db, "--csv", out_csv, "--json", out_json, "--device", "pi4", "-m", "blazepose")
    assert result.exit_code == 0, result.output
    with out_csv.open(newline="") as f:
        assert [(r["label"], r["model"]) for r in csv.DictReader(f)] == [("pi4", "blazepose-full")] * 3
    [document] = json.loads(out_json.read_text())
    assert document == sample_run("pi4", models=MODELS)  # the whole run, not trimmed to the filter
    assert_one_line_error(bench("export", "--db", db))


# -- queries -------------------------------------------------------------------------------------------


def test_latest_only_and_filters(tmp_path: Path) -> None:
    old = sample_run("pi5", models=MODELS, seed=1, created_utc="2026-01-15T11:00:00Z")
    new = sample_run("pi5", models=MODELS, seed=2, created_utc="2026-01-15T11:30:00Z")
    # 11:45 UTC, the newest, though the smallest as a string: "newest" must follow the time, not the spelling.
    newest = sample_run("pi5", models=MODELS[:1], seed=3, created_utc="2026-01-15T09:45:00-02:00")
    pi4 = sample_run("pi4", models=MODELS, seed=4)
    path = make_db(tmp_path / "a.sqlite", newest, old, new, pi4)

    with ResultsDB(path) as db:
        latest = db.query(devices=["pi5"])
        assert len(db.query(devices=["pi5"], latest_only=False)) == 3 * 3 + 3 * 3 + 3
        assert len(latest) == len(MODELS) * 3
        winner = {r["model"]: r["run_id"] for r in latest}
        assert winner == {MODELS[0]: newest["run_id"], MODELS[1]: new["run_id"], MODELS[2]: new["run_id"]}

        assert {r["model"] for r in db.query(models=["movenet-lightning-int8"])} == {"movenet-lightning-int8"}
        assert {r["model"] for r in db.query(models=["movenet"])} == set(MODELS[:2])
        assert {r["model"] for r in db.query(models=["EDGETPU", "blazepose-full"])} == set(MODELS[1:])
        assert db.query(models=["nosuch"]) == []
        assert {r["label"] for r in db.query(devices=[pi4["device"]["device_id"][:6]])} == {"pi4"}
        assert {r["label"] for r in db.query(devices=["PI4", "pi5"])} == {"pi4", "pi5"}
        assert db.query(devices=["pi3"]) == []
        # Same model on different devices lines up: each configuration's rows are adjacent.
        keys = [(r["model"], r["precision"], r["backend"], r["threads"]) for r in db.query()]
        assert keys == sorted(keys)

    result = bench("compare", "--db", path, "--model", "nosuch")
    assert "nosuch" in assert_one_line_error(result, code=1)
    history = bench("compare", "--db", path, "--all", "--device", "pi5")
    assert history.exit_code == 0 and "(history)" in history.stdout and "pi4" not in history.stdout


def test_compare_marks_throttled_runs(tmp_path: Path) -> None:
    path = make_db(tmp_path / "a.sqlite", sample_run("pi4", throttled=True), sample_run("pi5"))
    result = bench("compare", "--db", path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "movenet" in line]
    assert lines and all(("THROTTLED" in line) == ("pi4" in line) for line in lines)


# -- the chart -----------------------------------------------------------------------------------------


def test_chart_is_a_png(tmp_path: Path) -> None:
    runs = [sample_run(label, models=MODELS[:2], seed=i) for i, label in enumerate(("pi5", "pi4", "laptop"))]
    with ResultsDB(make_db(tmp_path / "a.sqlite", *runs)) as db:
        rows = db.query()
    assert len(rows) == 18
    out = tmp_path / "chart" / "latency.png"
    plot_latency(rows, out)
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        width, height = image.size
    assert 600 <= width <= 3000 and 400 <= height <= 3000
    assert [p.name for p in out.parent.iterdir()] == ["latency.png"]  # no temporary left behind

    result = bench("compare", "--db", tmp_path / "a.sqlite", "--plot", tmp_path / "cli.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli.png").read_bytes()[:4] == b"\x89PNG"


def test_chart_without_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with ResultsDB(make_db(tmp_path / "a.sqlite", sample_run())) as db:
        rows = db.query()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EdgeposeError, match=r"pip install 'edgepose\[plot\]'"):
        plot_latency(rows, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# -- bad files -----------------------------------------------------------------------------------------


def _text_file(path: Path) -> Path:
    path.write_text("run_id,label\n1,pi5\n")
    return path


def _truncated_db(path: Path) -> Path:
    make_db(path, *(sample_run("pi5", models=MODELS, seed=s) for s in range(4)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _tiny_truncated_db(path: Path) -> Path:
    make_db(path, sample_run())
    path.write_bytes(path.read_bytes()[:60])
    return path


def _foreign_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (text TEXT)")
    con.commit()
    con.close()
    return path


def _newer_db(path: Path) -> Path:
    make_db(path, sample_run())
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    return path


BAD_FILES = {
    "text": _text_file,
    "truncated": _truncated_db,
    "tiny": _tiny_truncated_db,
    "foreign": _foreign_db,
    "newer": _newer_db,
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_db_files_fail_with_one_line(kind: str, tmp_path: Path) -> None:
    bad = BAD_FILES[kind](tmp_path / "bad.sqlite")
    good = make_db(tmp_path / "good.sqlite", sample_run())
    for args in (
        ("compare", "--db", bad),
        ("export", "--db", bad, "--csv", tmp_path / "x.csv"),
        ("import", good, "--db", bad),  # as the target
        ("import", bad, "--db", good),  # as the source
    ):
        assert "bad.sqlite" in assert_one_line_error(bench(*args)), args
    assert not (tmp_path / "x.csv").exists()
    with ResultsDB(good) as db:
        assert len(db.runs()) == 1


def test_missing_or_empty_db(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    assert "no such results database" in assert_one_line_error(bench("compare", "--db", missing))
    assert_one_line_error(bench("export", "--db", missing, "--json", tmp_path / "x.json"))
    assert not missing.exists()  # reading never creates an empty database
    ResultsDB(tmp_path / "empty.sqlite").close()
    assert "no results" in assert_one_line_error(bench("compare", "--db", tmp_path / "empty.sqlite"), code=1)
    assert_one_line_error(bench("import", tmp_path / "nothing.json", "--db", tmp_path / "empty.sqlite"))


# -- what one configuration is -------------------------------------------------------------------------

_INPUTS = {  # run -> (input kind, size, stills), oldest first
    "video": ("video", (960, 540), False),
    "generated": ("generated", (640, 480), False),
    "stills": ("image", (640, 425), True),
    "image": ("image", (640, 425), False),
}


def _input_runs() -> dict[str, dict]:
    runs = {}
    for i, (name, (kind, size, stills)) in enumerate(_INPUTS.items()):
        runs[name] = sample_run(
            "pi5",
            models=MODELS[:1],
            threads=(4,),
            seed=i,
            created_utc=f"2026-01-15T1{i}:00:00Z",
            input_kind=kind,
            size=size,
            stills=stills,
        )
    # The newest run of all, on the first run's video: it replaces that run only.
    runs["video again"] = sample_run(
        "pi5",
        models=MODELS[:1],
        threads=(4,),
        seed=9,
        created_utc="2026-01-16T10:00:00Z",
        input_kind="video",
        size=(960, 540),
    )
    return runs


def test_the_input_and_stills_are_part_of_a_configuration(tmp_path: Path) -> None:
    assert {"input_kind", "input_width", "input_height", "stills"} <= set(CONFIG_KEY)
    runs = _input_runs()
    path = make_db(tmp_path / "a.sqlite", *runs.values())
    with ResultsDB(path) as db:
        latest = db.query()
        history = db.query(latest_only=False)
    assert len(history) == 5
    assert sorted(r["run_id"] for r in latest) == sorted(
        runs[n]["run_id"] for n in ("video again", "generated", "stills", "image")
    )
    assert {(r["input_kind"], r["input_width"], r["input_height"], r["stills"]) for r in latest} == {
        ("video", 960, 540, False),
        ("generated", 640, 480, False),
        ("image", 640, 425, True),
        ("image", 640, 425, False),
    }

    result = bench("compare", "--db", path)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "movenet" in line]
    assert len(lines) == 4
    for text, n in (
        ("video 960x540 ", 1),
        ("generated 640x480 ", 1),
        ("image 640x425 stills", 1),
        ("image 640x425 ", 2),
    ):
        assert sum(text in line for line in lines) == n, (text, result.stdout)
    assert "input" in result.stdout

    out = tmp_path / "a.csv"
    assert bench("export", "--db", path, "--csv", out, "--all").exit_code == 0
    with out.open(newline="") as f:
        table = list(csv.DictReader(f))
    by_run = {row["run_id"]: row for row in table}
    assert len(by_run) == 5
    stills = by_run[runs["stills"]["run_id"]]
    assert (stills["input_kind"], stills["input_width"], stills["input_height"], stills["stills"]) == (
        "image",
        "640",
        "425",
        "1",
    )
    assert by_run[runs["video"]["run_id"]]["stills"] == "0"

    # The chart draws each configuration once, and names the input since it tells these bars apart.
    labels = {bar_label(r, with_input=True) for r in latest}
    assert len(labels) == 4 and any(label.endswith("image 640x425 stills") for label in labels)
    plot_latency(latest, tmp_path / "inputs.png")
    assert (tmp_path / "inputs.png").read_bytes()[:4] == b"\x89PNG"


# -- documents with wrong types ------------------------------------------------------------------------

_MISSING = object()
# name -> (where in the document, the value put there, what the error says after "malformed document (")
MALFORMED = {
    "p50 a string": (
        ("results", 0, "pipeline_ms", "p50"),
        "fast",
        'results[0].pipeline_ms.p50: "fast" is not a number)',
    ),
    "label null": (("label",), None, "label: null is not a string)"),
    "label missing": (("label",), _MISSING, "label: missing)"),
    "threads a bool": (("results", 1, "threads"), True, "results[1].threads: true is not an integer)"),
    "threads a float": (("results", 1, "threads"), 4.0, "results[1].threads: 4.0 is not an integer)"),
    "frames too big": (("results", 0, "frames"), 10**30, "results[0].frames: " + str(10**30) + " is out of range)"),
    "invoke NaN": (("results", 2, "invoke_ms", "p90"), float("nan"), "results[2].invoke_ms.p90: nan is not a finite"),
    "stage missing": (("results", 0, "stages_ms", "decode"), _MISSING, "results[0].stages_ms.decode: missing)"),
    "fps a list": (("results", 0, "fps"), [1], "results[0].fps: a list is not a number)"),
    "max_c a string": (("results", 0, "thermal", "max_c"), "hot", 'results[0].thermal.max_c: "hot" is not a number)'),
    "throttled a string": (
        ("results", 0, "thermal", "throttled"),
        "no",
        'results[0].thermal.throttled: "no" is not true or false)',
    ),
    "detector model": (("results", 3, "detector", "model"), 7, "results[3].detector.model: 7 is not a string)"),
    "mode unknown": (("results", 0, "mode"), "crowd", 'results[0].mode: "crowd" is neither'),
    "result a list": (("results", 0), [], "results[0]: a list is not an object)"),
    "device_id a number": (("device", "device_id"), 42, "device.device_id: 42 is not a string)"),
    "cores a string": (("device", "cores"), "4", 'device.cores: "4" is not an integer)'),
    "width a string": (("input", "width"), "640", 'input.width: "640" is not an integer)'),
    "input missing": (("input",), _MISSING, "input: missing)"),
    "stills a string": (("settings", "stills"), "no", 'settings.stills: "no" is not true or false)'),
}


def _malformed(name: str) -> dict:
    where, value, _ = MALFORMED[name]
    run = sample_run("pi4", seed=7)
    *parents, last = where
    target = run
    for key in parents:
        target = target[key]
    if value is _MISSING:
        del target[last]
    else:
        target[last] = value
    return run


@pytest.mark.parametrize("name", MALFORMED)
def test_documents_with_wrong_types_are_refused_and_the_db_keeps_working(name: str, tmp_path: Path) -> None:
    run = _malformed(name)
    expected = f"run {run['run_id']}: malformed document ({MALFORMED[name][2]}"
    good = make_db(tmp_path / "good.sqlite", sample_run())
    with ResultsDB(good) as db, pytest.raises(EdgeposeError) as e:
        db.append(run)
    assert expected in str(e.value)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(run))  # NaN is written as NaN, which Python's JSON reader accepts
    line = assert_one_line_error(bench("import", bad, "--db", good))
    assert expected in line and "damaged" not in line
    assert bench("compare", "--db", good).exit_code == 0
    assert bench("export", "--db", good, "--csv", tmp_path / "x.csv").exit_code == 0
    with ResultsDB(good) as db:
        assert len(db.runs()) == 1
        assert db.append(sample_run("pi4", seed=8)) is True


def test_a_constraint_failure_blames_the_document_not_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Should a malformed document get past the checks, SQLite's IntegrityError still names the run."""
    prepare = bench_db._prepare
    run = sample_run()

    def label_null(document: dict) -> tuple[tuple, list[tuple]]:
        run_row, result_rows = prepare(document)
        return ((*run_row[:3], None, *run_row[4:]) if document is run else run_row), result_rows

    with ResultsDB(tmp_path / "a.sqlite") as db:
        monkeypatch.setattr(bench_db, "_prepare", label_null)
        with pytest.raises(EdgeposeError, match=rf"^run {run['run_id']}: malformed document \(NOT NULL") as e:
            db.import_runs([sample_run(seed=5), run])
        assert "damaged" not in str(e.value)
        monkeypatch.undo()
        assert db.runs() == []  # the whole batch was rolled back
        assert db.append(run) is True


# -- outputs that cannot be written --------------------------------------------------------------------


def test_unwritable_outputs_name_the_users_path(tmp_path: Path) -> None:
    db = make_db(tmp_path / "a.sqlite", sample_run())
    folder, file = tmp_path / "out", tmp_path / "file.txt"
    folder.mkdir()
    file.write_text("")
    cases = [
        (("compare", "--plot", folder), folder, "is a directory"),
        (("export", "--csv", folder), folder, "is a directory"),
        (("export", "--json", folder), folder, "is a directory"),
        (("export", "--csv", file / "x.csv"), file / "x.csv", f"{file} is not a directory"),
        (("compare", "--plot", file / "x.png"), file / "x.png", f"{file} is not a directory"),
    ]
    if sys.platform == "linux":  # no file can be created in /proc, whoever runs the tests
        cases += [
            (("export", "--csv", "/proc/x.csv"), "/proc/x.csv", "cannot write"),
            (("export", "--json", "/proc/x.json"), "/proc/x.json", "cannot write"),
            (("compare", "--plot", "/proc/x.png"), "/proc/x.png", "cannot write"),
        ]
    for args, path, why in cases:
        result = bench(*args, "--db", db)
        line = assert_one_line_error(result)
        assert line.startswith(f"edgepose: error: {path}: ") and why in line, (args, line)
        if Path(path) == folder:
            assert result.stdout == ""  # refused before any work
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "file.txt", "out"]  # no temporaries

    with ResultsDB(db) as rdb:
        rows = rdb.query()
        with pytest.raises(EdgeposeError, match=f"^{folder}: is a directory"):
            rdb.export_json(folder)
    with pytest.raises(EdgeposeError, match=f"^{folder}: is a directory"):
        export_csv(folder, rows)
    with pytest.raises(EdgeposeError, match=f"^{folder}: is a directory"):
        plot_latency(rows, folder)


# -- memory, temperature, the detector -----------------------------------------------------------------


def test_compare_shows_each_configurations_own_memory(tmp_path: Path) -> None:
    """peak_rss_mb is the whole run's (every configuration of a run is loaded at once); the table shows
    model_rss_mb, what loading the configuration added. The CSV keeps both."""
    run = sample_run(models=MODELS[:1], threads=(4,))
    run["results"][0].update(peak_rss_mb=987.0, model_rss_mb=12.4)
    path = make_db(tmp_path / "a.sqlite", run)
    result = bench("compare", "--db", path)
    assert result.exit_code == 0, result.output
    assert "model RSS MB" in result.stdout and "peak RSS" not in result.stdout
    [line] = [line for line in result.stdout.splitlines() if "movenet" in line]
    assert " 12 " in line and "987" not in line
    assert bench("export", "--db", path, "--csv", tmp_path / "a.csv").exit_code == 0
    with (tmp_path / "a.csv").open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["peak_rss_mb"], row["model_rss_mb"]) == ("987.0", "12.4")


def test_peak_temperature_and_detector_are_stored(tmp_path: Path) -> None:
    new = sample_run("pi5", seed=1)
    old = sample_run("pi4", seed=2)  # as written before max_c and detector existed
    for r in old["results"]:
        del r["detector"], r["thermal"]["max_c"]
    path = make_db(tmp_path / "a.sqlite", new, old)
    with ResultsDB(path) as db:
        rows = db.query()
    assert len(rows) == len(new["results"]) + len(old["results"])
    for row in rows:
        if row["label"] == "pi4":
            assert row["temp_max_c"] is None and row["detector_model"] is None
            continue
        [result] = [r for r in new["results"] if (r["model"], r["threads"]) == (row["model"], row["threads"])]
        assert row["temp_max_c"] == result["thermal"]["max_c"] >= row["temp_after_c"]
        assert row["detector_model"] == ("blazepose-detector" if row["family"] == "blazepose" else None)

    export_csv(tmp_path / "a.csv", rows)
    with (tmp_path / "a.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert {"temp_max_c", "detector_model"} <= set(CSV_COLUMNS)
    assert {(r["label"], r["model"], r["detector_model"]) for r in table} == {
        ("pi5", "movenet-lightning-int8", ""),
        ("pi5", "blazepose-full", "blazepose-detector"),
        ("pi4", "movenet-lightning-int8", ""),
        ("pi4", "blazepose-full", ""),
    }
    assert all((r["temp_max_c"] == "") == (r["label"] == "pi4") for r in table)


# -- text from the DB is shown as it is ------------------------------------------------------------------


def test_compare_shows_labels_and_model_names_literally(tmp_path: Path) -> None:
    names = {"lab[/bold]": "movenet-[red]odd[/]", "[bold]pi": "movenet-x[/]", "back\\": "blazepose-$\\foo$"}
    runs = [sample_run(label, models=(model,), threads=(1,), seed=i) for i, (label, model) in enumerate(names.items())]
    path = make_db(tmp_path / "a.sqlite", *runs)
    result = bench("compare", "--db", path, "--plot", tmp_path / "a.png")
    assert result.exit_code == 0, result.output
    for label, model in names.items():
        [line] = [line for line in result.stdout.splitlines() if model in line]
        assert f" {label} " in line
    assert "back\\\\" not in result.stdout  # a trailing backslash is not doubled
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"  # "$...$" is not taken for math
