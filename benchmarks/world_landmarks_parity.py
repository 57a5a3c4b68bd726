"""edgepose's BlazePose world landmarks (`Pose.world_keypoints`) against MediaPipe's own on the squat clip.

MediaPipe Pose (the legacy `mediapipe.solutions.pose`, model_complexity=1: the same landmark network as
edgepose's `blazepose-full`) runs the shared squat video as a stream; its `pose_world_landmarks` are the
reference. edgepose runs the same decoded frames as a stream with the timestamps MediaPipe's solution API
gives them (33.333 ms apart, whatever the video's rate), so both smooth alike. Reported, over
the frames where both found the person: the largest difference of any coordinate (tfjs-models' own
test of BlazePose's world landmarks allows 0.24 m), the mean and p90 3-D distance per landmark, and both
sides' knee angles from the world landmarks (the fitness layer's 3-D angles).

MediaPipe is never a dependency; run this where it is installed (see benchmarks/mediapipe_peer.py):

    EDGEPOSE_MODEL_DIR=../shared/models .venv-peer/bin/python benchmarks/world_landmarks_parity.py
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np
from common import SHARED_DATA, fingerprint, save_result

from edgepose import PoseEstimator
from edgepose.fitness import joint_angle
from edgepose.io.video import VideoSource
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS
from edgepose.results import make_pose

SQUATS = SHARED_DATA / "fitness" / "pose_squats.mp4"
TFJS_WORLD_EPSILON_M = 0.24
# mediapipe.solutions feeds its graph a simulated clock: 33333 us per process() call.
MEDIAPIPE_FRAME_MS = 33.333


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default=platform.node() or "unknown")
    ap.add_argument("--out", default=None, help="Result JSON (default: results/world_landmarks_parity_LABEL.json)")
    args = ap.parse_args()
    try:
        import mediapipe as mp
    except ImportError:
        print("world_landmarks_parity: needs mediapipe (pip install mediapipe==0.10.14 'numpy<2')", file=sys.stderr)
        return 2

    src = VideoSource.open_file(SQUATS)
    frames = [((i + 1) * MEDIAPIPE_FRAME_MS, rgb) for i, _, rgb in src.frames()]
    theirs: list[np.ndarray | None] = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as peer:
        for _, rgb in frames:
            result = peer.process(rgb)
            lm = result.pose_world_landmarks
            theirs.append(None if lm is None else np.array([(p.x, p.y, p.z) for p in lm.landmark]))
    mine: list[np.ndarray | None] = []
    knees: list[dict] = []
    with PoseEstimator.create_from_model("blazepose-full") as est:
        for (t_ms, rgb), ref in zip(frames, theirs, strict=True):
            poses = est.estimate_for_video(rgb, t_ms)
            pose = poses[0] if poses else None
            mine.append(None if pose is None else np.array([(k.x, k.y, k.z) for k in pose.world_keypoints]))
            if pose is not None and ref is not None:
                theirs_pose = make_pose(
                    np.array([(k.x, k.y, 1.0) for k in pose.keypoints]), BLAZEPOSE33_KEYPOINTS, world=ref
                )
                knees.append(
                    {
                        side: (
                            joint_angle(pose, f"{side}_knee", space="world").degrees,
                            joint_angle(theirs_pose, f"{side}_knee", space="world").degrees,
                        )
                        for side in ("left", "right")
                    }
                )
    pairs = [(a, b) for a, b in zip(mine, theirs, strict=True) if a is not None and b is not None]
    if not pairs:
        print("world_landmarks_parity: no frame where both found the person", file=sys.stderr)
        return 1
    diff = np.stack([a - b for a, b in pairs])  # frames x 33 x 3
    dist = np.linalg.norm(diff, axis=2)
    knee_diff = np.array([abs(k[s][0] - k[s][1]) for k in knees for s in k])
    result = {
        "benchmark": "world_landmarks_parity",
        "device": fingerprint(),
        "label": args.label,
        "mediapipe": mp.__version__,
        "video": SQUATS.name,
        "frames": len(frames),
        "frames_compared": len(pairs),
        "max_abs_coordinate_m": round(float(np.abs(diff).max()), 4),
        "tfjs_tolerance_m": TFJS_WORLD_EPSILON_M,
        "within_tfjs_tolerance": bool(np.abs(diff).max() <= TFJS_WORLD_EPSILON_M),
        "mean_distance_m": round(float(dist.mean()), 4),
        "p90_distance_m": round(float(np.percentile(dist, 90)), 4),
        "max_distance_m": round(float(dist.max()), 4),
        "knee_angle_3d_diff_deg": {
            "median": round(float(np.median(knee_diff)), 2),
            "p90": round(float(np.percentile(knee_diff, 90)), 2),
            "max": round(float(knee_diff.max()), 2),
        },
    }
    path = save_result(result, f"world_landmarks_parity_{args.label}", args.out)
    print(
        f"{len(pairs)} frames: max |coordinate difference| {result['max_abs_coordinate_m']} m "
        f"(tfjs allows {TFJS_WORLD_EPSILON_M}), mean distance {result['mean_distance_m']} m, "
        f"3-D knee angles differ by {result['knee_angle_3d_diff_deg']['median']} deg (median) -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
