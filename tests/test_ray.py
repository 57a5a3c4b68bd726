"""`run --ray` and `eval --ray` on a real local Ray cluster (2 workers): the same output as the local run.

Every case runs the real CLI twice, locally and with --ray, on the shared photos and videos, and compares
what a user gets: the JSON lines (the per-frame timings excepted: they are measured), the overlays byte
for byte, the stderr lines, the exit code and the COCO numbers. Each --ray run starts and stops its own
local cluster (~5 s on the 2-core CI machine).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, Cli, cli_env

COCO_DIR = DATA_DIR / "coco"
ANNOTATIONS = COCO_DIR / "test_coco.json"
SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"  # 65 frames of 720x1280: a task of a few seconds
RAY = ("--ray", "--ray-workers", "2")
NO_RAY_LINE = "edgepose: error: --ray needs Ray: pip install 'edgepose[ray]'"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def frames(text: str) -> list[dict]:
    """The JSON lines without their timings, the one field that differs from run to run."""
    out = []
    for line in text.splitlines():
        doc = json.loads(line)
        assert isinstance(doc.pop("timings_ms"), dict)
        out.append(doc)
    return out


def same_run(local: subprocess.CompletedProcess[str], ray: subprocess.CompletedProcess[str]) -> None:
    assert ray.returncode == local.returncode, ray.stderr
    assert ray.stderr == local.stderr  # Ray's own start-up and worker chatter included: there is none
    assert frames(ray.stdout) == frames(local.stdout)


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())  # no temporary left behind either
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_run_single_mode_with_overlays_matches_the_local_run(cli, demo_video, tmp_path):
    outs = {}
    for how, extra in (("local", ()), ("ray", RAY)):
        out, draw = tmp_path / f"{how}.jsonl", tmp_path / f"{how}-draw"
        res = cli("run", COCO_DIR, demo_video, "-o", out, "--draw", draw, *extra)
        assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stderr
        outs[how] = (out.read_text(), draw)
    assert frames(outs["ray"][0]) == frames(outs["local"][0])
    sources = [f["source"] for f in frames(outs["local"][0])]
    assert sources == sorted(str(p) for p in COCO_DIR.glob("*.jpg")) + [str(demo_video)] * 5
    # Four photo overlays and the video's, written by the workers under the names the local run uses; the
    # video re-encoded from the same frames is the same file.
    assert len(list(outs["local"][1].iterdir())) == 5
    same_files(outs["local"][1], outs["ray"][1])


def test_run_multi_mode_on_stdout_matches_the_local_run(cli, demo_video):
    # Photos after the video: a long task ahead of short ones, whose lines must still come after its own.
    args = ("run", demo_video, COCO_DIR, "--mode", "multi")
    local, ray = cli(*args), cli(*args, *RAY, "--ray-batch", "1")
    assert local.returncode == 0, local.stderr
    same_run(local, ray)
    assert len(frames(ray.stdout)) == 9


def test_eval_gives_the_same_numbers(cli):
    args = ("eval", "--annotations", ANNOTATIONS, "--images", COCO_DIR, "--mode", "multi", "--json", "-")
    args += ("--compare", "posenet-mobilenet")  # each worker holds both models, as the local run does
    local, ray = cli(*args), cli(*args, *RAY)
    assert local.returncode == 0 and ray.returncode == 0, ray.stderr
    a, b = json.loads(local.stdout), json.loads(ray.stdout)
    for side in ("model", "compare"):
        assert a[side]["ap"] > 0.4  # a real score, not an empty one (measured 0.652 and 0.450)
        for key in ("ap", "ap50", "ap75", "ar", "mean_oks", "predictions", "per_person"):
            assert b[side][key] == a[side][key], (side, key)
    assert b["delta"] == a["delta"]


def test_bad_inputs_among_good_ones_fail_with_the_same_lines_and_summary(cli, tmp_path):
    photos = sorted(COCO_DIR.glob("*.jpg"))
    truncated = tmp_path / "truncated.jpg"
    data = photos[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture\n")
    inputs = [photos[0], truncated, photos[1], notes, tmp_path / "missing.jpg", photos[2]]
    local, ray = cli("run", *inputs), cli("run", *inputs, *RAY, "--ray-batch", "2")
    assert local.returncode == 1
    same_run(local, ray)
    lines = ray.stderr.splitlines()
    assert len(lines) == 4 and lines[-1].startswith("edgepose: 3 input(s) failed: "), ray.stderr
    assert "Traceback" not in ray.stderr
    assert [f["source"] for f in frames(ray.stdout)] == [str(photos[0]), str(photos[1]), str(photos[2])]


def _worker_running_a_task(marker: str) -> int | None:
    """The pid of one of this run's Ray workers while it executes a task (Ray titles the process
    `ray::Class.method` then), found by the marker in its environment (inherited from the driver)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "cmdline").read_bytes().startswith(b"ray::EdgeposeWorker.call"):
                continue
            if marker.encode() in (entry / "environ").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost_or_repeated(cli, demo_video, tmp_path):
    inputs = (SQUATS, COCO_DIR, demo_video)
    local = cli("run", *inputs)
    assert local.returncode == 0, local.stderr
    marker = f"EDGEPOSE_TEST_RUN={uuid.uuid4().hex}"
    env = dict(cli.env, EDGEPOSE_TEST_RUN=marker.split("=", 1)[1])
    draw = tmp_path / "draw"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgepose.cli", "run", *map(str, inputs), *RAY, "--draw", str(draw)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        killed = _worker_running_a_task(marker)
        if killed is not None:
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    out, err = proc.communicate(timeout=120)
    assert killed is not None, "no worker was seen running a task"
    ray = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    same_run(local, ray)
    seen = collections.Counter((f["source"], f["frame"]) for f in frames(out))
    assert set(seen.values()) == {1} and len(seen) == 65 + 4 + 5
    # The killed attempt's half-written overlay was removed by the retry, which wrote the whole one.
    assert sorted(p.name for p in draw.iterdir()) == sorted(
        [p.name for p in COCO_DIR.glob("*.jpg")] + ["demo.mp4", "pose_squats.mp4"]
    )


