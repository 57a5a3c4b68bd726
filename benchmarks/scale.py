"""`edgepose run --ray` scaling: a folder of photos on 1 and 2 Ray workers against the local run.

The workload: a folder of --photos JPEGs (default 240) made from the shared COCO and Human-Art photos,
each resized by a factor from 0.5 to 1.6 and some tiled 2x1 or 1x2 (widths ~250 to ~2000 px), then
`edgepose run FOLDER -o OUT.jsonl` with the default model in single mode, every case a whole process
(start-up, model load, decode, inference, JSON lines):

  local           edgepose run FOLDER --threads 1
  ray-1           edgepose run FOLDER --ray --ray-workers 1 --threads 1
  ray-2           edgepose run FOLDER --ray --ray-workers 2 --threads 1

Each case also runs on two photos only (--ray-batch 1: two tasks, so ray-2 starts both its workers): the
fixed cost (interpreter, imports, model; for Ray the local cluster's start and stop and the actors' start).

Steady state, in this process and without the start-up: the job every `run --ray` worker runs (the CLI's
own _RayJob: the local run's _Runner with its output recorded), on the same tasks (8 photos each, the
default --ray-batch) called here one after the other (local) or mapped over an already started pool of 1
or 2 workers (ray-1, ray-2; both pools in one local cluster, the idle one's workers waiting), after a
warm-up, in interleaved rounds. The speed-up of 2 workers over 1 is reported on this
steady state (the issue's target: >= 1.7x on this 2-core machine) and on the whole process. The whole
processes' CPU seconds (user + sys of the process and the descendants it reaped, from wait4) are recorded.

Per-task overhead Ray adds, two ways: (1) a task that does nothing (`EdgeposeWorker.echo`, carrying the
paths of 8 photos) through the same ordered actor pool on a 1-worker local cluster, ms per round trip;
(2) (ray-1 steady - local steady) / tasks: what a real task costs more than in one process.

The whole processes again against a cluster already up (`ray start --head --num-cpus 2`, started once;
`--ray-address`): ray-1-attached, ray-2-attached. A run then pays for connecting and its workers' start only.

Rounds interleave the cases in a rotating order, so that load on a shared machine hits all alike; medians
over --rounds.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/scale.py --label ci-x86_64-2core
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SHARED_DATA, fingerprint, save_result
from PIL import Image

SOURCES = sorted((SHARED_DATA / "coco").glob("*.jpg")) + sorted((SHARED_DATA / "humanart").glob("*.jpg"))
SCALES = (0.5, 0.75, 1.0, 1.25, 1.6)
CASES = {
    "local": ["--threads", "1"],
    "ray-1": ["--ray", "--ray-workers", "1", "--threads", "1"],
    "ray-2": ["--ray", "--ray-workers", "2", "--threads", "1"],
}
# The same runs against a Ray cluster already up (`ray start --head`, as a user's cluster would be): a run
# then pays for connecting and its workers' start, not for starting and stopping a cluster.
ATTACHED = {
    "ray-1-attached": ["--ray", "--ray-workers", "1", "--threads", "1"],
    "ray-2-attached": ["--ray", "--ray-workers", "2", "--threads", "1"],
}
TARGET_SPEEDUP = 1.7


def make_photos(folder: Path, n: int) -> list[tuple[int, int]]:
    """`n` JPEGs of varied sizes from the shared photos; returns their sizes."""
    originals = [Image.open(p).convert("RGB") for p in SOURCES]
    sizes = []
    for i in range(n):
        img = originals[i % len(originals)]
        scale = SCALES[(i // len(originals)) % len(SCALES)]
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
        tiling = i % 3  # 0: as is, 1: two side by side, 2: two stacked (two or more people to find)
        if tiling:
            other = originals[(i + 1) % len(originals)].resize(img.size, Image.BILINEAR)
            w, h = (img.width * 2, img.height) if tiling == 1 else (img.width, img.height * 2)
            canvas = Image.new("RGB", (w, h))
            canvas.paste(img, (0, 0))
            canvas.paste(other, (img.width, 0) if tiling == 1 else (0, img.height))
            img = canvas
        img.save(folder / f"photo_{i:04d}.jpg", quality=90)
        sizes.append(img.size)
    return sizes


def run_case(edgepose: str, inputs: list[Path], extra: list[str], out: Path, expect: int) -> dict:
    """One whole process: wall seconds and CPU seconds (it and the descendants it reaped)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [edgepose, "run", *map(str, inputs), "-o", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    if proc.returncode != 0 or lines != expect or stderr:
        raise SystemExit(f"{' '.join(extra)}: exit {proc.returncode}, {lines} of {expect} lines; stderr: {stderr}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


def attached_rounds(edgepose: str, folder: Path, few: list[Path], out: Path, photos: int, rounds: int) -> dict:
    """Whole processes on a head node started once for all of them (2 CPUs), in interleaved rounds."""
    port = free_port()
    ray = str(Path(edgepose).with_name("ray"))
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # Ray's default for a new cluster; a client must ask for it
    # A folder of its own (short: Ray's Unix sockets live there): this head alone is stopped at the end,
    # where `ray stop` would stop every Ray cluster on the machine.
    temp = tempfile.mkdtemp(prefix="epsc")
    started = subprocess.run(
        [ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
        + ["--disable-usage-stats", f"--temp-dir={temp}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise SystemExit(f"ray start failed: {started.stderr}")
    samples: dict[str, dict[str, list[dict]]] = {n: {"full": [], "fixed": []} for n in ATTACHED}
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        names = list(ATTACHED)
        for name in names:  # warm-up
            extra = [*ATTACHED[name], "--ray-address", f"127.0.0.1:{port}", "--ray-batch", "1"]
            run_case(edgepose, few, extra, out, 2)
        for r in range(rounds):
            for name in names[r % 2 :] + names[: r % 2]:
                extra = [*ATTACHED[name], "--ray-address", f"127.0.0.1:{port}"]
                samples[name]["fixed"].append(run_case(edgepose, few, [*extra, "--ray-batch", "1"], out, 2))
                samples[name]["full"].append(run_case(edgepose, [folder], extra, out, photos))
                print(f"round {r + 1} {name}: {samples[name]['full'][-1]['wall_s']:.2f} s", flush=True)
    finally:
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before
        stop_processes_of(temp)
    return samples


def stop_processes_of(folder: str) -> None:
    """SIGKILL the processes naming `folder` and their descendants (Ray's agents and workers rename
    themselves)."""
    import signal

    parents: dict[int, int] = {}
    ours: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if folder.encode() in (entry / "cmdline").read_bytes():
                    ours.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    while children := {pid for pid, parent in parents.items() if parent in ours} - ours:
        ours |= children
    for pid in ours:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_overhead(tasks: int) -> dict:
    """ms per no-op task through the ordered actor pool of `run --ray`, 1 worker on a local cluster."""
    from edgepose.cluster.ray_pool import ActorPool, ray_session

    with ray_session(None, num_cpus=1) as session:
        pool = ActorPool(session, dict, (), workers=1, threads=1)
        pool.wait_ready()
        payload = [[(Path(f"photo_{i:04d}.jpg"), None) for i in range(8)] for i in range(tasks)]
        for _ in pool.map(payload[:20], method="echo"):  # warm-up
            pass
        t0 = time.perf_counter()
        back = list(pool.map(payload, method="echo"))
        per_task = (time.perf_counter() - t0) / tasks
        assert back == payload
    return {"tasks": tasks, "ms_per_task": round(1000 * per_task, 3)}


def steady_state(photos: list[Path], rounds: int) -> dict[str, list[float]]:
    """Seconds for all `photos` once running: the run --ray worker's job here (local), and mapped over
    started pools of 1 and 2 workers, in interleaved rounds."""
    from edgepose.cli.run import _RayJob
    from edgepose.cluster.ray_pool import DEFAULT_BATCH, ActorPool, ray_session
    from edgepose.estimator import PoseEstimatorOptions

    args = _RayJob.Args(PoseEstimatorOptions(threads=1), None, False, None, False)
    tasks = [[(p, None) for p in photos[i : i + DEFAULT_BATCH]] for i in range(0, len(photos), DEFAULT_BATCH)]

    def lines(records: list) -> int:
        return sum(kind == "line" for record in records for kind, *_ in record)

    job = _RayJob(args)
    out: dict[str, list[float]] = {"local": [], "ray-1": [], "ray-2": []}
    # Both pools in one cluster: 3 CPUs as Ray counts them, of which the idle pool's worker uses none.
    with ray_session(None, num_cpus=3) as session:
        pools = {n: ActorPool(session, _RayJob, (args,), workers=n, threads=1) for n in (1, 2)}
        runs = {
            "local": lambda: [job(task) for task in tasks],
            "ray-1": lambda: list(pools[1].map(tasks)),
            "ray-2": lambda: list(pools[2].map(tasks)),
        }
        for pool in pools.values():
            pool.wait_ready()
            list(pool.map(tasks[: 2 * len(pool.actors)]))  # warm-up: each worker's first photos
        job(tasks[0])
        names = list(runs)
        for r in range(rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                t0 = time.perf_counter()
                records = runs[name]()
                out[name].append(time.perf_counter() - t0)
                assert lines(records) == len(photos)
                print(f"steady round {r + 1} {name}: {out[name][-1]:.2f} s", flush=True)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--edgepose", default=str(Path(sys.executable).with_name("edgepose")))
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/scale_<label>.json)")
    args = ap.parse_args()
    if "EDGEPOSE_MODEL_DIR" not in os.environ:
        raise SystemExit("set EDGEPOSE_MODEL_DIR (../shared/models)")

    with tempfile.TemporaryDirectory(prefix="edgepose-scale-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        sizes = make_photos(folder, args.photos)
        photos = sorted(folder.iterdir())
        few = photos[:2]
        out = Path(tmp) / "out.jsonl"
        # The default --ray-batch on this folder: 8 photos per task (one worker or two alike).
        tasks = -(-args.photos // 8)
        names = list(CASES)
        samples: dict[str, dict[str, list[dict]]] = {n: {"full": [], "fixed": []} for n in names}
        for name in names:  # warm-up: page cache, .pyc, ~/.ray
            run_case(args.edgepose, few, [*CASES[name], *(["--ray-batch", "1"] if "ray" in name else [])], out, 2)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fixed_extra = ["--ray-batch", "1"] if "ray" in name else []
                samples[name]["fixed"].append(run_case(args.edgepose, few, CASES[name] + fixed_extra, out, 2))
                samples[name]["full"].append(run_case(args.edgepose, [folder], CASES[name], out, args.photos))
                print(
                    f"round {r + 1} {name}: {samples[name]['full'][-1]['wall_s']:.2f} s "
                    f"(two photos: {samples[name]['fixed'][-1]['wall_s']:.2f} s)",
                    flush=True,
                )
        attached = attached_rounds(args.edgepose, folder, few, out, args.photos, args.rounds)
        echo = echo_overhead(200)
        steady = steady_state(photos, args.rounds)

    cases = {}
    for name in names:
        full = median([s["wall_s"] for s in samples[name]["full"]])
        fixed = median([s["wall_s"] for s in samples[name]["fixed"]])
        cases[name] = {
            "args": CASES[name],
            "wall_s": round(full, 3),
            "wall_s_all": [round(s["wall_s"], 3) for s in samples[name]["full"]],
            "cpu_s": round(median([s["cpu_s"] for s in samples[name]["full"]]), 3),
            "images_per_s": round(args.photos / full, 2),
            "fixed_s": round(fixed, 3),
            "fixed_s_all": [round(s["wall_s"], 3) for s in samples[name]["fixed"]],
            "steady_s": round(median(steady[name]), 3),
            "steady_s_all": [round(x, 3) for x in steady[name]],
            "steady_images_per_s": round(args.photos / median(steady[name]), 2),
        }
    for name, runs in attached.items():
        full = median([s["wall_s"] for s in runs["full"]])
        cases[name] = {
            "args": [*ATTACHED[name], "--ray-address", "HEAD"],
            "wall_s": round(full, 3),
            "wall_s_all": [round(s["wall_s"], 3) for s in runs["full"]],
            "cpu_s": round(median([s["cpu_s"] for s in runs["full"]]), 3),
            "images_per_s": round(args.photos / full, 2),
            "fixed_s": round(median([s["wall_s"] for s in runs["fixed"]]), 3),
            "fixed_s_all": [round(s["wall_s"], 3) for s in runs["fixed"]],
        }
    speedup_attached = cases["ray-1-attached"]["wall_s"] / cases["ray-2-attached"]["wall_s"]
    speedup_wall = cases["ray-1"]["wall_s"] / cases["ray-2"]["wall_s"]
    speedup_steady = cases["ray-1"]["steady_s"] / cases["ray-2"]["steady_s"]
    result = {
        "benchmark": "scale",
        "label": args.label,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "workload": {
            "photos": args.photos,
            "sizes_px": {
                "min": [min(w for w, _ in sizes), min(h for _, h in sizes)],
                "max": [max(w for w, _ in sizes), max(h for _, h in sizes)],
            },
            "from": [p.name for p in SOURCES],
            "command": "edgepose run FOLDER -o OUT.jsonl (movenet-lightning-int8, single mode)",
            "tasks_per_run": tasks,
        },
        "rounds": args.rounds,
        "cases": cases,
        "speedup_2_vs_1_worker": {
            "wall": round(speedup_wall, 3),
            "wall_attached": round(speedup_attached, 3),
            "steady": round(speedup_steady, 3),
            "target": TARGET_SPEEDUP,
            "meets_target_steady": speedup_steady >= TARGET_SPEEDUP,
            "meets_target_wall": speedup_wall >= TARGET_SPEEDUP,
            "meets_target_wall_attached": speedup_attached >= TARGET_SPEEDUP,
        },
        "ray_overhead": {
            "startup_s": round(cases["ray-1"]["fixed_s"] - cases["local"]["fixed_s"], 3),
            "startup_s_2_workers": round(cases["ray-2"]["fixed_s"] - cases["local"]["fixed_s"], 3),
            "noop_task_round_trip": echo,
            "ms_per_task_vs_local": round(1000 * (cases["ray-1"]["steady_s"] - cases["local"]["steady_s"]) / tasks, 2),
        },
        "fingerprint": fingerprint(),
    }
    for name, c in cases.items():
        steady_text = f", steady {c['steady_images_per_s']:.1f} images/s" if "steady_s" in c else ""
        print(
            f"{name}: {c['wall_s']:.2f} s ({c['images_per_s']:.1f} images/s), fixed {c['fixed_s']:.2f} s"
            f"{steady_text}, CPU {c['cpu_s']:.1f} s"
        )
    print(
        f"2 vs 1 worker: x{speedup_wall:.2f} whole run (local cluster), x{speedup_attached:.2f} whole run "
        f"(cluster already up), x{speedup_steady:.2f} steady (target x{TARGET_SPEEDUP})"
    )
    o = result["ray_overhead"]
    print(
        f"Ray start-up {o['startup_s']:.2f} s (1 worker), {o['startup_s_2_workers']:.2f} s (2); no-op task "
        f"{echo['ms_per_task']:.2f} ms; a real task {o['ms_per_task_vs_local']:.1f} ms more than locally"
    )
    path = save_result(result, f"scale_{args.label}", args.out)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
