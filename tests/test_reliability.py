"""Issue 12's hostile-but-fair cases, each reproduced on real files: damaged videos, unreadable and
special inputs, outputs that cannot be written, outputs that must survive failures and kills, closed
stdout, out-of-range options, and threads sharing one estimator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.errors import EdgeposeError
from tests.conftest import DATA_DIR, Cli, cli_env, json_lines, pose_xy
from tests.crafted_files import garbled_video, truncated_video

SQUATS = DATA_DIR / "fitness" / "pose_squats.mp4"  # 65 frames, index at the end
SQUATS_FRAMES = 65
PHOTOS = sorted((DATA_DIR / "coco").glob("*.jpg"))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def as_ordinary_user() -> list[str]:
    """A command prefix under which file modes apply: root ignores them, so as root the child runs
    without the two capabilities that let it (CI runs as root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root: util-linux's setpriv is needed to test unreadable files"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def run_as_user(cli: Cli, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*as_ordinary_user(), sys.executable, "-m", "edgepose.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=120,
        check=False,
    )


def one_line(res: subprocess.CompletedProcess[str], level: str = "error") -> str:
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"edgepose: {level}: "), lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def video_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# Outputs ----------------------------------------------------------------------------------------


def test_an_existing_output_survives_a_batch_where_every_input_fails(cli, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("".join(f"{i}\n" for i in range(300)))
    (tmp_path / "text.jpg").write_text("not an image")
    res = cli("run", tmp_path / "text.jpg", tmp_path / "missing.jpg", "-o", out)
    assert res.returncode == 1
    assert len(out.read_text().splitlines()) == 300
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["read-only folder", "a directory", "under a file"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(cli, tmp_path, kind):
    (tmp_path / "ro").mkdir(mode=0o555)
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    target = {"read-only folder": "ro/x.jsonl", "a directory": "dir", "under a file": "file/x.jsonl"}[kind]
    # (--draw onto a directory is valid: the overlay goes inside it.)
    for flag in ("-o",) if kind == "a directory" else ("-o", "--draw"):
        res = run_as_user(cli, "run", PHOTOS[0], flag, tmp_path / target)
        assert res.returncode == 2, res.stderr
        line = one_line(res)
        assert f"{tmp_path / target}: " in line and "edgepose-tmp" not in line, line
        assert res.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file", "ro"]
    assert list((tmp_path / "ro").iterdir()) == [] and list((tmp_path / "dir").iterdir()) == []


def test_a_video_overlay_onto_a_read_only_folder_gives_the_real_reason(cli, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    res = run_as_user(cli, "run", SQUATS, "--max-frames", "3", "--draw", tmp_path / "ro" / "out.mp4")
    assert res.returncode == 2
    line = one_line(res)
    assert f"{tmp_path / 'ro' / 'out.mp4'}: cannot write: " in line and "not writable" in line, line


def test_two_runs_drawing_the_same_video_leave_one_complete_file(cli, tmp_path):
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "edgepose.cli", "run", str(SQUATS), "--max-frames", "30", "--draw", str(out)]
    procs = [
        subprocess.Popen(cmd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert video_frames(out) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_inputs_with_one_name_from_two_folders_keep_both_overlays(cli, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    shutil.copy(PHOTOS[0], tmp_path / "a" / "p.jpg")
    shutil.copy(PHOTOS[1], tmp_path / "b" / "p.jpg")
    res = cli("run", tmp_path / "a" / "p.jpg", tmp_path / "b" / "p.jpg", "--draw", tmp_path / "drawn")
    assert res.returncode == 0, res.stderr
    drawn = tmp_path / "drawn"
    assert sorted(str(p.relative_to(drawn)) for p in drawn.rglob("*.jpg")) == ["a/p.jpg", "b/p.jpg"]
    # Each overlay is its own photo's (different sizes), not one written twice.
    from PIL import Image

    sizes = {Image.open(drawn / f"{f}/p.jpg").size for f in ("a", "b")}
    assert sizes == {Image.open(p).size for p in PHOTOS[:2]}


def test_names_that_collide_in_one_folder_get_numbered(cli, tmp_path):
    # Different files on a case-sensitive file system; one name on a case-insensitive one.
    shutil.copy(PHOTOS[0], tmp_path / "p.jpg")
    shutil.copy(PHOTOS[1], tmp_path / "p.JPG")
    res = cli("run", tmp_path / "p.jpg", tmp_path / "p.JPG", "--draw", tmp_path / "drawn")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["p-2.JPG", "p.jpg"]


def test_stale_temporaries_of_dead_writers_of_this_host_only_are_removed(tmp_path):
    from edgepose.io.atomic import PendingFile, remove_stale_temps

    target = tmp_path / "out.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    host = socket.gethostname().replace("-", "_")
    ours_dead = tmp_path / f".out.edgepose-tmp-{pid}@{host}-abc.jsonl"
    other_host = tmp_path / f".out.edgepose-tmp-{pid}@another.host-abc.jsonl"
    alive = PendingFile(target)  # this process, alive
    for f in (ours_dead, other_host):
        f.write_text("x")
    assert remove_stale_temps(target) == 1
    assert not ours_dead.exists() and other_host.exists() and alive.path.exists()
    alive.discard()


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".out.edgepose-tmp-*.jsonl"))


def _run_writing(cli: Cli, out: Path) -> subprocess.Popen:
    """A multi-person run on the squat clip writing `out` (an old version in place), caught once its
    temporary holds results."""
    out.write_text("old\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgepose.cli", "run", SQUATS, "--mode", "multi", "-o", out],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: _temps(out.parent) and _temps(out.parent)[0].stat().st_size > 0)
    return proc


def test_sigkill_leaves_a_temporary_that_the_next_run_removes(cli, tmp_path):
    out = tmp_path / "out.jsonl"
    proc = _run_writing(cli, out)
    proc.kill()
    proc.communicate(timeout=30)
    assert len(_temps(tmp_path)) == 1 and out.read_text() == "old\n"
    res = cli("run", PHOTOS[0], "-o", out)
    assert res.returncode == 0, res.stderr
    assert _temps(tmp_path) == [] and len(out.read_text().splitlines()) == 1


def test_sigterm_is_handled_like_ctrl_c(cli, tmp_path):
    out = tmp_path / "out.jsonl"
    proc = _run_writing(cli, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.splitlines() == ["edgepose: terminated"]
    assert _temps(tmp_path) == [] and out.read_text() == "old\n"


def test_closed_stdout_is_one_line(cli):
    res = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m edgepose.cli run "{PHOTOS[0]}" >&-'],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=120,
        check=False,
    )
    assert res.returncode == 1
    assert "standard output is closed" in one_line(res)


# Inputs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_a_damaged_video_is_reported_with_the_frame_where_decoding_stopped(cli, tmp_path, damage):
    make = truncated_video if damage == "truncated" else garbled_video
    clip = make(SQUATS, tmp_path / f"{damage}.mp4")
    out = tmp_path / "out.jsonl"
    res = cli("run", clip, "-o", out)
    assert res.returncode == 1, res.stderr
    decoded = len(json_lines(out.read_text()))
    assert 10 < decoded < SQUATS_FRAMES - 10  # half the file: about half the frames
    lines = res.stderr.splitlines()  # the warning and the batch summary; no FFmpeg lines
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("edgepose: 1 input(s) failed")), lines
    assert lines[0].startswith("edgepose: warning: ")
    assert f"stopped at frame {decoded} of the {SQUATS_FRAMES}" in lines[0] and "--allow-partial" in lines[0]

    accepted = cli("run", clip, "-o", out, "--allow-partial")
    assert accepted.returncode == 0, accepted.stderr
    assert f"stopped at frame {decoded} of the {SQUATS_FRAMES}" in one_line(accepted, "warning")
    assert len(json_lines(out.read_text())) == decoded


def test_a_whole_video_and_max_frames_are_not_partial(cli, tmp_path):
    res = cli("run", SQUATS, "--max-frames", "10")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert len(json_lines(res.stdout)) == 10


def test_an_unreadable_input_is_one_line_and_the_batch_goes_on(cli, tmp_path):
    locked, good = tmp_path / "locked.jpg", tmp_path / "good.jpg"
    shutil.copy(PHOTOS[0], locked)
    shutil.copy(PHOTOS[0], good)
    locked.chmod(0)
    res = run_as_user(cli, "run", locked, good, "-o", tmp_path / "out.jsonl")
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines == [
        f"edgepose: error: {locked}: cannot read: permission denied",
        f"edgepose: 1 input(s) failed: {locked}",
    ]
    assert [f["source"] for f in json_lines((tmp_path / "out.jsonl").read_text())] == [str(good)]


def test_a_file_in_a_folder_that_cannot_be_entered_is_one_line(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(PHOTOS[0], locked / "a.jpg")
    locked.chmod(0o600)  # readable listing, no entry
    try:
        res = run_as_user(cli, "run", locked / "a.jpg", locked, PHOTOS[0])
    finally:
        locked.chmod(0o700)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("edgepose: error: ")]
    assert errors[0] == f"edgepose: error: {locked / 'a.jpg'}: cannot read: Permission denied", errors
    assert len(errors) == 2 and errors[1].startswith(f"edgepose: error: {locked}: ")
    assert [f["source"] for f in json_lines(res.stdout)] == [str(PHOTOS[0])]


def test_a_fifo_is_not_a_regular_file(cli, tmp_path):
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    res = cli("run", fifo, PHOTOS[0])  # would block forever if opened
    assert res.returncode == 1
    assert f"edgepose: error: {fifo}: not a regular file" in res.stderr.splitlines()
    assert len(json_lines(res.stdout)) == 1


# Options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--min-score", "2"), "--min-score must be a number from 0 to 1, got 2.0"),
        (("--min-score", "nan"), "--min-score must be a number from 0 to 1, got nan"),
        (("--min-score", "-0.1"), "--min-score must be a number from 0 to 1"),
        (("--threads", "0"), "--threads must be an integer from 1 to 64, got 0"),
        (("--threads", "-1"), "--threads must be an integer from 1 to 64, got -1"),
        (("--threads", "two"), "Invalid value for '--threads'"),
        (("--max-frames", "0"), "Invalid value for '--max-frames'"),
    ],
)
def test_option_values_out_of_range_are_one_line(cli, args, fragment):
    res = cli("run", PHOTOS[0], *args)
    assert res.returncode == 2
    assert fragment in one_line(res)
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("threads", 0, "threads must be an integer from 1 to 64, got 0"),
        ("threads", -1, "threads must be an integer from 1 to 64, got -1"),
        ("threads", 2.5, "threads must be an integer"),
        ("min_pose_score", 2.0, "min_pose_score must be a number from 0 to 1"),
        ("min_pose_score", float("nan"), "min_pose_score must be a number from 0 to 1"),
        ("min_keypoint_score", -1.0, "min_keypoint_score must be a number from 0 to 1"),
        ("max_people", 0, "max_people must be an integer of at least 1"),
    ],
)
def test_api_options_out_of_range_are_refused_before_the_model_loads(field, value, fragment):
    with pytest.raises(EdgeposeError, match=fragment):
        PoseEstimator.create_from_options(PoseEstimatorOptions(**{field: value}))


