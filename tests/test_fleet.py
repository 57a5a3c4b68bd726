"""`edgepose bench --host`: a real sshd on 127.0.0.1, this machine's second venv as the board."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgepose.assets.registry import REGISTRY, sha256_of
from edgepose.bench.device_info import fingerprint, package_version
from edgepose.bench.fleet import Host, parse_host
from tests.conftest import cli_env
from tests.ssh_board import board_edgepose, free_port, keygen, start_sshd

# Few frames: these tests check what is stored and said, not the timings.
QUICK = ("--runs", "4", "--warmup", "1", "--threads", "1")
TWIN = "pi5-bench-b"


@pytest.fixture(scope="module")
def lab(tmp_path_factory, model_dir):
    """Three boards: `good` and `twin` accept our key (`twin` under a hostname of its own, so it fingerprints
    as another device), `stranger` knows another key; all three host keys in known_hosts."""
    root = tmp_path_factory.mktemp("fleet")
    ours, theirs = keygen(root / "id_ours"), keygen(root / "id_theirs")
    good = start_sshd(root / "good", [ours])
    twin = start_sshd(root / "twin", [ours], hostname=TWIN)
    stranger = start_sshd(root / "stranger", [theirs])
    known = root / "known_hosts"
    known.write_text(good.known_hosts_line + twin.known_hosts_line + stranger.known_hosts_line)
    try:
        yield {
            "root": root,
            "good": good,
            "twin": twin,
            "stranger": stranger,
            "key": root / "id_ours",
            "known": known,
            "board": board_edgepose(root),
            "env": cli_env(model_dir, root / "cache"),
        }
    finally:
        for server in (good, twin, stranger):
            server.stop()


def fleet_cli(lab, *args, known: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    base = [sys.executable, "-m", "edgepose.cli", "bench", *QUICK, "--identity", lab["key"]]
    base += ["--known-hosts", known or lab["known"], "--remote-cmd", lab["board"]]
    return subprocess.run(
        [*map(str, base), *map(str, args)], capture_output=True, text=True, env=lab["env"], timeout=timeout
    )


def stored(db: Path) -> list[dict]:
    with sqlite3.connect(db) as con:
        return [json.loads(d) for (d,) in con.execute("SELECT document FROM runs ORDER BY rowid")]


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgepose: error: ")]


def test_host_spellings():
    assert parse_host("pi@board") == Host("pi@board", "board", None, "pi")
    assert parse_host("board:2222") == Host("board:2222", "board", 2222, None)
    assert parse_host("pi@[fe80::1]:22") == Host("pi@[fe80::1]:22", "fe80::1", 22, "pi")
    for bad in ("pi@", "board:0", "board:99999", "a b", "pi@board:x"):
        with pytest.raises(Exception, match="expected \\[user@\\]host\\[:port\\]"):
            parse_host(bad)


def test_two_hosts_two_stored_runs_and_files_copied_by_sha256(lab, tmp_path, one_person_photo, model_dir):
    good, twin = lab["good"], lab["twin"]
    db, out, remote = tmp_path / "fleet.sqlite", tmp_path / "fleet.json", tmp_path / "board-files"
    hosts = ["--host", f"{good.user}@127.0.0.1:{good.port}", "--host", f"127.0.0.1:{twin.port}"]
    args = [*hosts, "-m", "movenet-lightning-int8", "-m", "blazepose-full", "--input", one_person_photo, "-e", "squat"]
    args += ["--remote-dir", remote, "--db", db, "--json", out]
    done = fleet_cli(lab, *args)
    assert done.returncode == 0, done.stderr
    runs = stored(db)
    assert len(runs) == 2 and len({r["run_id"] for r in runs}) == 2
    here = fingerprint()
    # Each board fingerprints itself: this machine through its second venv, once under its own hostname and
    # once under the twin's, which makes it another device.
    assert sorted(r["label"] for r in runs) == sorted([here["hostname"], TWIN])
    assert here["device_id"] in {r["device"]["device_id"] for r in runs}
    assert len({r["device"]["device_id"] for r in runs}) == 2
    for run in runs:
        assert run["device"]["cpu"] == here["cpu"] and run["device"]["cores"] == here["cores"]
        assert run["edgepose_version"] == package_version("edgepose")
        assert run["input"]["kind"] == "image" and run["input"]["path"].startswith(str(remote))
        assert run["settings"]["runs"] == 4 and run["settings"]["exercise"] == "squat"  # the options went along
        by_model = {r["model"]: r for r in run["results"]}
        assert set(by_model) == {"movenet-lightning-int8", "blazepose-full"}  # registry names, as on this side
        for r in by_model.values():
            assert r["poses_per_frame"] == 1.0 and r["frames"] == 4 and r["pipeline_ms"]["p50"] > 0
            assert r["threads"] == 1 and r["fitness_ms"]["n"] == 4
        # blazepose-full was copied into the board's model folder and verified there; the default model is
        # bundled in the board's edgepose (same version) and was not sent.
        blaze = by_model["blazepose-full"]
        assert blaze["model_path"] == str(remote / "models" / REGISTRY["blazepose-full"].filename)
        assert blaze["model_sha256"] == sha256_of(model_dir / REGISTRY["blazepose-full"].filename)
        assert "/assets/models/" in by_model["movenet-lightning-int8"]["model_path"]
    assert json.loads(out.read_text()) == runs  # `bench import` reads this list back
    assert len([line for line in done.stderr.splitlines() if "stored run" in line]) == 2, done.stderr
    # One table, both boards: a row per board and model.
    assert done.stdout.count("blazepose-full") == 2 and done.stdout.count(TWIN) == 2
    compare = subprocess.run(
        [sys.executable, "-m", "edgepose.cli", "bench", "compare", "--db", db, "--plot", tmp_path / "boards.png"],
        capture_output=True,
        text=True,
        env=lab["env"],
        timeout=60,
    )
    assert compare.returncode == 0 and compare.stdout.count(TWIN) == 2, compare.stderr
    assert (tmp_path / "boards.png").read_bytes()[:4] == b"\x89PNG"

    # Again: the board has every file (by SHA-256), so nothing is sent; `--json -` owns stdout (tables: stderr).
    again = fleet_cli(lab, "--host", f"127.0.0.1:{good.port}", *args[4:-2], "--json", "-")
    assert again.returncode == 0 and "copied" not in again.stderr, again.stderr
    (document,) = json.loads(again.stdout)
    assert document["label"] == here["hostname"] and "blazepose-full" in again.stderr
    copy = remote / "models" / REGISTRY["blazepose-full"].filename
    copy.write_bytes(copy.read_bytes()[:1000])
    third = fleet_cli(lab, "--host", f"127.0.0.1:{good.port}", *args[4:-2])
    assert third.returncode == 0 and "copied blazepose_landmark_full.tflite" in third.stderr, third.stderr
    assert sha256_of(copy) == sha256_of(model_dir / REGISTRY["blazepose-full"].filename)
    assert len(stored(db)) == 4


def test_unreachable_wrong_key_and_silent_hosts_are_one_line_each(lab, tmp_path):
    good, stranger = lab["good"], lab["stranger"]
    closed = free_port()
    silent = socket.socket()  # accepts TCP, never says a word of SSH
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    quiet = silent.getsockname()[1]
    db = tmp_path / "fleet.sqlite"
    try:
        done = fleet_cli(
            lab,
            *("--host", f"127.0.0.1:{closed}", "--host", f"127.0.0.1:{stranger.port}"),
            *("--host", f"127.0.0.1:{quiet}", "--host", f"127.0.0.1:{good.port}"),
            *("--ssh-timeout", "3", "--db", db, "--remote-dir", tmp_path / "files"),
        )
    finally:
        silent.close()
    assert done.returncode == 1
    lines = errors(done.stderr)
    assert len(lines) == 3, done.stderr
    assert f"edgepose: error: 127.0.0.1:{closed}: cannot connect port {closed}: Connection refused" in lines
    assert any(f"127.0.0.1:{stranger.port}: authentication refused" in line for line in lines), lines
    assert f"edgepose: error: 127.0.0.1:{quiet}: no answer within 3 s" in lines
    assert "Traceback" not in done.stderr
    runs = stored(db)
    assert len(runs) == 1 and runs[0]["results"][0]["model"] == "movenet-lightning-int8"  # the good host


def test_host_keys_are_checked_never_silently_accepted(lab, tmp_path):
    good = lab["good"]
    host = ["--host", f"127.0.0.1:{good.port}", "--remote-dir", tmp_path / "files"]
    # A board whose key differs from the one listed: refused, --accept-new-host-key or not.
    forged = tmp_path / "forged_known_hosts"
    other = keygen(tmp_path / "other_host_key")
    forged.write_text(f"[127.0.0.1]:{good.port} {other}\n")
    for extra in ([], ["--accept-new-host-key"]):
        db = tmp_path / f"mismatch{len(extra)}.sqlite"
        done = fleet_cli(lab, *host, *extra, "--db", db, known=forged)
        assert done.returncode == 1
        (line,) = errors(done.stderr)
        assert "HOST KEY MISMATCH" in line and f"ssh-keygen -f {forged} -R '[127.0.0.1]:{good.port}'" in line
        assert stored(db) == []
    assert forged.read_text() == f"[127.0.0.1]:{good.port} {other}\n"

    # A key marked @revoked is never trusted, --accept-new-host-key or not.
    revoked = tmp_path / "revoked_known_hosts"
    revoked.write_text(f"@revoked [127.0.0.1]:{good.port} {good.host_key}\n")
    done = fleet_cli(lab, *host, "--accept-new-host-key", "--db", tmp_path / "revoked.sqlite", known=revoked)
    (line,) = errors(done.stderr)
    assert done.returncode == 1 and "is marked @revoked in known_hosts: refused" in line
    assert revoked.read_text() == f"@revoked [127.0.0.1]:{good.port} {good.host_key}\n"

    # A board not listed at all: refused, naming its fingerprint; trusted (and recorded) only when asked.
    fresh = tmp_path / "ssh" / "known_hosts"
    done = fleet_cli(lab, *host, "--db", tmp_path / "new.sqlite", known=fresh)
    assert done.returncode == 1
    (line,) = errors(done.stderr)
    assert "is not in" in line and "SHA256:" in line and "--accept-new-host-key" in line
    assert not fresh.exists()
    done = fleet_cli(lab, *host, "--accept-new-host-key", "--db", tmp_path / "new.sqlite", known=fresh)
    assert done.returncode == 0, done.stderr
    assert fresh.read_text() == good.known_hosts_line
    done = fleet_cli(lab, *host, "--db", tmp_path / "new.sqlite", known=fresh)
    assert done.returncode == 0, done.stderr
    assert len(stored(tmp_path / "new.sqlite")) == 2


def test_missing_or_different_edgepose_on_the_board(lab, tmp_path):
    good = lab["good"]
    host = ["--host", f"127.0.0.1:{good.port}", "--remote-dir", tmp_path / "files", "--db", tmp_path / "db.sqlite"]
    missing = fleet_cli(lab, *host, "--remote-cmd", "/nonexistent/venv/bin/edgepose")
    (line,) = errors(missing.stderr)
    assert missing.returncode == 1 and "'/nonexistent/venv/bin/edgepose' not found on the board" in line
    old = tmp_path / "old-edgepose"
    old.write_text("#!/bin/sh\necho edgepose 0.0.1\n")
    old.chmod(0o755)
    other = fleet_cli(lab, *host, "--remote-cmd", old)
    (line,) = errors(other.stderr)
    assert other.returncode == 1 and f"the board has edgepose 0.0.1, this machine {package_version('edgepose')}" in line
    # A remote bench that fails is one line, with the board's own message, never a traceback here.
    broken = tmp_path / "broken-edgepose"
    broken.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && exec {lab["board"]} --version\n'
        'echo "edgepose: error: the board ran out of memory" >&2\nexit 2\n'
    )
    broken.chmod(0o755)
    bad = fleet_cli(lab, *host, "--remote-cmd", broken)
    (line,) = errors(bad.stderr)
    assert bad.returncode == 1
    assert line == f"edgepose: error: 127.0.0.1:{good.port}: remote bench failed (exit 2): the board ran out of memory"
    # Some configurations failing there: the others are stored, the board's line is said, exit 1 as locally.
    partial = fleet_cli(lab, *host, "--backend", "litert,edgetpu")
    (line,) = errors(partial.stderr)
    assert partial.returncode == 1 and line.startswith(f"edgepose: error: 127.0.0.1:{good.port}: ")
    assert "edgetpu" in line and "stored run" in partial.stderr
    assert [r["backend"] for r in stored(tmp_path / "db.sqlite")[0]["results"]] == ["litert"]
    # And options no board could take are refused here, before any board is contacted.
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    for extra, message in (
        (["--input", notes], f"{notes}: --input must be an image or a video file"),
        (["--warmup", "0"], "--warmup must be at least 1"),
        (["--remote-dir", "/"], "--remote-dir '/': give a folder of its own"),
    ):
        refused = fleet_cli(lab, *host, *extra)
        assert refused.returncode == 2 and refused.stderr.startswith(f"edgepose: error: {message}"), refused.stderr


def test_ctrl_c_stops_the_remote_runs(lab, tmp_path):
    good = lab["good"]
    marker = tmp_path / "ctrl-c-files"  # names the remote run in the process list
    # Through a wrapper that does not exec (as `uv run` or `conda run` would not): its python must go too.
    wrapper = tmp_path / "wrapped-edgepose"
    wrapper.write_text(f'#!/bin/sh\n{lab["board"]} "$@"\n')
    wrapper.chmod(0o755)
    args = [sys.executable, "-m", "edgepose.cli", "bench", "--identity", lab["key"], "--known-hosts", lab["known"]]
    args += ["--remote-cmd", wrapper, "--host", f"127.0.0.1:{good.port}", "--remote-dir", marker]
    args += ["--duration", "120", "--db", tmp_path / "db.sqlite"]
    child = subprocess.Popen(list(map(str, args)), stderr=subprocess.PIPE, text=True, env=lab["env"])
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(child.stderr.read()), daemon=True)
    reader.start()
    try:
        assert _wait_for(lambda: _remote_bench_pids(marker), 60), "the remote bench never started"
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    reader.join(5)
    assert code == 130, err
    assert "interrupted: remote runs stopped; 0 of 1 board(s) finished" in err[0]
    assert "Traceback" not in err[0]
    assert _wait_for(lambda: not _remote_bench_pids(marker), 10), "the remote bench is still running"
    assert stored(tmp_path / "db.sqlite") == []


def _remote_bench_pids(marker: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        # The board's python, by its arguments and by the model folder the fleet run gave it.
        if b"--no-db" in argv and f"EDGEPOSE_MODEL_DIR={marker}/models".encode() in environ:
            pids.append(int(entry.name))
    return pids


def _wait_for(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_ssh_options_need_host_and_asyncssh_said_in_one_line(tmp_path, model_dir):
    env = cli_env(model_dir, tmp_path / "cache")
    alone = subprocess.run(
        [sys.executable, "-m", "edgepose.cli", "bench", "--identity", "k", "--accept-new-host-key", "--no-db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert alone.returncode == 2
    assert (
        alone.stderr
        == "edgepose: error: --identity, --accept-new-host-key: only with --host (a bench on boards over SSH)\n"
    )
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "asyncssh.py").write_text("raise ImportError('asyncssh blocked for this test')\n")
    env = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), env.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "edgepose.cli", "bench", "--host", "127.0.0.1:1", "--no-db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "edgepose: error: --host needs asyncssh: pip install 'edgepose[fleet]'"
