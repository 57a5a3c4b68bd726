"""Soak: does a long-running app's memory stay flat? RSS over thousands of frames through the public API.

One `PoseEstimator` per run, driven as a user's app drives it:
- single: the default model in single mode, `estimate_video_frame` on the real fitness clip
  (`fitness/pose_squats.mp4`, one person), 20,000 frames;
- multi: the default model in multi mode (top-down: person detector + MoveNet crops, tracking), on the
  real street clip (`video/demo.mp4`), 3,000 frames;
- still: single mode, `estimate_frame` on the shared photos (COCO + Human-Art, read from disk each
  time), 3,000 images.

Each clip is decoded once up front and cycled forward and back (so a stream never jumps from its last
frame to its first), with timestamps at the clip's frame rate; every decoded frame and every buffer the
benchmark itself writes into is allocated before the first RSS sample. RSS (VmRSS, with its anonymous
and file-backed parts, from /proc/self/status) is read after a `gc.collect()` every 1,000 frames; the
baseline is the sample after the warm-up (the first 1,000 frames: allocators and LiteRT's arenas grow
at start). Growth = last sample - baseline, and max - baseline, per run. The exit code is non-zero when
any run grows by more than --max-growth-mb (1 MB).

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/soak.py --label my-laptop

`--tracemalloc N` (investigation only: several times slower, and its own bookkeeping adds to RSS) also
records the N Python allocation sites that grew most between the baseline and the last sample.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import SHARED_DATA, fingerprint, pingpong, save_result

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.io.video import VideoSource

MB = 1024.0 * 1024.0


def memory_mb() -> dict[str, float]:
    """Current resident memory of this process (VmRSS = RssAnon + RssFile + RssShmem), in MB."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(rest.split()[0]) / 1024.0  # kB
    return {"rss": fields["VmRSS"], "anon": fields.get("RssAnon"), "file": fields.get("RssFile")}


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    src = VideoSource.open_file(path)
    frames = [np.ascontiguousarray(rgb) for _, _, rgb in src.frames()]
    return frames, src.fps


