"""Why still images are letterboxed: OKS of letterbox vs centre-crop input on the shared COCO photos.

For each photo the single-person pose is scored against its best-matching ground-truth person
(a single-person model picks one person; multi-person scoring is the multi mode's job).

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/letterbox_vs_crop.py
"""

from __future__ import annotations

import json
import sys

import numpy as np
from common import SHARED_DATA as DATA_DIR
from common import oks, pose_xy, save_result

from edgepose import PoseEstimator
from edgepose.geometry import SquareRoi
from edgepose.image import load_image
from edgepose.pipelines.base import run_crops
from edgepose.results import Timings


def main() -> int:
    coco = json.loads((DATA_DIR / "coco" / "test_coco.json").read_text())
    est = PoseEstimator.create_from_model("movenet-lightning-int8")
    model = est.pipeline.model  # the single-crop pipeline's MoveNet, run on chosen crops below
    rows = {}
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"] and a["num_keypoints"] > 0]
        rgb = load_image(DATA_DIR / "coco" / img["file_name"])
        h, w = rgb.shape[:2]
        row = {}
        for name, roi in (("letterbox", SquareRoi.letterbox(w, h)), ("center_crop", SquareRoi.center_crop(w, h))):
            (found,) = run_crops(model, rgb, [roi], Timings())
            kps = found.keypoints
            row[name] = round(max(oks(kps[:, :2], a) for a in anns), 3)
            if name == "letterbox":
                crop = found.roi  # MoveNet's torso crop
                refined = run_crops(model, rgb, [crop], Timings())[0].keypoints if crop is not None else kps
                row["letterbox_then_crop"] = round(max(oks(refined[:, :2], a) for a in anns), 3)
        row["estimate (default)"] = round(max(oks(pose_xy(p), a) for a in anns for p in est.estimate(rgb)), 3)
        rows[img["file_name"]] = row
    mean = {k: round(float(np.mean([r[k] for r in rows.values()])), 3) for k in next(iter(rows.values()))}
    result = {"per_image_best_oks": rows, "mean": mean}
    save_result(result, "letterbox_vs_crop")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