def test_errors_before_any_input_are_one_line(cli, tmp_path):
    photo = COCO_DIR / "000000000785.jpg"
    # The model is checked on the driver first: the very line of the local run.
    local, ray = cli("run", photo, "--model", "nope"), cli("run", photo, "--model", "nope", "--ray")
    assert ray.returncode == local.returncode == 2
    assert ray.stderr == local.stderr and len(ray.stderr.splitlines()) == 1
    for args, line in (
        ((photo, "--ray", "--camera", "0"), "edgepose: error: --camera runs on this machine only"),
        ((photo, "--ray-workers", "2"), "edgepose: error: --ray-workers needs --ray"),
        ((photo, "--ray", "--ray-address", "127.0.0.1:1"), "edgepose: error: cannot connect to --ray-address"),
    ):
        res = cli("run", *args)
        assert res.returncode == 2 and res.stderr.startswith(line) and len(res.stderr.splitlines()) == 1, res.stderr


@pytest.mark.parametrize("command", ["run", "eval"])
def test_without_ray_installed_the_error_is_one_line(cli, command, tmp_path):
    # `import ray` fails as it does where the extra is not installed.
    args = ["run", str(COCO_DIR), "--ray"]
    if command == "eval":
        args = ["eval", "--annotations", str(ANNOTATIONS), "--images", str(COCO_DIR), "--ray"]
    code = f"import sys\nsys.modules['ray'] = None\nfrom edgepose.cli import main\nsys.argv = ['edgepose', *{args!r}]\n"
    code += "main()"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli.env, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (2, "", NO_RAY_LINE + "\n")


