"""edgepose bench: statistics, the result document, the device's state, the command line.

No timing thresholds: times are only checked for consistency (counts, order, stages within the total) and,
with a wide margin, as ratios (the fitness layer's share of a frame).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgepose.assets.registry import REGISTRY
from edgepose.bench import device_info
from edgepose.bench.device_info import ThermalState, was_throttled
from edgepose.bench.measure import percentile, summarize
from edgepose.bench.runner import BenchOptions, generated_frame, run_bench
from edgepose.bench.schema import RUN_SCHEMA, SCHEMA, STAGES, STAT_KEYS
from edgepose.errors import EdgeposeError
from tests.conftest import DATA_DIR

PHOTO = DATA_DIR / "coco" / "000000000785.jpg"  # one person
SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"  # one person squatting, 65 frames


def test_summary_matches_a_hand_computed_list():
    xs = [7.0, 1.0, 10.0, 4.0, 2.0, 9.0, 3.0, 6.0, 8.0, 5.0]
    s = summarize(xs)
    # Sorted 1..10; linear interpolation at rank h = 9q/100: p50 -> h=4.5, p90 -> 8.1, p99 -> 8.91.
    assert s == {
        "n": 10,
        "mean": 5.5,
        "std": round(math.sqrt(82.5 / 9), 4),
        "min": 1.0,
        "p50": 5.5,
        "p90": 9.1,
        "p99": 9.91,
        "max": 10.0,
    }
    assert list(s) == list(STAT_KEYS)


def test_percentile_agrees_with_numpy_on_random_samples():
    rng = random.Random(3)
    for n in (1, 2, 3, 17, 100, 1001):
        xs = sorted(rng.uniform(0, 50) for _ in range(n))
        for q in (0, 1, 50, 90, 99, 100):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), abs=1e-12)


def test_a_single_sample_has_zero_spread():
    assert summarize([3.25]) == {
        "n": 1,
        "mean": 3.25,
        "std": 0.0,
        "min": 3.25,
        "p50": 3.25,
        "p90": 3.25,
        "p99": 3.25,
        "max": 3.25,
    }
    with pytest.raises(ValueError):
        summarize([])


def _state(word: str | None = None, events: int | None = None) -> ThermalState:
    return ThermalState(temp_c=None, throttled=word, throttle_events=events)


@pytest.mark.parametrize(
    ("before", "after", "throttled"),
    [
        (_state("0x0"), _state("0x0"), False),
        (_state("0x0"), _state("0x4"), True),  # throttled right now
        (_state("0x0"), _state("0x1"), True),  # under-voltage now
        (_state("0x0"), _state("0x40000"), True),  # throttling happened during the run
        (_state("0x40000"), _state("0x40000"), False),  # ... but before it, not during it
        (_state("0x50000"), _state("0x50005"), True),
        (_state(None, 10), _state(None, 12), True),  # x86 kernel throttle counters went up
        (_state(None, 10), _state(None, 10), False),
        (_state(), _state(), False),
    ],
)
def test_throttling_is_flagged_from_firmware_bits_and_kernel_counters(before, after, throttled):
    assert was_throttled(before, after) is throttled


def test_a_throttling_episode_in_the_middle_of_the_run_is_caught():
    before = ThermalState(temp_c=50.0, throttled="0x50000", throttle_events=None)  # under-voltage since boot
    readings = [
        ThermalState(61.5, "0x50000", None),
        ThermalState(80.2, "0x50004", None),  # throttled now
        ThermalState(70.0, "0x50000", None),
    ]
    record = device_info.thermal_record(before, readings)
    assert record == {
        "before_c": 50.0,
        "after_c": 70.0,
        "max_c": 80.2,
        "throttled_before": "0x50000",
        "throttled_after": "0x50000",
        "throttled": True,
    }
    assert device_info.thermal_record(before, [readings[0], readings[2]])["throttled"] is False


def test_fingerprint_reads_a_raspberry_pi_and_a_coral_usb(monkeypatch):
    files = {
        "/proc/device-tree/model": "Raspberry Pi 5 Model B Rev 1.0",
        "/sys/bus/usb/devices/1-1/idVendor": "18d1",
        "/sys/bus/usb/devices/1-1/idProduct": "9302",
        "/sys/bus/usb/devices/1-2/idVendor": "046d",
        "/sys/bus/usb/devices/1-2/idProduct": "c52b",
    }
    real_read, real_glob = device_info._read, device_info.glob.glob
    monkeypatch.setattr(device_info, "_read", lambda p: files.get(str(p), real_read(p)))
    monkeypatch.setattr(
        device_info.glob,
        "glob",
        lambda pattern: (
            ["/sys/bus/usb/devices/1-1", "/sys/bus/usb/devices/1-2"]
            if pattern == "/sys/bus/usb/devices/*"
            else real_glob(pattern)
        ),
    )
    fp = device_info.fingerprint()
    assert fp["board"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert fp["coral"] == {"usb": 1, "pcie": 0}
    assert fp["device_id"] != device_info.fingerprint.__name__  # a hash, stable below
    monkeypatch.undo()
    plain = device_info.fingerprint()
    assert plain["device_id"] == device_info.fingerprint()["device_id"] != fp["device_id"]


@pytest.fixture(scope="module")
def photo_run():
    opts = BenchOptions(
        models=["movenet-lightning-int8"], threads=[1, 2], runs=6, warmup=2, input=PHOTO, rounds=3, label="test-box"
    )
    return run_bench(opts)


def test_result_document_follows_the_schema(photo_run, model_dir):
    doc = photo_run.document
    jsonschema.validate(doc, RUN_SCHEMA)
    assert doc["schema"] == SCHEMA and doc["label"] == "test-box" and not photo_run.failures
    assert doc["input"] == {"kind": "image", "path": str(PHOTO), "width": 640, "height": 425, "frames": 1}
    assert [r["threads"] for r in doc["results"]] == [1, 2]
    spec = REGISTRY["movenet-lightning-int8"]
    for r in doc["results"]:
        assert r["model"] == spec.name and r["model_sha256"] == spec.sha256 and r["precision"] == "int8"
        assert r["model_size_bytes"] == (model_dir / spec.filename).stat().st_size
        assert r["backend"] == "litert" and r["delegate"] is None and r["mode"] == "single"
        assert r["frames"] == 6 and r["pipeline_ms"]["n"] == 6 and r["invoke_ms"]["n"] == 6
        assert all(r["stages_ms"][s]["n"] == 6 for s in STAGES)
        # The stages are parts of the frame: their means cannot add up to more than the frame's.
        assert sum(r["stages_ms"][s]["mean"] for s in STAGES) <= r["pipeline_ms"]["mean"] + 1e-3
        assert r["fps"] == pytest.approx(1000 / r["pipeline_ms"]["mean"], rel=1e-3)
        assert r["poses_per_frame"] == 1.0  # the one person of the photo, every frame
        assert r["warnings"] == []  # the invoke ran on a real crop captured from the pipeline
        assert r["peak_rss_mb"] > 0 and r["cpu_util"] > 0
        assert r["exercise"] is None and r["fitness_ms"] is None  # no --exercise: no fitness layer timed
    assert doc["settings"]["exercise"] is None


def test_documents_from_before_the_fitness_stage_still_follow_the_schema(photo_run):
    # The DB re-validates what it stored: runs written before --exercise existed lack its fields.
    doc = json.loads(json.dumps(photo_run.document))
    del doc["settings"]["exercise"]
    for r in doc["results"]:
        del r["exercise"], r["fitness_ms"]
    jsonschema.validate(doc, RUN_SCHEMA)


def test_the_fitness_layer_is_timed_as_its_own_stage_and_inside_the_frame():
    run = run_bench(
        BenchOptions(models=["movenet-lightning-int8"], runs=20, warmup=2, rounds=2, input=SQUATS, exercise="squat")
    )
    doc = run.document
    jsonschema.validate(doc, RUN_SCHEMA)
    assert doc["settings"]["exercise"] == "squat" and not run.failures
    r = doc["results"][0]
    assert r["exercise"] == "squat" and r["poses_per_frame"] == 1.0
    fitness = r["fitness_ms"]
    assert fitness["n"] == r["frames"] == 20 and fitness["p50"] > 0
    assert sum(r["stages_ms"][s]["mean"] for s in STAGES) + fitness["mean"] <= r["pipeline_ms"]["mean"] + 1e-3
    # A ratio, not a time: the counter is a few arithmetic steps per frame next to a model's invoke (~0.6% of
    # the frame on a laptop); 5% leaves room for any machine's noise.
    assert fitness["p50"] < 0.05 * r["pipeline_ms"]["p50"]


def test_an_exercise_is_refused_with_stills_and_when_unknown():
    with pytest.raises(EdgeposeError, match="--stills"):
        run_bench(BenchOptions(models=["movenet-lightning-int8"], input=PHOTO, stills=True, exercise="squat"))
    with pytest.raises(EdgeposeError, match="unknown exercise 'planks'; choose one of: .*squat"):
        run_bench(BenchOptions(models=["movenet-lightning-int8"], input=PHOTO, exercise="planks"))


def test_generated_frame_is_said_and_deterministic():
    assert generated_frame() == generated_frame()
    run = run_bench(BenchOptions(models=["movenet-lightning-int8"], runs=2, warmup=1, rounds=1))
    assert run.document["input"]["kind"] == "generated"
    assert any("no --input" in n for n in run.notes)
    assert run.document["results"][0]["poses_per_frame"] == 0.0


def test_video_input_replays_as_new_streams(demo_video):
    run = run_bench(BenchOptions(models=["movenet-lightning-int8"], runs=12, warmup=1, rounds=2, input=demo_video))
    doc = run.document
    assert doc["input"]["kind"] == "video" and doc["input"]["frames"] == 5
    assert any("replayed" in n and "one stream" in n for n in run.notes)
    assert doc["results"][0]["stages_ms"]["tracking"]["n"] == 12


def test_latency_is_reported_next_to_throughput(demo_video):
    # A still: its latency is its decode plus the pipeline, one frame after another.
    still = run_bench(BenchOptions(models=["movenet-lightning-int8"], runs=8, warmup=1, rounds=1, input=PHOTO))
    r = still.document["results"][0]
    assert r["latency_ms"]["n"] == r["frames"] == 8
    assert r["latency_ms"]["p50"] == pytest.approx(r["pipeline_ms"]["p50"], rel=0.2)
    # A video is decoded on a reader thread: its latency holds at least the pipeline's own stages (its
    # frame also waits in the queue), and its throughput is timed frames over wall time.
    video = run_bench(BenchOptions(models=["movenet-lightning-int8"], runs=8, warmup=1, rounds=1, input=demo_video))
    r = video.document["results"][0]
    stages = sum(r["stages_ms"][s]["p50"] for s in ("preprocess", "inference", "postprocess", "tracking"))
    assert r["latency_ms"]["n"] == 8 and r["latency_ms"]["p50"] >= 0.9 * stages
    assert 0 < r["throughput_fps"] < 1000.0 / r["invoke_ms"]["min"]


def test_duration_bounds_the_timing(monkeypatch):
    run = run_bench(
        BenchOptions(models=["movenet-lightning-int8"], runs=None, duration_s=0.05, warmup=1, rounds=2, input=PHOTO)
    )
    assert run.document["results"][0]["frames"] >= 2  # at least one frame per round, however slow


def _edgepose(*args: str, env_db: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "EDGEPOSE_BENCH_DB": str(env_db)}
    return subprocess.run(
        [sys.executable, "-m", "edgepose.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_writes_json_and_appends_to_the_db(tmp_path):
    out, db = tmp_path / "r.json", tmp_path / "bench.sqlite"
    p = _edgepose(
        "bench",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--input",
        str(PHOTO),
        "--threads",
        "1,2",
        "--label",
        "ci",
        "--json",
        str(out),
        "--db",
        str(db),
        env_db=tmp_path / "unused.sqlite",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, RUN_SCHEMA)
    assert "movenet-lightning-int8" in p.stdout and "pipeline p50" in p.stdout
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT run_id, n_results FROM runs").fetchall() == [(doc["run_id"], 2)]
    assert not (tmp_path / "unused.sqlite").exists()


def test_cli_default_db_is_the_env_var_and_json_dash_owns_stdout(tmp_path):
    db = tmp_path / "default.sqlite"
    p = _edgepose("bench", "--runs", "2", "--warmup", "1", "--input", str(PHOTO), "--json", "-", env_db=db)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)  # nothing but the document on stdout
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT run_id FROM runs").fetchall() == [(doc["run_id"],)]


def test_cli_edgetpu_model_without_a_tpu_fails_that_config_only(tmp_path):
    db = tmp_path / "b.sqlite"
    p = _edgepose(
        "bench",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--input",
        str(PHOTO),
        "-m",
        "movenet-lightning-int8",
        "-m",
        "movenet-lightning-int8-edgetpu",
        "--no-db",
        "--json",
        str(tmp_path / "r.json"),
        env_db=db,
    )
    assert p.returncode == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("edgepose: error:")]
    assert len(errors) == 1 and "Edge TPU" in errors[0] and "Traceback" not in p.stderr
    assert [r["model"] for r in json.loads((tmp_path / "r.json").read_text())["results"]] == ["movenet-lightning-int8"]
    assert not db.exists()  # --no-db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "--threads"),
        (["--backend", "gpu"], "unknown --backend"),
        (["--mode", "crowd"], "unknown --mode"),
        (["--input", "missing.jpg"], "no such file"),
        (["--input", "."], "is a directory"),
        (["--warmup", "0"], "--warmup"),
        (["--json", "."], "is a directory"),
        (["-m", "movenet-lightning-int8-edgetpu"], "Edge TPU"),
        (["--exercise", "planks"], "unknown exercise 'planks'; choose one of"),
        (["--exercise", "squat", "--stills"], "cannot be timed with --stills"),
        (["--exercise", "squat", "--mode", "multi"], "use it with --mode single"),
        (["--exercises-file", "mine.json"], "--exercises-file needs --exercise"),
        (["--exercise", "squat", "--exercises-file", "missing.json"], "missing.json: cannot read"),
    ],
)
def test_cli_bad_options_are_one_line(tmp_path, args, message):
    p = _edgepose("bench", "--runs", "1", "--no-db", *args, env_db=tmp_path / "b.sqlite")
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("edgepose: note:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr


def test_cli_times_a_user_exercise_in_the_stage_table(tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([{"name": "half-squat", "angle": "knee", "rest": 150, "turn": 125}]))
    out = tmp_path / "r.json"
    p = _edgepose(
        "bench",
        *("--runs", "3", "--warmup", "1", "--input", str(SQUATS), "--no-db", "--json", str(out)),
        *("--exercise", "half-squat", "--exercises-file", str(mine)),
        env_db=tmp_path / "b.sqlite",
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, RUN_SCHEMA)
    r = doc["results"][0]
    assert r["exercise"] == "half-squat" and r["fitness_ms"]["n"] == 3
    header = next(line for line in p.stdout.splitlines() if "postprocess" in line)
    assert "fitness" in header and "counting half-squat reps" in p.stdout
    row = p.stdout.splitlines()[p.stdout.splitlines().index(header) + 2]
    assert f"{r['fitness_ms']['p50']:.3f}" in row  # three decimals: a hundredth of a millisecond shows


def test_cli_corrupt_input_image_is_one_line(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(PHOTO.read_bytes()[:300])
    p = _edgepose("bench", "--runs", "1", "--no-db", "--input", str(bad), env_db=tmp_path / "b.sqlite")
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1 and "bad.jpg" in p.stderr


def test_cli_compare_and_export_read_what_bench_stored(tmp_path):
    db = tmp_path / "b.sqlite"
    for label in ("box-a", "box-b"):
        p = _edgepose(
            "bench", "--runs", "2", "--warmup", "1", "--input", str(PHOTO), "--label", label, "--db", str(db), env_db=db
        )
        assert p.returncode == 0, p.stderr
    p = _edgepose("bench", "compare", "--db", str(db), "--plot", str(tmp_path / "c.png"), env_db=db)
    assert p.returncode == 0, p.stderr
    assert "box-a" in p.stdout and "box-b" in p.stdout
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = _edgepose("bench", "export", "--db", str(db), "--csv", str(tmp_path / "r.csv"), env_db=db)
    assert p.returncode == 0, p.stderr
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("run_id,")


def test_top_down_results_name_their_detector_and_time_one_person(model_dir):
    group = DATA_DIR / "coco" / "000000196141.jpg"  # four people
    run = run_bench(BenchOptions(models=["blazepose-full"], mode="multi", runs=2, warmup=1, rounds=1, input=group))
    r = run.document["results"][0]
    spec = REGISTRY["blazepose-detector"]
    assert r["detector"] == {
        "model": spec.name,
        "sha256": spec.sha256,
        "size_bytes": (model_dir / spec.filename).stat().st_size,
    }
    assert r["poses_per_frame"] >= 2 and r["warnings"] == []
    # The invoke is one person's crop (batch 1), though the pipeline batches everyone in one call.
    assert r["invoke_input_shapes"] == [[1, 256, 256, 3]]
