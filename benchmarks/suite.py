"""Speed and accuracy of every model in EDGEPOSE_MODEL_DIR on this machine: one command, one results file.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/suite.py --label my-pi5

For each pose model present (registry files, plus any other .tflite/.onnx in the folder) and each mode
it supports: `edgepose bench` on the shared demo video (all models and thread counts of a mode timed in
interleaved rounds, so their ratios come from one run) and `edgepose eval` on the shared COCO photos.
Writes benchmarks/results/suite_<label>.json (with the machine's fingerprint) and suite_<label>.png.
Absolute numbers belong to the labelled machine; compare ratios within one file. When MediaPipe is
installed, benchmarks/mediapipe_peer.py adds the peer comparison to the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from common import SHARED_DATA, pingpong
from rich.console import Console
from rich.table import Table

from edgepose.assets.registry import REGISTRY
from edgepose.bench.chart import plot_latency
from edgepose.bench.db import ResultsDB
from edgepose.bench.device_info import fingerprint
from edgepose.bench.runner import BenchOptions, run_bench
from edgepose.errors import EdgeposeError
from edgepose.estimator import PoseEstimatorOptions
from edgepose.eval.coco import evaluate
from edgepose.io.atomic import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"


def models_present(model_dir: Path) -> tuple[list[str], list[dict]]:
    """Registry names (or paths) of the pose models in the folder, and what is skipped and why."""
    names, skipped = [], []
    known = set()
    for spec in REGISTRY.values():
        known.add(spec.filename)
        if not (model_dir / spec.filename).is_file():
            continue
        if spec.task == "detector":
            skipped.append({"model": spec.name, "reason": "person detector: timed inside the BlazePose pipelines"})
            continue
        names.append(spec.name)
    for f in sorted(model_dir.iterdir()):
        if f.suffix in (".tflite", ".onnx") and f.name not in known:
            names.append(str(f))
    return names, skipped


def long_enough(video: Path, frames: int, work: Path) -> tuple[Path, str]:
    """The clip itself, or, when it is shorter than `frames`, the clip played forward and back (real frames,
    re-encoded with OpenCV's mp4v) so the timed stream never jumps from its last frame to its first and
    never pays the decoder's start-up again mid-run."""
    from edgepose.io.video import VideoSource, VideoWriter

    source = VideoSource.open_file(video)
    clip = [rgb for _, _, rgb in source.frames()]
    if len(clip) >= frames:
        return video, f"{video} ({len(clip)} frames)"
    cycle = pingpong(clip)
    out = work / f"{video.stem}_pingpong.mp4"
    writer = VideoWriter(out, source.fps)
    for i in range(frames + len(cycle)):
        writer.write(cycle[i % len(cycle)])
    writer.close()
    n = frames + len(cycle)
    return out, f"{video} ({len(clip)} frames) played back and forth to {n} frames, re-encoded mp4v"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--runs", type=int, default=100, help="timed frames per configuration")
    ap.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="thread counts to sweep")
    ap.add_argument(
        "--video",
        type=Path,
        default=SHARED_DATA / "video" / "demo.mp4",
        help="a clip shorter than warm-up + runs is first lengthened by playing it back and forth",
    )
    ap.add_argument("--coco", type=Path, default=SHARED_DATA / "coco")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default results/suite_<label>.json)")
    args = ap.parse_args()
    model_dir = Path(os.environ.get("EDGEPOSE_MODEL_DIR", ""))
    if not model_dir.is_dir():
        print("set EDGEPOSE_MODEL_DIR to the folder of model files", file=sys.stderr)
        return 2
    threads = sorted({int(t) for t in args.threads.split(",")})
    out = args.out or RESULTS / f"suite_{args.label}.json"
    console = Console(width=160)

    models, skipped = models_present(model_dir)
    runs, evals = [], []
    work = Path(tempfile.mkdtemp(prefix="edgepose-suite-"))
    video, video_note = long_enough(args.video, args.runs + 10, work)
    for mode in ("single", "multi"):
        console.print(f"[bold]bench[/bold] {mode}: {len(models)} models x threads {threads}")
        run = run_bench(
            BenchOptions(
                models=models, threads=threads, runs=args.runs, warmup=10, mode=mode, input=video, label=args.label
            )
        )
        runs.append(run.document)
        failed = {f.config.split(" [")[0]: f.message for f in run.failures}
        skipped += [{"model": m, "mode": mode, "reason": why} for m, why in failed.items()]
        for model in dict.fromkeys(
            r["model_path"] if r["model"] not in REGISTRY else r["model"] for r in run.document["results"]
        ):
            console.print(f"[bold]eval[/bold] {mode}: {model}")
            try:
                res = evaluate(
                    PoseEstimatorOptions(model=model, mode=mode, min_pose_score=0.05),
                    args.coco / "test_coco.json",
                    args.coco,
                )
            except EdgeposeError as e:
                skipped.append({"model": model, "mode": mode, "reason": f"eval: {e}"})
                continue
            evals.append(
                {
                    "model": Path(model).name if model not in REGISTRY else model,
                    "mode": mode,
                    **res.metrics(),
                    "people": res.people,
                    "images": res.images,
                }
            )

    summary = _summary(runs, evals)
    doc = {
        "suite": "edgepose-suite/1",
        "label": args.label,
        "device": fingerprint(),
        "inputs": {"bench": video_note, "eval": str(args.coco / "test_coco.json")},
        "summary": summary,
        "eval": evals,
        "skipped": skipped,
        "bench_runs": runs,
    }
    peer = out.with_name(f"mediapipe_peer_{args.label}.json")
    if peer.is_file():
        doc["peer"] = json.loads(peer.read_text())
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    with tempfile.TemporaryDirectory() as d, ResultsDB(Path(d) / "suite.sqlite") as db:
        for r in runs:
            db.append(r)
        plot_latency(db.query(latest_only=True), out.with_suffix(".png"))
    shutil.rmtree(work, ignore_errors=True)
    _print(console, summary, skipped)
    console.print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _summary(runs: list[dict], evals: list[dict]) -> list[dict]:
    """One line per model, mode and thread count: speed beside accuracy."""
    acc = {(e["model"], e["mode"]): e for e in evals}
    rows = []
    for run in runs:
        fastest = {}
        for r in run["results"]:
            fastest.setdefault(r["model"], r["pipeline_ms"]["p50"])
        for r in run["results"]:
            e = acc.get((r["model"], r["mode"]), {})
            rows.append(
                {
                    "model": r["model"],
                    "mode": r["mode"],
                    "precision": r["precision"],
                    "threads": r["threads"],
                    "size_mb": round(r["model_size_bytes"] / 1e6, 2),
                    "invoke_p50_ms": r["invoke_ms"]["p50"],
                    "pipeline_p50_ms": r["pipeline_ms"]["p50"],
                    "pipeline_p90_ms": r["pipeline_ms"]["p90"],
                    "fps": r["fps"],
                    "speedup_vs_first_threads": round(fastest[r["model"]] / r["pipeline_ms"]["p50"], 3),
                    "overhead_vs_invoke": round(r["pipeline_ms"]["p50"] / r["invoke_ms"]["p50"], 3),
                    "ap": e.get("ap"),
                    "ap50": e.get("ap50"),
                    "ar": e.get("ar"),
                    "mean_oks": e.get("mean_oks"),
                    "throttled": r["thermal"]["throttled"],
                }
            )
    return rows


def _print(console: Console, rows: list[dict], skipped: list[dict]) -> None:
    table = Table(title="edgepose suite: speed (demo video) and accuracy (shared COCO photos)")
    cols = (
        "model",
        "mode",
        "precision",
        "threads",
        "size_mb",
        "invoke_p50_ms",
        "pipeline_p50_ms",
        "fps",
        "ap",
        "mean_oks",
    )
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "mode", "precision") else "right")
    for r in rows:
        table.add_row(*("-" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    console.print(table)
    for s in skipped:
        console.print(f"skipped {s['model']} {s.get('mode', '')}: {s['reason']}", markup=False, highlight=False)


if __name__ == "__main__":
    sys.exit(main())
