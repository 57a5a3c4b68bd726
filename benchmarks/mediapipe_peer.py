"""edgepose against MediaPipe Pose (the legacy `mediapipe.solutions.pose`, model_complexity=1) on the same frames.

MediaPipe is never a dependency: this runs only where it is installed (it ships its weights in the
mediapipe 0.10.14 wheel; that wheel needs numpy<2), e.g.

    python3.11 -m venv .venv-peer && .venv-peer/bin/pip install mediapipe==0.10.14 "numpy<2" pycocotools -e .
    EDGEPOSE_MODEL_DIR=../shared/models .venv-peer/bin/python benchmarks/mediapipe_peer.py --label my-laptop

Speed: both as a video stream on the decoded frames of the shared demo video (decode excluded for
both), interleaved in rounds in one process, reported as ratios to edgepose's single-person pipeline.
MediaPipe's complexity-1 landmark model is the same network as edgepose's `blazepose-full`, so that
pair compares the pipelines around one model. Accuracy: both on the shared COCO photos as stills
(COCO AP and mean best-match OKS through edgepose.eval.coco), and their keypoint agreement on the video.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import sys
from pathlib import Path

import numpy as np
from common import SHARED_DATA, interleaved, pingpong

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.bench.device_info import fingerprint
from edgepose.bench.measure import summarize
from edgepose.eval.coco import load_annotations, score_poses
from edgepose.image import load_image
from edgepose.io.atomic import atomic_path
from edgepose.io.video import VideoSource
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS, to_coco17
from edgepose.results import make_pose

RESULTS = Path(__file__).resolve().parent / "results"
EDGEPOSE_MODELS = ("blazepose-full", "movenet-lightning-int8")


def _mediapipe():
    try:
        import mediapipe as mp
    except ImportError:
        return None
    return mp


def mediapipe_keypoints(result, width: int, height: int) -> np.ndarray | None:
    """33x3 (x, y, visibility) in pixels, or None when MediaPipe found nobody."""
    if result.pose_landmarks is None:
        return None
    lm = result.pose_landmarks.landmark
    return np.array([(p.x * width, p.y * height, p.visibility) for p in lm], dtype=np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--video", type=Path, default=SHARED_DATA / "video" / "demo.mp4")
    ap.add_argument("--coco", type=Path, default=SHARED_DATA / "coco")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--per-round", type=int, default=10)
    args = ap.parse_args()
    mp = _mediapipe()
    if mp is None:
        print("mediapipe is not installed: peer comparison skipped (see this file's docstring)", file=sys.stderr)
        return 0

    frames = [rgb for _, _, rgb in VideoSource.open_file(args.video).frames()]
    h, w = frames[0].shape[:2]
    fps = VideoSource.open_file(args.video).fps
    stream = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, enable_segmentation=False)
    ours = {m: PoseEstimator.create_from_options(PoseEstimatorOptions(model=m)) for m in EDGEPOSE_MODELS}
    cycle = pingpong(frames)  # a stream never jumps from the clip's last frame to its first

    def stream_case(step):
        counter = itertools.count()

        def case():
            n = next(counter)
            step(cycle[n % len(cycle)], (n + 1) * 1000.0 / fps)

        return case

    cases = {"mediapipe": stream_case(lambda frame, t_ms: stream.process(frame))}
    for m, est in ours.items():
        cases[m] = stream_case(est.estimate_for_video)
    # warmup: MediaPipe builds its graph on the first frame
    samples = interleaved(cases, args.rounds, args.per_round, warmup=10)
    speed = {k: summarize(v) for k, v in samples.items()}
    ratios = {f"mediapipe_over_{m}": round(speed["mediapipe"]["p50"] / speed[m]["p50"], 3) for m in EDGEPOSE_MODELS}

    agreement = _agreement(mp, ours["blazepose-full"], frames, fps)
    accuracy = _accuracy(mp, args.coco)
    doc = {
        "benchmark": "mediapipe_peer",
        "label": args.label,
        "mediapipe": mp.__version__,
        "peer": "mediapipe.solutions.pose, model_complexity=1 (pose_landmark_full), VIDEO mode",
        "frames": f"{len(frames)} frames {w}x{h} of {args.video.name}, ping-pong, decode excluded",
        "edgepose_threads": {m: ours[m].backend.threads for m in EDGEPOSE_MODELS},
        "speed_ms": speed,
        "ratios_p50": ratios,
        "agreement_blazepose_full_vs_mediapipe": agreement,
        "accuracy_coco": accuracy,
        "device": fingerprint(),
    }
    out = RESULTS / f"mediapipe_peer_{args.label}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({"ratios_p50": ratios, "agreement": agreement, "accuracy": accuracy}, indent=2))
    print(f"wrote {out}")
    return 0


def _agreement(mp, est: PoseEstimator, frames: list[np.ndarray], fps: float) -> dict:
    """Mean distance between the two pipelines' COCO-17 keypoints on the video, in % of the frame's long side."""
    est.reset()
    h, w = frames[0].shape[:2]
    dists = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as peer:
        for i, frame in enumerate(frames):
            theirs = mediapipe_keypoints(peer.process(frame), w, h)
            poses = est.estimate_for_video(frame, (i + 1) * 1000.0 / fps)
            if theirs is None or not poses:
                continue
            mine = to_coco17(np.array([(k.x, k.y) for k in poses[0].keypoints]))
            dists.append(np.linalg.norm(mine - to_coco17(theirs[:, :2]), axis=1) / max(w, h) * 100)
    if not dists:
        return {"frames_compared": 0}
    d = np.concatenate(dists)
    return {
        "frames_compared": len(dists),
        "mean_pct_of_long_side": round(float(d.mean()), 3),
        "max_pct_of_long_side": round(float(d.max()), 3),
    }


def _accuracy(mp, coco_dir: Path) -> dict:
    coco = load_annotations(coco_dir / "test_coco.json")
    peer_poses, our_poses = {}, {}
    est = PoseEstimator.create_from_options(PoseEstimatorOptions(model="blazepose-full", min_pose_score=0.05))
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as peer:
        for image in coco.images:
            rgb = load_image(coco_dir / image.file_name)
            kps = mediapipe_keypoints(peer.process(rgb), rgb.shape[1], rgb.shape[0])
            peer_poses[image.id] = [] if kps is None else [make_pose(kps, BLAZEPOSE33_KEYPOINTS)]
            our_poses[image.id] = est.estimate(rgb)
    out = {}
    for name, poses in (("mediapipe", peer_poses), ("edgepose_blazepose_full", our_poses)):
        s = score_poses(coco, poses)
        out[name] = {"ap": round(s.ap, 4), "ar": round(s.ar, 4), "mean_oks": round(s.mean_oks, 4)}
    return out


if __name__ == "__main__":
    sys.exit(main())