def test_api_accepts_numpy_scalars():
    options = PoseEstimatorOptions(threads=np.int64(1), min_pose_score=np.float32(0.2), max_people=np.int32(2))
    with PoseEstimator.create_from_options(options) as est:
        assert len(est.estimate(PHOTOS[0])) == 1


def test_api_refuses_a_timestamp_that_is_not_a_finite_number(estimator):
    with pytest.raises(EdgeposeError, match="finite number"):
        estimator.estimate_for_video(np.zeros((64, 64, 3), np.uint8), float("nan"))


# Threads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_threads_sharing_one_estimator_get_the_same_poses_as_one_thread(mode):
    from PIL import Image

    frames = [np.asarray(Image.open(p).convert("RGB")) for p in PHOTOS]
    with PoseEstimator.create_from_options(PoseEstimatorOptions(mode=mode, threads=1)) as est:
        expected = [[pose_xy(p) for p in est.estimate(f)] for f in frames]
        results: dict[tuple[int, int], list[np.ndarray]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def work(worker: int) -> None:
            try:
                start.wait()
                for i in range(6):
                    k = (worker + i) % len(frames)
                    results[worker, i] = [pose_xy(p) for p in est.estimate(frames[k])]
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert errors == []
    assert len(results) == 24
    for (worker, i), poses in results.items():
        want = expected[(worker + i) % len(frames)]
        assert len(poses) == len(want) and all(np.array_equal(a, b) for a, b in zip(poses, want)), (worker, i)
