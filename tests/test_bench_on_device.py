"""`edgepose bench` on the plain on-device install (.ci/run's numpy-1.26 stage: no OpenCV, no extras),
on every TFLite runtime installed there, storing into a results DB."""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys

from tests.conftest import DATA_DIR

BACKENDS = ["litert"] + (["tflite-runtime"] if importlib.util.find_spec("tflite_runtime") else [])


def test_bench_runs_on_the_installed_runtimes(tmp_path):
    db, out = tmp_path / "bench.sqlite", tmp_path / "r.json"
    args = [
        "bench",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--input",
        str(DATA_DIR / "coco" / "000000000785.jpg"),
        "--backend",
        ",".join(BACKENDS),
        "--threads",
        "1,2",
        "--json",
        str(out),
        "--db",
        str(db),
    ]
    p = subprocess.run(
        [sys.executable, "-m", "edgepose.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "EDGEPOSE_BENCH_DB": str(tmp_path / "unused.sqlite")},
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert [(r["backend"], r["threads"]) for r in doc["results"]] == [(b, t) for b in BACKENDS for t in (1, 2)]
    for r in doc["results"]:
        assert r["frames"] == 3 and r["poses_per_frame"] == 1.0 and r["precision"] == "int8"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT n_results FROM runs").fetchall() == [(2 * len(BACKENDS),)]
