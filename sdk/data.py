"""Result dataclasses and keypoint layouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COCO17_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

COCO17_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip

# COCO's per-keypoint OKS constants, in COCO-17 order.
COCO17_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip


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
class Pose:
    """One person. `keypoints` are in the model's order (COCO-17 for MoveNet)."""

    keypoints: tuple[Keypoint, ...]
    score: float
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of one pose: keypoints as [x, y, score] triples."""
        return {
            "id": self.id,
            "score": round(float(self.score), 4),
            "bbox": [round(float(v), 2) for v in self.bbox],
            "keypoints": [[round(k.x, 2), round(k.y, 2), round(k.score, 4)] for k in self.keypoints],
        }

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
