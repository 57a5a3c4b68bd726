"""Skeleton overlays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from edgepose.image import ImageInput, load_image
from edgepose.keypoints import COCO17_SKELETON
from edgepose.results import Pose

_LEFT = (255, 140, 0)
_RIGHT = (0, 190, 255)
_CENTER = (230, 230, 230)
_ID_COLORS = ((255, 80, 80), (80, 255, 80), (80, 160, 255), (255, 220, 60), (220, 80, 255), (60, 230, 230))


def _side(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _CENTER


def draw_poses(
    image: ImageInput,
    poses: Sequence[Pose],
    min_keypoint_score: float = 0.2,
    skeleton: Sequence[tuple[int, int]] = COCO17_SKELETON,
) -> Image.Image:
    """Return an RGB copy of `image` with each pose's skeleton, keypoints, box and track ID drawn."""
    rgb = image.convert("RGB").copy() if isinstance(image, Image.Image) else Image.fromarray(load_image(image))
    draw = ImageDraw.Draw(rgb)
    scale = max(rgb.size) / 640.0
    width = max(2, round(3 * scale))
    radius = max(2, round(4 * scale))
    for pose in poses:
        kps = pose.keypoints
        ok = np.array([k.score >= min_keypoint_score for k in kps])
        for a, b in skeleton:
            if a < len(kps) and b < len(kps) and ok[a] and ok[b]:
                color = _side(kps[b].name) if _side(kps[a].name) == _side(kps[b].name) else _CENTER
                draw.line([(kps[a].x, kps[a].y), (kps[b].x, kps[b].y)], fill=color, width=width)
        for k, good in zip(kps, ok, strict=False):
            if good:
                draw.ellipse(
                    [k.x - radius, k.y - radius, k.x + radius, k.y + radius], fill=_side(k.name), outline=(0, 0, 0)
                )
        box_color = _ID_COLORS[pose.id % len(_ID_COLORS)] if pose.id is not None else (255, 255, 255)
        draw.rectangle(list(pose.bbox), outline=box_color, width=max(1, width // 2))
        label = f"#{pose.id} {pose.score:.2f}" if pose.id is not None else f"{pose.score:.2f}"
        draw.text((pose.bbox[0] + 2, max(0.0, pose.bbox[1] - 12 * scale)), label, fill=box_color)
    return rgb
