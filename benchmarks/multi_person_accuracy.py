"""Multi-person accuracy of each pipeline on the shared COCO photos, and still-image time.

Every ground-truth person with at least 5 visible keypoints is scored by the OKS of their best-matching
predicted pose (BlazePose through the COCO-17 subset of its 33 keypoints); a person counts as found at
OKS >= 0.5, COCO's loosest threshold. Recall is also reported for the small people (annotated box under
a fifth of the frame's height, any number of visible keypoints). The result records whether OpenCV was
importable: since edgepose resamples with Pillow in every install, both installs give the same numbers
(run it in each venv with its own --label).

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/multi_person_accuracy.py --label my-laptop
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time

import numpy as np
from common import SHARED_DATA, fingerprint, oks, save_result

from edgepose import PoseEstimator
from edgepose.image import load_image
from edgepose.keypoints import to_coco17

PIPELINES = {
    "top-down MoveNet": "movenet-lightning-int8",
    "bottom-up PoseNet": "posenet-mobilenet",
    "top-down BlazePose": "blazepose-full",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--label", default=platform.node() or "unknown")
    args = ap.parse_args()

    coco = json.loads((SHARED_DATA / "coco" / "test_coco.json").read_text())
    images = {i["id"]: i["file_name"] for i in coco["images"]}
    people = [a for a in coco["annotations"] if a["num_keypoints"] >= 5]
    heights = {i["id"]: i["height"] for i in coco["images"]}
    small = [a for a in coco["annotations"] if a["num_keypoints"] > 0 and a["bbox"][3] < heights[a["image_id"]] / 5]
    result: dict = {
        "benchmark": "multi_person_accuracy",
        "label": args.label,
        "threads": args.threads,
        "opencv_installed": importlib.util.find_spec("cv2") is not None,
        "people": len(people),
        "small_people": len(small),
        "pipelines": {},
    }
    for title, model in PIPELINES.items():
        with PoseEstimator.create_from_model(model, mode="multi", threads=args.threads) as est:
            poses, ms = {}, []
            for image_id, name in images.items():
                rgb = load_image(SHARED_DATA / "coco" / name)
                est.estimate_frame(rgb)  # warm-up (first invokes allocate)
                t0 = time.perf_counter()
                found = est.estimate_frame(rgb).poses
                ms.append((time.perf_counter() - t0) * 1000)
                xy = [np.array([(k.x, k.y, k.score) for k in p.keypoints]) for p in found]
                poses[image_id] = [to_coco17(k) if len(k) == 33 else k for k in xy]
        best = [max((oks(k, a) for k in poses[a["image_id"]]), default=0.0) for a in people]
        best_small = [max((oks(k, a) for k in poses[a["image_id"]]), default=0.0) for a in small]
        result["pipelines"][title] = {
            "model": model,
            "mean_oks": round(float(np.mean(best)), 3),
            "found_at_oks_0.5": int(sum(v >= 0.5 for v in best)),
            "predictions": sum(len(v) for v in poses.values()),
            "small_people_found_at_oks_0.5": int(sum(v >= 0.5 for v in best_small)),
            "per_person": [
                {"image": images[a["image_id"]], "bbox": a["bbox"], "oks": round(v, 3)} for a, v in zip(people, best)
            ],
            "still_ms_per_image": [round(v, 1) for v in ms],
        }
        print(
            f"{title:20s} mean OKS {np.mean(best):.3f}, found {sum(v >= 0.5 for v in best)}/{len(people)}, "
            f"{np.median(ms):.0f} ms per still (median)"
        )
    result["fingerprint"] = fingerprint()
    out = save_result(result, f"multi_person_accuracy_{args.label}")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
