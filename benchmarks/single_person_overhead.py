"""End-to-end single-person frame time against the raw interpreter invoke of the same model.

Both are measured in the same run, interleaved in rounds, on a real 640x480 frame, so the ratio
holds on a shared, noisy machine even when the absolute numbers move. Target: ratio <= 1.15.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/single_person_overhead.py \
        --image ../shared/data/coco/000000000785.jpg --label my-laptop
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from common import fingerprint, interleaved, save_result, stats
from PIL import Image

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.assets.registry import resolve_model
from edgepose.bindings import default_threads


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="movenet-lightning-int8")
    ap.add_argument("--image", default=str(Path(__file__).resolve().parents[2] / "shared/data/coco/000000000785.jpg"))
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=10)
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/<label>.json)")
    args = ap.parse_args()

    frame = np.asarray(Image.open(args.image).convert("RGB").resize((640, 480), Image.Resampling.BILINEAR))
    frame = np.ascontiguousarray(frame)
    resolved = resolve_model(args.model)

    # The baseline: the bare LiteRT interpreter, input already in place, invoke only.
    from ai_edge_litert.interpreter import Interpreter

    raw = Interpreter(model_path=str(resolved.path), num_threads=args.threads)
    raw.allocate_tensors()
    inp = raw.get_input_details()[0]
    raw.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))

    est = PoseEstimator.create_from_options(
        PoseEstimatorOptions(model=args.model, threads=args.threads, backend="litert")
    )
    clock = {"t": 0.0}

    def video_frame() -> None:
        clock["t"] += 33.3
        est.estimate_video_frame(frame, clock["t"])

    cases = {
        "raw_invoke": raw.invoke,
        "pipeline_video": video_frame,  # fast path: carried crop + One-Euro smoothing
        "pipeline_image": lambda: est.estimate_frame(frame),  # still image: letterboxed full frame
    }
    samples = interleaved(cases, args.rounds, args.per_round, warmup=5)

    result = {
        "benchmark": "single_person_overhead",
        "label": args.label,
        "model": resolved.name,
        "threads": args.threads,
        "frame": "640x480 from " + Path(args.image).name,
        "samples_per_case": args.rounds * args.per_round,
        "cases": {k: stats(v) for k, v in samples.items()},
        "fingerprint": fingerprint(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    base = result["cases"]["raw_invoke"]["p50_ms"]
    result["ratio_p50"] = {
        k: round(result["cases"][k]["p50_ms"] / base, 3) for k in ("pipeline_video", "pipeline_image")
    }
    out = save_result(result, f"single_person_overhead_{args.label}", args.out)
    for k, v in result["cases"].items():
        print(f"{k:16s} p50 {v['p50_ms']:7.3f} ms  p90 {v['p90_ms']:7.3f} ms")
    print(f"ratio (p50, pipeline / raw invoke): {result['ratio_p50']}  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
