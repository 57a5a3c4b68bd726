"""The results database of `edgepose bench`: every run, appended atomically, queryable for compare/export.

One SQLite file. `runs` keeps each run's full JSON document (lossless: the source of truth, what export
and import move between machines); `results` is derived from it, one flat row per result, so compare
can filter and sort in SQL. Because `results` can always be rebuilt from the documents, importing another
DB re-appends its documents instead of copying its rows, and a future schema version can migrate by
rebuilding.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgepose.bench.schema import SCHEMA, STAGES
from edgepose.errors import EdgeposeError
from edgepose.io.atomic import atomic_output

DB_ENV = "EDGEPOSE_BENCH_DB"
# PRAGMA application_id marks the file as ours ("EPbd"); user_version is the layout of the tables.
APPLICATION_ID = int.from_bytes(b"EPbd", "big")
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_LATENCY_COLUMNS = [("invoke", s) for s in ("mean", "p50", "p90", "p99")] + [
    ("pipeline", s) for s in ("mean", "std", "min", "p50", "p90", "p99", "max")
]
_RESULT_COLUMNS = (
    "run_id",
    "idx",
    "model",
    "precision",
    "family",
    "backend",
    "delegate",
    "threads",
    "mode",
    "frames",
    *(f"{kind}_{stat}_ms" for kind, stat in _LATENCY_COLUMNS),
    *(f"{stage}_p50_ms" for stage in STAGES),
    "fps",
    "cpu_util",
    "peak_rss_mb",
    "model_rss_mb",
    "poses_per_frame",
    "temp_before_c",
    "temp_after_c",
    "temp_max_c",
    "throttled",
    "detector_model",
)
_RUN_COLUMNS = (
    "run_id",
    "created_utc",
    "created_ts",
    "label",
    "device_id",
    "board",
    "cpu",
    "machine",
    "cores",
    "edgepose_version",
    "input_kind",
    "input_width",
    "input_height",
    "stills",
    "n_results",
    "document",
)

# What `edgepose bench export --csv` writes, one row per result; every name is a key of a query() row.
# peak_rss_mb is the whole run's high-water mark (all its configurations are loaded together), the same in
# every result of a run; model_rss_mb is what loading this one configuration added.
CSV_COLUMNS = (
    "run_id",
    "created_utc",
    "label",
    "device_id",
    "board",
    "cpu",
    "machine",
    "cores",
    "model",
    "precision",
    "family",
    "backend",
    "delegate",
    "detector_model",
    "threads",
    "mode",
    "input_kind",
    "input_width",
    "input_height",
    "stills",
    "frames",
    *(f"{kind}_{stat}_ms" for kind, stat in _LATENCY_COLUMNS),
    *(f"{stage}_p50_ms" for stage in STAGES),
    "fps",
    "cpu_util",
    "peak_rss_mb",
    "model_rss_mb",
    "temp_before_c",
    "temp_after_c",
    "temp_max_c",
    "throttled",
)

# One configuration measured on one device; latest_only keeps the newest result of each. The input is part
# of it: a real video, a photo and the generated frame time different work, and so do stills (each frame a
# new photo: no tracking, MoveNet's two passes) and a stream. The detector is not: model and mode fix it.
CONFIG_KEY = (
    "device_id",
    "label",
    "model",
    "precision",
    "backend",
    "delegate",
    "threads",
    "mode",
    "input_kind",
    "input_width",
    "input_height",
    "stills",
)
_RUN_KEYS = ("device_id", "label", "input_kind", "input_width", "input_height", "stills")

_LATENCY_SQL = ",\n".join(f"    {kind}_{stat}_ms REAL" for kind, stat in _LATENCY_COLUMNS)
_STAGES_SQL = ",\n".join(f"    {stage}_p50_ms REAL" for stage in STAGES)
_DDL = f"""
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    created_utc TEXT NOT NULL,
    created_ts REAL,
    label TEXT NOT NULL,
    device_id TEXT NOT NULL,
    board TEXT,
    cpu TEXT,
    machine TEXT,
    cores INTEGER,
    edgepose_version TEXT NOT NULL,
    input_kind TEXT NOT NULL,
    input_width INTEGER NOT NULL,
    input_height INTEGER NOT NULL,
    stills INTEGER NOT NULL,
    n_results INTEGER NOT NULL,
    document TEXT NOT NULL
);
CREATE TABLE results (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    model TEXT NOT NULL,
    precision TEXT NOT NULL,
    family TEXT NOT NULL,
    backend TEXT NOT NULL,
    delegate TEXT,
    threads INTEGER NOT NULL,
    mode TEXT NOT NULL,
    frames INTEGER NOT NULL,
{_LATENCY_SQL},
{_STAGES_SQL},
    fps REAL,
    cpu_util REAL,
    peak_rss_mb REAL,
    model_rss_mb REAL,
    poses_per_frame REAL,
    temp_before_c REAL,
    temp_after_c REAL,
    temp_max_c REAL,
    throttled INTEGER NOT NULL,
    detector_model TEXT,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
CREATE INDEX runs_device ON runs(device_id, created_ts);
CREATE INDEX runs_label ON runs(label);
CREATE INDEX results_config ON results(model, precision, backend, threads);
"""

_INSERT_RUN = f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})"
_INSERT_RESULT = f"INSERT INTO results ({', '.join(_RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(_RESULT_COLUMNS))})"


def default_db_path() -> Path:
    """$EDGEPOSE_BENCH_DB, else bench.sqlite in the user data dir (~/.local/share/edgepose on Linux)."""
    override = os.environ.get(DB_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("edgepose", appauthor=False)) / "bench.sqlite"


class ResultsDB:
    """An open results database. `create=False` refuses a missing file instead of making an empty one;
    `readonly=True` never writes (used to read another machine's DB on import)."""

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._con = _connect(self.path, create=create and not readonly, readonly=readonly)
        try:
            self._check_or_create(may_create=create and not readonly)
        except BaseException:
            self._con.close()
            raise

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    # -- writing -------------------------------------------------------------------------------------

    def append(self, run: dict) -> bool:
        """Store one run document and its results atomically. False when its run_id is already stored."""
        written, _ = self._write([run])
        return written == 1

    def import_runs(self, runs: Iterable[dict]) -> tuple[int, int]:
        """Store several run documents in one transaction: (imported, skipped as already present)."""
        return self._write(list(runs))

    def import_db(self, other: str | Path) -> tuple[int, int]:
        """Merge another results DB by run_id: (imported, skipped as already present)."""
        with ResultsDB(other, create=False, readonly=True) as src:
            documents = src.documents()
        return self._write(documents)

    def import_json(self, path: str | Path) -> tuple[int, int]:
        """Merge a JSON file: one run document (`edgepose bench --json`) or a list of them (export --json)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise EdgeposeError(f"{path}: cannot read: {e.strerror or e}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EdgeposeError(f"{path}: neither an edgepose results database nor JSON ({e})") from None
        documents = data if isinstance(data, list) else [data]
        if not all(isinstance(d, dict) for d in documents):
            raise EdgeposeError(f"{path}: expected a run document or a list of run documents")
        return self._write(documents)

    def _write(self, runs: list[dict]) -> tuple[int, int]:
        # Rows are built (and malformed documents refused) before the write lock is taken, so the lock is
        # held only for the inserts, and a bad document aborts the whole batch before anything is written.
        prepared = [_prepare(run) for run in runs]
        written = skipped = 0
        with _sqlite_errors(self.path, "write"), self._transaction("BEGIN IMMEDIATE"):
            for run_row, result_rows in prepared:
                # Checked inside the write transaction, so two processes appending one run_id cannot both write it.
                if self._con.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_row[0],)).fetchone():
                    skipped += 1
                    continue
                try:
                    self._con.execute(_INSERT_RUN, run_row)
                    self._con.executemany(_INSERT_RESULT, result_rows)
                except (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, UnicodeEncodeError) as e:
                    # A constraint or a value SQLite cannot bind: the document's fault, not the file's. The
                    # checks in _prepare should catch these first; the transaction is rolled back either way.
                    raise EdgeposeError(f"run {run_row[0]}: malformed document ({e})") from None
                written += 1
        return written, skipped

    @contextlib.contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[None]:
        self._con.execute(begin)
        try:
            yield
            self._con.execute("COMMIT")
        except BaseException:
            # The connection may already be unusable (disk I/O error); the original error is the one to report.
            with contextlib.suppress(sqlite3.Error):
                self._con.execute("ROLLBACK")
            raise

    # -- reading -------------------------------------------------------------------------------------

    def runs(self) -> list[dict]:
        """One summary per stored run, oldest first (no documents, no results)."""
        columns = [c for c in _RUN_COLUMNS if c not in ("document", "created_ts")]
        with _sqlite_errors(self.path, "read"):
            cur = self._con.execute(f"SELECT {', '.join(columns)} FROM runs ORDER BY created_ts, rowid")
            return [dict(zip(columns, row)) for row in cur]

    def documents(self, run_ids: Iterable[str] | None = None) -> list[dict]:
        """The full run documents, oldest first; only those of `run_ids` when given."""
        wanted = None if run_ids is None else set(run_ids)
        out = []
        with _sqlite_errors(self.path, "read"):
            for run_id, text in self._con.execute("SELECT run_id, document FROM runs ORDER BY created_ts, rowid"):
                if wanted is not None and run_id not in wanted:
                    continue
                try:
                    out.append(json.loads(text))
                except (TypeError, json.JSONDecodeError) as e:
                    raise EdgeposeError(f"{self.path}: run {run_id}: stored document is not JSON ({e})") from None
        return out

    def query(
        self,
        models: Sequence[str] | None = None,
        devices: Sequence[str] | None = None,
        latest_only: bool = True,
        run_ids: Sequence[str] | None = None,
    ) -> list[dict]:
        """Result rows (run fields + flattened result), ordered so one configuration on several devices lines up.

        models: each term selects the models named exactly, or, when none is, the models containing it.
        devices: each term selects a device by label (case-insensitive) or by device_id prefix.
        latest_only: only the newest result of each CONFIG_KEY; else the whole history, oldest first.
        run_ids: only these runs (a fleet bench's table: the runs it just stored).
        """
        where: list[str] = []
        params: list[str] = []
        if run_ids is not None:
            where.append(f"u.run_id IN ({', '.join('?' * len(run_ids))})")
            params += list(run_ids)
        with _sqlite_errors(self.path, "read"):
            for terms, match, column in (
                (models, self._match_models, "r.model"),
                (devices, self._match_devices, "u.device_id"),
            ):
                if not terms:
                    continue
                picked = match(terms)
                if not picked:
                    return []
                where.append(f"{column} IN ({', '.join('?' * len(picked))})")
                params += picked
            return self._select(where, params, latest_only)

    def _match_models(self, terms: Sequence[str]) -> list[str]:
        known = [m for (m,) in self._con.execute("SELECT DISTINCT model FROM results")]
        picked: set[str] = set()
        for term in terms:
            exact = [m for m in known if m == term]
            picked.update(exact or [m for m in known if term.lower() in m.lower()])
        return sorted(picked)

    def _match_devices(self, terms: Sequence[str]) -> list[str]:
        known = list(self._con.execute("SELECT DISTINCT device_id, label FROM runs"))
        picked: set[str] = set()
        for term in terms:
            t = term.lower()
            picked.update(d for d, label in known if label.lower() == t or d.lower().startswith(t))
        return sorted(picked)

    def _select(self, where: list[str], params: list[Any], latest_only: bool) -> list[dict]:
        run_fields = [c for c in _RUN_COLUMNS if c not in ("run_id", "n_results", "document")]
        columns = [f"u.{c}" for c in run_fields] + [f"r.{c}" for c in _RESULT_COLUMNS]
        # created_ts orders by time whatever the ISO spelling; rowid (append order) breaks ties.
        newest_first = "u.created_ts DESC, u.rowid DESC, r.idx DESC"
        partition = ", ".join(("u." if k in _RUN_KEYS else "r.") + k for k in CONFIG_KEY)
        inner = (
            f"SELECT {', '.join(columns)}, u.rowid AS run_rowid, "
            f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {newest_first}) AS recency "
            f"FROM results r JOIN runs u ON u.run_id = r.run_id" + (f" WHERE {' AND '.join(where)}" if where else "")
        )
        order = (
            "model, precision, backend, IFNULL(delegate, ''), threads, mode, input_kind, input_width, input_height, "
            "stills, label, device_id, created_ts, run_rowid, idx"
        )
        sql = f"SELECT * FROM ({inner})" + (" WHERE recency = 1" if latest_only else "") + f" ORDER BY {order}"
        cur = self._con.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = []
        for values in cur:
            row = dict(zip(names, values))
            del row["recency"], row["run_rowid"]
            row["throttled"] = bool(row["throttled"])
            row["stills"] = bool(row["stills"])
            rows.append(row)
        return rows

    def export_json(self, path: str | Path, run_ids: Iterable[str] | None = None) -> int:
        """Write the full run documents (all, or those of `run_ids`) as one JSON list; returns how many."""
        documents = self.documents(run_ids)
        text = json.dumps(documents, indent=1, ensure_ascii=False) + "\n"
        with atomic_output(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return len(documents)

    # -- opening -------------------------------------------------------------------------------------

    def _check_or_create(self, may_create: bool) -> None:
        with _sqlite_errors(self.path, "open"):
            # A read transaction: any hot journal left by a killed writer is rolled back first, and no writer
            # can change the file while the header is checked against its size.
            with self._transaction():
                app_id = self._con.execute("PRAGMA application_id").fetchone()[0]
                version = self._con.execute("PRAGMA user_version").fetchone()[0]
                n_objects = self._con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                _check_not_truncated(self.path)
            if app_id == 0 and n_objects == 0 and may_create:
                self._create_schema()
                return
        if app_id != APPLICATION_ID:
            what = "an empty SQLite database" if n_objects == 0 else "an SQLite database of something else"
            raise EdgeposeError(f"{self.path}: not an edgepose results database ({what})")
        if version > SCHEMA_VERSION:
            raise EdgeposeError(
                f"{self.path}: written by a newer edgepose (results DB layout {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade edgepose"
            )

    def _create_schema(self) -> None:
        with self._transaction("BEGIN IMMEDIATE"):
            # Another process may have created it since our check; the IMMEDIATE lock makes this re-check final.
            if self._con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return
            for statement in _DDL.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            self._con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _connect(path: Path, create: bool, readonly: bool) -> sqlite3.Connection:
    if path.is_dir():
        raise EdgeposeError(f"{path}: is a directory, not a results database")
    if path.exists():
        _check_magic(path, allow_empty=create)
    elif create:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        raise EdgeposeError(f"{path}: no such results database")
    mode = "ro" if readonly else "rwc" if create else "rw"
    # Journal mode: the default rollback journal, not WAL. A commit then leaves everything in the one .sqlite
    # file, which is what users copy off a Raspberry Pi to import elsewhere (a WAL file's committed runs
    # would stay behind in bench.sqlite-wal); WAL also fails on network filesystems. Both are atomic, and
    # the one writer per bench run does not need WAL's concurrent readers.
    with _sqlite_errors(path, "open"):
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=10.0, isolation_level=None)
        con.execute("PRAGMA foreign_keys = ON")
    return con


def _check_magic(path: Path, allow_empty: bool) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as e:
        raise EdgeposeError(f"{path}: cannot read: {e.strerror or e}") from None
    if not head and allow_empty:
        return  # SQLite treats an empty file as an empty database: ours to initialise
    if head != _SQLITE_MAGIC:
        raise EdgeposeError(f"{path}: not an SQLite file, so not an edgepose results database")


def _check_not_truncated(path: Path) -> None:
    """Refuse a file shorter than its header says (an interrupted copy): SQLite itself would only fail
    later, on the first query that reaches a missing page, or silently return fewer rows."""
    with path.open("rb") as f:
        header = f.read(100)
        size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    if len(header) < 100:
        raise EdgeposeError(f"{path}: truncated SQLite file ({size} bytes)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    change_counter, n_pages = int.from_bytes(header[24:28], "big"), int.from_bytes(header[28:32], "big")
    # The page count is only trusted when "version-valid-for" matches the change counter (see the file format).
    if int.from_bytes(header[92:96], "big") == change_counter and size < n_pages * page_size:
        raise EdgeposeError(f"{path}: truncated SQLite file ({size} of {n_pages * page_size} bytes); copy it again")


@contextlib.contextmanager
def _sqlite_errors(path: Path, action: str) -> Iterator[None]:
    """sqlite3's exceptions become one EdgeposeError line naming the file."""
    try:
        yield
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise EdgeposeError(f"{path}: cannot {action}: locked by another process; try again") from None
        raise EdgeposeError(f"{path}: cannot {action}: {e}") from None
    except sqlite3.DatabaseError as e:
        raise EdgeposeError(f"{path}: cannot {action}: {e} (a damaged or truncated file?)") from None


def check_document(run: object) -> None:
    """Raise EdgeposeError (one line) unless `run` is a run document this DB can store."""
    _prepare(run)


def _prepare(run: dict) -> tuple[tuple, list[tuple]]:
    """The runs row and the results rows of one document, or an EdgeposeError saying what is wrong with it.

    Every field that becomes a column is type-checked here (no jsonschema at runtime): a wrong type stored
    in SQLite's loosely typed columns would break every later compare, not just this import.
    """
    run_id = run.get("run_id") if isinstance(run, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise EdgeposeError("not an edgepose bench run document (no run_id)")
    if not run_id.isascii() or not run_id.isprintable():
        raise EdgeposeError(f"not an edgepose bench run document (run_id {ascii(run_id)[:40]})")
    if run.get("schema") != SCHEMA:
        raise EdgeposeError(f"run {run_id}: schema {run.get('schema')!r}, this edgepose reads {SCHEMA!r}")
    try:
        results = _get(run, "results", "array")
        result_rows = [_result_row(run_id, i, r) for i, r in enumerate(results)]
        device = _get(run, "device", "object")
        inp = _get(run, "input", "object")
        settings = _get(run, "settings", "object")
        created_utc = _get(run, "created_utc", "string")
        try:
            document = json.dumps(run, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise _Malformed("document", f"not JSON ({e})") from None
        _check_text(document, "document")
        run_row = (
            run_id,
            created_utc,
            _timestamp(created_utc),
            _get(run, "label", "string"),
            _get(device, "device_id", "string", "device"),
            *(_get(device, k, "string", "device", optional=True) for k in ("board", "cpu", "machine")),
            _get(device, "cores", "integer", "device", optional=True),
            _get(run, "edgepose_version", "string"),
            _get(inp, "kind", "string", "input"),
            _get(inp, "width", "integer", "input"),
            _get(inp, "height", "integer", "input"),
            int(_get(settings, "stills", "boolean", "settings")),
            len(results),
            document,
        )
    except _Malformed as e:
        field, why = e.args
        raise EdgeposeError(f"run {run_id}: malformed document ({field}: {why})") from None
    return run_row, result_rows


def _result_row(run_id: str, idx: int, r: object) -> tuple:
    at = f"results[{idx}]"
    if not isinstance(r, dict):
        raise _Malformed(at, f"{_show(r)} is not an object")
    latency = []
    for kind, stat in _LATENCY_COLUMNS:
        stats = _get(r, f"{kind}_ms", "object", at)
        latency.append(_get(stats, stat, "number", f"{at}.{kind}_ms"))
    stages_ms = _get(r, "stages_ms", "object", at)
    stages = [
        _get(_get(stages_ms, s, "object", f"{at}.stages_ms"), "p50", "number", f"{at}.stages_ms.{s}") for s in STAGES
    ]
    thermal = _get(r, "thermal", "object", at, optional=True) or {}
    temps = [_get(thermal, k, "number", f"{at}.thermal", optional=True) for k in ("before_c", "after_c", "max_c")]
    throttled = _get(thermal, "throttled", "boolean", f"{at}.thermal", optional=True)
    detector = _get(r, "detector", "object", at, optional=True)
    detector_model = None
    if detector is not None:
        detector_model = _get(detector, "model", "string", f"{at}.detector")
        _get(detector, "sha256", "string", f"{at}.detector", optional=True)
        _get(detector, "size_bytes", "integer", f"{at}.detector", optional=True)
    mode = _get(r, "mode", "string", at)
    if mode not in ("single", "multi"):
        raise _Malformed(f"{at}.mode", f'{_show(mode)} is neither "single" nor "multi"')
    return (
        run_id,
        idx,
        *(_get(r, k, "string", at) for k in ("model", "precision", "family", "backend")),
        _get(r, "delegate", "string", at, optional=True),
        _get(r, "threads", "integer", at),
        mode,
        _get(r, "frames", "integer", at),
        *latency,
        *stages,
        *(
            _get(r, k, "number", at, optional=True)
            for k in ("fps", "cpu_util", "peak_rss_mb", "model_rss_mb", "poses_per_frame")
        ),
        *temps,
        int(bool(throttled)),
        detector_model,
    )


class _Malformed(Exception):
    """(field, why): a document field that cannot be stored."""


_IS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_INT64 = 2**63


def _get(obj: dict, key: str, kind: str, at: str = "", *, optional: bool = False) -> Any:
    """obj[key] checked to be of the JSON `kind`; `optional`: missing or null gives None. Numbers come back
    as finite floats (what a REAL column holds), integers within SQLite's 64 bits, strings as valid Unicode."""
    field = f"{at}.{key}" if at else key
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise _Malformed(field, "missing" if key not in obj else f"null is not {_A[kind]}")
    if not _IS[kind](value):
        raise _Malformed(field, f"{_show(value)} is not {_A[kind]}")
    if kind == "number":
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise _Malformed(field, f"{_show(obj[key])} is not a finite number")
    elif kind == "integer" and not -_INT64 <= value < _INT64:
        raise _Malformed(field, f"{_show(value)} is out of range")
    elif kind == "string":
        _check_text(value, field)
    return value


_A = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Malformed(field, "not valid Unicode (an unpaired surrogate)") from None


def _show(value: object) -> str:
    """A JSON value as a short phrase for an error message."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _timestamp(created_utc: str) -> float | None:
    """Seconds since the epoch, so runs sort by time however the ISO string is spelled; None if unparseable."""
    try:
        t = datetime.fromisoformat(created_utc.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def export_csv(path: str | Path, rows: Sequence[dict]) -> int:
    """Write query() rows as CSV, one row per result (CSV_COLUMNS); returns how many rows."""
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in CSV_COLUMNS})
    return len(rows)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    return repr(value) if isinstance(value, float) else value
