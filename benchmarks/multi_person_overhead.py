"""Top-down multi-person frame time against the bare invokes it is made of, for N = 1..5 people.

The frame: N copies of the person in a real COCO photo on a 960x540 canvas. For each N, in the same
run and interleaved in rounds:
- detect_frame: a video frame on which the detector runs (whole frame + tiles, then N MoveNet crops,
  tracking and smoothing), against `det_invokes` detector invokes + N pose invokes on the bare
  interpreters with inputs already in place;
- tracked_frame: a video frame between detector runs (crops carried from the last poses), against N
  pose invokes.
Target: ratio <= 1.15 for an average video frame (one detector frame in `redetect_every`, the others
tracked), reported as video_frame next to the two kinds of frame.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/multi_person_overhead.py --label my-laptop
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from common import SHARED_DATA, fingerprint, interleaved, save_result, stats
from PIL import Image

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.assets.registry import resolve_model
from edgepose.bindings import default_threads
from edgepose.pipelines.topdown import TopDownParams, detector_rois

CANVAS = (960, 540)
NEVER = 1 << 30
REDETECT_EVERY = TopDownParams().redetect_every  # the video path's default: one detector frame in ten


def crowd(n: int, photo: Path, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """N copies of one real person side by side, 260 px tall, on a grey 960x540 canvas."""
    x, y, w, h = bbox
    person = (
        Image.open(photo)
        .convert("RGB")
        .crop((int(x - 0.1 * w), int(y - 0.05 * h), int(x + 1.1 * w), int(y + 1.05 * h)))
    )
    scale = 260 / person.height
    person = person.resize((round(person.width * scale), 260), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", CANVAS, (170, 170, 170))
    step = CANVAS[0] / n
    for i in range(n):
        canvas.paste(person, (int(step * (i + 0.5) - person.width / 2), 200))
    return np.ascontiguousarray(np.asarray(canvas))


def bare(path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    return interp


def video_step(est: PoseEstimator, frame: np.ndarray):
    clock = {"t": 0.0}

    def step() -> None:
        clock["t"] += 33.3
        est.estimate_video_frame(frame, 1000.0 + clock["t"])

    return step


def raw_step(det, k_det: int, pose, k_pose: int):
    def step() -> None:
        for _ in range(k_det):
            det.invoke()
        for _ in range(k_pose):
            pose.invoke()

    return step


def amortized(s: dict, prefix: str) -> float:
    """p50 ms of an average video frame: one detector frame per REDETECT_EVERY, tracked frames between."""
    detect, tracked = s[f"{prefix}detect_frame"]["p50_ms"], s[f"{prefix}tracked_frame"]["p50_ms"]
    return (detect + (REDETECT_EVERY - 1) * tracked) / REDETECT_EVERY


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="movenet-lightning-int8")
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--max-n", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<name>_<label>.json)")
    args = ap.parse_args()

    photo = SHARED_DATA / "coco" / "000000000785.jpg"
    coco = json.loads((SHARED_DATA / "coco" / "test_coco.json").read_text())
    bbox = next(a["bbox"] for a in coco["annotations"] if a["image_id"] == 785)
    det_raw = bare(resolve_model("blazepose-detector").path, args.threads)
    pose_raw = bare(resolve_model(args.model).path, args.threads)

    results = {}
    for n in range(1, args.max_n + 1):
        frame = crowd(n, photo, bbox)
        ests = {}
        for case, every in (("detect_frame", 1), ("tracked_frame", NEVER)):
            est = PoseEstimator.create_from_options(
                PoseEstimatorOptions(model=args.model, mode="multi", threads=args.threads, backend="litert")
            )
            est.pipeline.params.redetect_every = every
            ests[case] = est
        tile_fraction = ests["detect_frame"].pipeline.params.tile_fraction
        det_invokes = len(detector_rois(CANVAS[0], CANVAS[1], tile_fraction))
        found = len(ests["detect_frame"].estimate_video_frame(frame, 0.0).poses)
        ests["tracked_frame"].estimate_video_frame(frame, 0.0)  # the detector once, then carried crops
        cases = {
            "detect_frame": video_step(ests["detect_frame"], frame),
            "raw_detect_frame": raw_step(det_raw, det_invokes, pose_raw, found),
            "tracked_frame": video_step(ests["tracked_frame"], frame),
            "raw_tracked_frame": raw_step(det_raw, 0, pose_raw, found),
        }
        samples = interleaved(cases, args.rounds, args.per_round, warmup=3)
        s = {k: stats(v) for k, v in samples.items()}
        results[str(n)] = {
            "people_in_frame": n,
            "people_found": found,
            "det_invokes": det_invokes,
            "cases": s,
            "ratio_p50": {
                "detect_frame": round(s["detect_frame"]["p50_ms"] / s["raw_detect_frame"]["p50_ms"], 3),
                "tracked_frame": round(s["tracked_frame"]["p50_ms"] / s["raw_tracked_frame"]["p50_ms"], 3),
                "video_frame": round(amortized(s, "") / amortized(s, "raw_"), 3),
            },
        }
        r = results[str(n)]
        print(f"N={n}: video frame, the detector amortized over {REDETECT_EVERY}: x{r['ratio_p50']['video_frame']}")
        print(
            f"N={n} found {found}: detect frame {s['detect_frame']['p50_ms']:.1f} ms vs "
            f"{det_invokes} det + {found} pose invokes {s['raw_detect_frame']['p50_ms']:.1f} ms "
            f"(x{r['ratio_p50']['detect_frame']}); tracked frame {s['tracked_frame']['p50_ms']:.1f} ms vs "
            f"{s['raw_tracked_frame']['p50_ms']:.1f} ms (x{r['ratio_p50']['tracked_frame']})"
        )

    result = {
        "benchmark": "multi_person_overhead",
        "label": args.label,
        "model": args.model,
        "threads": args.threads,
        "frame": f"{CANVAS[0]}x{CANVAS[1]}, N copies of the person in 000000000785.jpg",
        "samples_per_case": args.rounds * args.per_round,
        "by_people": results,
        "fingerprint": fingerprint(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = save_result(result, f"multi_person_overhead_{args.label}", args.out)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
