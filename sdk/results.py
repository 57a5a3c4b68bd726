"""What the runtime returns: keypoints, poses, stage timings, frame results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Keypoint:
    """One keypoint in pixel coordinates of the original image."""

    name: str
    x: float
    y: float
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "x": self.x, "y": self.y, "score": self.score}


@dataclass(frozen=True)
class WorldKeypoint:
    """One keypoint in metres, origin at the centre of the hips; x right, y down, z away from the
    camera (the image's axes). `score` is the image keypoint's."""

    name: str
    x: float
    y: float
    z: float
    score: float


@dataclass(frozen=True)
class Pose:
    """One person. `keypoints` are in the model's order (COCO-17 for MoveNet).

    `world_keypoints`: the same keypoints in metres about the hips' centre, where the model estimates
    them (BlazePose's world landmarks); None otherwise.
    """

    keypoints: tuple[Keypoint, ...]
    score: float
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    id: int | None = None
    world_keypoints: tuple[WorldKeypoint, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one pose: keypoints as [x, y, score] triples; world keypoints, when the
        model gives them, as [x, y, z] metres (0.1 mm), their scores being the keypoints'."""
        out = {
            "id": self.id,
            "score": round(float(self.score), 4),
            "bbox": [round(float(v), 2) for v in self.bbox],
            "keypoints": [[round(k.x, 2), round(k.y, 2), round(k.score, 4)] for k in self.keypoints],
        }
        if self.world_keypoints is not None:
            out["world_keypoints"] = [[round(k.x, 4), round(k.y, 4), round(k.z, 4)] for k in self.world_keypoints]
        return out

    def keypoint(self, name: str) -> Keypoint:
        for k in self.keypoints:
            if k.name == name:
                return k
        raise KeyError(name)


@dataclass
class Timings:
    """Milliseconds spent per stage for one frame."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    tracking: float = 0.0  # video only: track IDs, the carried crop, One-Euro smoothing

    def to_dict(self) -> dict[str, float]:
        return {
            "preprocess": round(self.preprocess, 3),
            "inference": round(self.inference, 3),
            "postprocess": round(self.postprocess, 3),
            "tracking": round(self.tracking, 3),
        }


@dataclass
class FrameResult:
    """Everything estimated for one image or video frame."""

    poses: list[Pose]
    width: int
    height: int
    timings: Timings = field(default_factory=Timings)
    roi: tuple[float, float, float] | None = None  # (center x, center y, side) of the square crop used

    def to_dict(self, source: str, frame: int, model: str) -> dict[str, Any]:
        """The CLI's one-object-per-frame JSON schema."""
        return {
            "source": source,
            "frame": frame,
            "width": self.width,
            "height": self.height,
            "model": model,
            "poses": [p.to_dict() for p in self.poses],
            "timings_ms": self.timings.to_dict(),
        }


def make_pose(
    kps: np.ndarray,
    names: tuple[str, ...],
    min_keypoint_score: float = 0.2,
    pose_id: int | None = None,
    score: float | None = None,
    world: np.ndarray | None = None,
) -> Pose:
    """A Pose from an Nx3 (x, y, score) array: score = `score` or the mean keypoint score, bbox over
    the confident keypoints; `world`, an Nx3 (x, y, z) array in metres, gives its world keypoints."""
    scores = kps[:, 2]
    confident = scores >= min_keypoint_score
    sel = kps[confident] if confident.any() else kps
    lo = sel[:, :2].min(axis=0)
    hi = sel[:, :2].max(axis=0)
    bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    keypoints = tuple(Keypoint(n, x, y, s) for n, (x, y, s) in zip(names, kps.tolist()))
    world_keypoints = None
    if world is not None:
        world_keypoints = tuple(
            WorldKeypoint(n, x, y, z, s) for n, (x, y, z), s in zip(names, world.tolist(), scores.tolist())
        )
    return Pose(
        keypoints=keypoints,
        score=float(scores.mean() if score is None else score),
        bbox=bbox,
        id=pose_id,
        world_keypoints=world_keypoints,
    )