def soak(
    name: str,
    est: PoseEstimator,
    step: Callable[[int], list],
    frames: int,
    every: int,
    warmup: int,
    top: int,
) -> dict:
    """Run `step(i)` (one frame; returns its poses) `frames` times, sampling memory every `every` frames."""
    # Written by the loop, so allocated and filled (np.zeros' pages would only become resident as the
    # loop first writes them: 8 KB per 1,000 frames of false growth) before the first sample.
    ms = np.full(frames, np.nan)
    people = np.full(frames, -1, dtype=np.int32)
    max_id = -1
    samples: list[dict] = []
    gc.collect()
    samples.append({"frame": 0, **memory_mb()})
    snap0 = None
    t_start = time.perf_counter()
    for i in range(frames):
        t0 = time.perf_counter()
        poses = step(i)
        ms[i] = (time.perf_counter() - t0) * 1000.0
        people[i] = len(poses)
        for p in poses:
            if p.id is not None and p.id > max_id:
                max_id = p.id
        del poses
        if (i + 1) % every == 0 or i + 1 == frames:
            gc.collect()
            samples.append({"frame": i + 1, **memory_mb()})
            if top and i + 1 == warmup:
                snap0 = tracemalloc.take_snapshot()
    wall = time.perf_counter() - t_start
    est.close()
    gc.collect()
    after_close = memory_mb()

    base = next((s for s in samples if s["frame"] >= warmup), samples[-1])
    after = [s for s in samples if s["frame"] >= base["frame"]]
    last = samples[-1]

    def delta(key: str) -> dict:
        if base[key] is None:
            return {}
        return {
            "growth_mb": round(last[key] - base[key], 3),
            "max_growth_mb": round(max(s[key] for s in after) - base[key], 3),
        }

    result = {
        "frames": frames,
        "baseline_frame": base["frame"],
        "baseline_rss_mb": round(base["rss"], 3),
        "rss": delta("rss"),
        "anon": delta("anon"),
        "file": delta("file"),
        "load_to_baseline_mb": round(base["rss"] - samples[0]["rss"], 3),
        "after_close_rss_mb": round(after_close["rss"], 3),
        "series": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()} for s in samples],
        "ms_per_frame": {
            "mean": round(float(ms.mean()), 3),
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p90": round(float(np.percentile(ms, 90)), 3),
            "max": round(float(ms.max()), 3),
        },
        "wall_s": round(wall, 1),
        "people_per_frame_mean": round(float(people.mean()), 3),
        "frames_without_pose": int((people == 0).sum()),
        "max_track_id": max_id if max_id >= 0 else None,
    }
    if snap0 is not None:
        diff = tracemalloc.take_snapshot().compare_to(snap0, "lineno")
        result["tracemalloc_top"] = [
            {"site": str(d.traceback[0]), "size_diff_kb": round(d.size_diff / 1024, 1), "count_diff": d.count_diff}
            for d in diff[:top]
        ]
    r = result["rss"]
    print(
        f"{name}: {frames} frames in {wall:.0f} s, {result['ms_per_frame']['mean']:.2f} ms/frame; RSS baseline "
        f"{base['rss']:.1f} MB at frame {base['frame']}, growth {r['growth_mb']:+.3f} MB "
        f"(max {r['max_growth_mb']:+.3f}; anon {result['anon'].get('growth_mb', 0.0):+.3f})",
        flush=True,
    )
    for d in result.get("tracemalloc_top", []):
        print(f"  {d['size_diff_kb']:+9.1f} KiB {d['count_diff']:+7d} blocks  {d['site']}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames-single", type=int, default=20_000)
    ap.add_argument("--frames-multi", type=int, default=3_000)
    ap.add_argument("--frames-still", type=int, default=3_000, help="0 skips the still-image run")
    ap.add_argument("--video-single", default=str(SHARED_DATA / "fitness" / "pose_squats.mp4"))
    ap.add_argument("--video-multi", default=str(SHARED_DATA / "video" / "demo.mp4"))
    ap.add_argument("--every", type=int, default=1_000, help="frames between RSS samples")
    ap.add_argument("--warmup", type=int, default=1_000, help="frames before the baseline sample")
    ap.add_argument("--max-growth-mb", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="runtime threads (default: the SDK's)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="record the N top growth sites")
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/soak_<label>.json)")
    args = ap.parse_args()

    t_all = time.perf_counter()
    single_clip, single_fps = decode(Path(args.video_single))
    multi_clip, multi_fps = decode(Path(args.video_multi))
    single_cycle, multi_cycle = pingpong(single_clip), pingpong(multi_clip)
    photos = sorted((SHARED_DATA / "coco").glob("*.jpg")) + sorted((SHARED_DATA / "humanart").glob("*.jpg"))
    if args.tracemalloc:
        tracemalloc.start(1)

    def estimator(mode: str) -> PoseEstimator:
        return PoseEstimator.create_from_options(PoseEstimatorOptions(mode=mode, threads=args.threads))

    def video(est: PoseEstimator, cycle: list[np.ndarray], fps: float) -> Callable[[int], list]:
        return lambda i: est.estimate_video_frame(cycle[i % len(cycle)], (i + 1) * 1000.0 / fps).poses

    runs = {}
    plan = [
        ("single", args.frames_single, "single", lambda est: video(est, single_cycle, single_fps)),
        ("multi", args.frames_multi, "multi", lambda est: video(est, multi_cycle, multi_fps)),
        ("still", args.frames_still, "single", lambda est: lambda i: est.estimate_frame(photos[i % len(photos)]).poses),
    ]
    for name, frames, mode, make_step in plan:
        if frames <= 0:
            continue
        est = estimator(mode)
        model, backend, threads = est.model_name, est.backend.name, est.backend.threads
        runs[name] = {"mode": mode, "model": model, "backend": backend, "threads": threads}
        runs[name].update(soak(name, est, make_step(est), frames, args.every, args.warmup, args.tracemalloc))
        del est

    over = {k: r["rss"]["growth_mb"] for k, r in runs.items() if r["rss"]["growth_mb"] > args.max_growth_mb}
    result = {
        "benchmark": "soak",
        "label": args.label,
        "inputs": {
            "single": f"{Path(args.video_single).name}: {len(single_clip)} frames "
            f"{single_clip[0].shape[1]}x{single_clip[0].shape[0]} at {single_fps:g} fps, cycled forward and back",
            "multi": f"{Path(args.video_multi).name}: {len(multi_clip)} frames "
            f"{multi_clip[0].shape[1]}x{multi_clip[0].shape[0]} at {multi_fps:g} fps, cycled forward and back",
            "still": [p.name for p in photos],
        },
        "sample_every": args.every,
        "warmup_frames": args.warmup,
        "max_growth_mb": args.max_growth_mb,
        "tracemalloc": bool(args.tracemalloc),
        "runs": runs,
        "passed": not over,
        "total_wall_s": round(time.perf_counter() - t_all, 1),
        "fingerprint": fingerprint(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = save_result(result, f"soak_{args.label}", args.out)
    print(f"-> {out}")
    if over:
        print(
            "soak: RSS grew more than "
            f"{args.max_growth_mb:g} MB: " + ", ".join(f"{k} {v:+.3f} MB" for k, v in over.items()),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