def test_ray_is_imported_only_for_ray(cli, tmp_path):
    code = (
        "import sys\nfrom edgepose.cli import main\nimport atexit\n"
        "atexit.register(lambda: print('ray' in sys.modules, file=sys.stderr))\n"
        f"sys.argv = ['edgepose', 'run', {str(COCO_DIR / '000000000785.jpg')!r}, '-o', {str(tmp_path / 'o.jsonl')!r}]\n"
        "main()"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli.env, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "False", res.stderr


def test_an_existing_cluster_by_address_gives_the_same_output(cli, tmp_path):
    """`ray start --head` (as a user's cluster is started), then `run --ray --ray-address`: the run connects,
    starts its workers there, and leaves the cluster running; without the token Ray's default
    authentication asks for, one line says so."""
    import tempfile

    from tests.ssh_board import free_port

    ray = str(Path(sys.executable).with_name("ray"))
    # Short: Ray's Unix sockets live under it, and a socket path has at most 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="eprh"))
    port = free_port()
    env = {**cli.env, "RAY_AUTH_MODE": "token"}
    head = [ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    subprocess.run([*head, "--disable-usage-stats", f"--temp-dir={temp}"], env=env, check=True, capture_output=True)
    try:
        args = (COCO_DIR, "--threads", "1")
        local = cli("run", *args)
        attached = Cli(env)("run", *args, *RAY, "--ray-address", f"127.0.0.1:{port}")
        same_run(local, attached)
        status = subprocess.run([ray, "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True)
        assert status.returncode == 0  # still up: a cluster the run did not start is not stopped by it
        refused = cli("run", *args, "--ray", "--ray-address", f"127.0.0.1:{port}")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "needs RAY_AUTH_MODE=token and its token" in refused.stderr
    finally:
        # This cluster's processes only (`ray stop` would stop every Ray on the machine): those naming its
        # folder, and their children (Ray's agents and workers rename themselves).
        parents: dict[int, int] = {}
        ours: set[int] = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    if str(temp).encode() in (entry / "cmdline").read_bytes():
                        ours.add(int(entry.name))
                except (OSError, ValueError, IndexError):
                    pass
        while True:
            children = {pid for pid, parent in parents.items() if parent in ours} - ours
            if not children:
                break
            ours |= children
        for pid in ours:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_full_disk_and_an_oversized_thread_count_are_the_local_run_too(cli, tmp_path):
    """Output that cannot be written is each input's line and the summary, as locally (not an internal
    error); --threads above the cores gives a cluster that fits the worker instead of waiting for ever."""
    photos = sorted(COCO_DIR.glob("*.jpg"))[:3]
    runs = []
    for extra in ((), (*RAY, "--ray-batch", "1")):
        with open("/dev/full", "w") as full:
            runs.append(
                subprocess.run(
                    [sys.executable, "-m", "edgepose.cli", "run", *map(str, photos), *extra],
                    stdout=full,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=cli.env,
                    timeout=120,
                )
            )
    local, ray = runs
    assert local.returncode == ray.returncode == 1
    assert ray.stderr == local.stderr and local.stderr.count("No space left on device") == 3, ray.stderr
    oversized = cli("run", photos[0], "--ray", "--threads", "4")
    assert oversized.returncode == 0 and frames(oversized.stdout) == frames(cli("run", photos[0]).stdout)


def test_eval_reports_the_first_unreadable_image_in_input_order(cli, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    names = [i["file_name"] for i in json.loads(ANNOTATIONS.read_text())["images"]]
    for name in names:
        (images / name).write_bytes((COCO_DIR / name).read_bytes())
    for name in (names[0], names[-1]):  # the last one's task may well come back first
        (images / name).write_bytes(b"\xff\xd8 not a jpeg")
    args = ("eval", "--annotations", ANNOTATIONS, "--images", images)
    local = cli(*args)
    assert local.returncode == 2 and names[0] in local.stderr
    for _ in range(2):
        ray = cli(*args, *RAY, "--ray-batch", "1")
        assert (ray.returncode, ray.stderr) == (local.returncode, local.stderr)


def test_ctrl_c_leaves_no_temporary_overlay(cli, tmp_path):
    draw = tmp_path / "overlays"
    videos = tmp_path / "videos"
    videos.mkdir()
    for n in range(4):
        (videos / f"clip{n}.mp4").symlink_to(SQUATS)
    child = subprocess.Popen(
        [sys.executable, "-m", "edgepose.cli", "run", videos, *RAY, "--draw", draw, "-o", tmp_path / "o.jsonl"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
        start_new_session=True,  # its own session: SIGINT keeps its default action, as at a terminal
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(draw.glob(".*edgepose-tmp*")):
            time.sleep(0.05)
        assert list(draw.glob(".*edgepose-tmp*")), "no overlay was being written"
        os.killpg(child.pid, signal.SIGINT)
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert code == 130, child.stderr.read()
    assert list(draw.glob(".*edgepose-tmp*")) == [] and not (tmp_path / "o.jsonl").exists()
