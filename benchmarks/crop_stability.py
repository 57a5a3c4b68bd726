"""How far top-down keypoints move when the person detector's output moves by a pixel or a percent.

On arm64 the float detector's outputs differ from x86_64 by ~1e-3, so its boxes (and the crops cut from
them) move by about a pixel; an int8 pose model can turn that into a jump of a weak keypoint. This
shifts every detection by ±1 px (x and y) and scales it by ±1% about its centre, reruns the still
pipeline, and reports how far each person's keypoints (scoring >= 0.3 in the unperturbed run) move.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/crop_stability.py --label my-laptop
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import replace

import numpy as np
from common import SHARED_DATA, fingerprint, save_result

from edgepose import PoseEstimator
from edgepose.image import load_image
from edgepose.results import Timings

PERTURBATIONS = {
    "+1px": (1.0, 1.0, 1.0),
    "-1px": (-1.0, -1.0, 1.0),
    "+1%": (0.0, 0.0, 1.01),
    "-1%": (0.0, 0.0, 0.99),
}


def perturbed(people, dx: float, dy: float, scale: float):
    out = []
    for p in people:
        c = p.keypoints[0]
        kps = (p.keypoints - c) * scale + c + (dx, dy)
        x0, y0, x1, y1 = p.face_box
        f0 = (np.array([x0, y0]) - c) * scale + c + (dx, dy)
        f1 = (np.array([x1, y1]) - c) * scale + c + (dx, dy)
        out.append(replace(p, keypoints=kps, face_box=(*f0, *f1)))
    return out


def displacements(base: list[np.ndarray], other: list[np.ndarray], min_score: float = 0.3) -> list[float]:
    """Per confident keypoint of each base person: the distance to the same keypoint of the nearest
    (median keypoint distance) person of the other run."""
    out: list[float] = []
    for b in base:
        if not other:
            continue
        near = min(other, key=lambda o: np.median(np.linalg.norm(o[:, :2] - b[:, :2], axis=1)))
        ok = b[:, 2] >= min_score
        out += np.linalg.norm(near[ok, :2] - b[ok, :2], axis=1).tolist()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="movenet-lightning-int8")
    ap.add_argument("--label", default=platform.node() or "unknown")
    args = ap.parse_args()
    names = sorted(p.name for p in (SHARED_DATA / "coco").glob("*.jpg"))
    result: dict = {"benchmark": "crop_stability", "label": args.label, "model": args.model, "perturbations": {}}
    with PoseEstimator.create_from_model(args.model, mode="multi", threads=2) as est:
        pipeline = est.pipeline
        finder = pipeline.finder
        find = finder.find
        frames = {n: load_image(SHARED_DATA / "coco" / n) for n in names}
        base = {n: [r.keypoints for r in pipeline.estimate(rgb, Timings()).people] for n, rgb in frames.items()}
        for label, (dx, dy, scale) in PERTURBATIONS.items():
            finder.find = lambda rgb, timings, a=(dx, dy, scale): perturbed(find(rgb, timings), *a)  # noqa: B023
            moved: list[float] = []
            for n, rgb in frames.items():
                moved += displacements(base[n], [r.keypoints for r in pipeline.estimate(rgb, Timings()).people])
            finder.find = find
            d = np.array(moved)
            result["perturbations"][label] = {
                "keypoints": len(d),
                "median_px": round(float(np.median(d)), 2),
                "p90_px": round(float(np.percentile(d, 90)), 2),
                "max_px": round(float(d.max()), 2),
                "moved_over_5px": int((d > 5).sum()),
            }
            print(f"{label:5s} " + ", ".join(f"{k} {v}" for k, v in result["perturbations"][label].items()))
    result["fingerprint"] = fingerprint()
    print(f"-> {save_result(result, f'crop_stability_{args.label}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
