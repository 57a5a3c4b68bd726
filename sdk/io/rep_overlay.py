"""The fitness overlay of `edgepose reps --draw`: the rep count, the phase and the exercise's angle drawn
as an arc at the joint, over the skeleton that `drawing.draw_poses` draws."""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from edgepose.fitness.angles import HIP_ABDUCTION, THREE_POINT, TRUNK_LEAN
from edgepose.fitness.reps import PoseRepCounter
from edgepose.results import Keypoint, Pose

ARC = (255, 230, 0)  # a colour neither the skeleton nor most clothes use: the arc reads as the counted angle
PANEL = (0, 0, 0, 150)
TEXT = (255, 255, 255)
COUNT = (120, 255, 120)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def draw_rep_overlay(image: Image.Image, pose: Pose | None, counting: PoseRepCounter) -> Image.Image:
    """Draw on `image` (RGB, in place; also returned) the counter's state: a panel with the exercise,
    the count (and partial reps), the phase and the smoothed angle; and, where this frame's pose shows
    the angle, an arc at the joint it was read at, labelled with this frame's degrees."""
    counter = counting.counter
    scale = max(image.size) / 640.0
    reading = counting.reading
    if pose is not None and reading is not None:
        _draw_arcs(image, pose, counter.exercise.angle, reading.side, f"{reading.angle.degrees:.0f}°", scale)
    _draw_panel(image, counting, scale)
    return image


def _draw_panel(image: Image.Image, counting: PoseRepCounter, scale: float) -> None:
    counter = counting.counter
    big, small = _font(max(12, round(28 * scale))), _font(max(10, round(16 * scale)))
    partial = sum(r.partial for r in counter.reps)
    angle = "-" if counter.angle is None else f"{counter.angle:.0f}°"
    space = "" if counting.reading is None else f" ({'3-D' if counting.reading.angle.space == 'world' else '2-D'})"
    lines = [
        (f"{counter.exercise.name}: {counter.count}", big, COUNT),
        (f"{partial} partial" if partial else "", small, TEXT),
        (f"phase {counter.phase}", small, TEXT),
        (f"{counter.exercise.angle} {angle}{space}", small, TEXT),
    ]
    lines = [line for line in lines if line[0]]
    pad = round(8 * scale)
    sizes = [ImageDraw.Draw(image).textbbox((0, 0), text, font=font) for text, font, _ in lines]
    width = max(b[2] - b[0] for b in sizes) + 2 * pad
    height = sum(b[3] - b[1] + pad for b in sizes) + pad
    # Only the panel's box is blended: the whole frame would cost more than the model on a 720p frame.
    box = (0, 0, min(width + 1, image.width), min(height + 1, image.height))
    region = image.crop(box).convert("RGBA")
    shade = Image.new("RGBA", region.size, PANEL)
    image.paste(Image.alpha_composite(region, shade).convert("RGB"), box[:2])
    draw = ImageDraw.Draw(image)
    y = pad
    for (text, font, color), box in zip(lines, sizes, strict=True):
        draw.text((pad, y - box[1]), text, font=font, fill=color)
        y += box[3] - box[1] + pad


def _draw_arcs(image: Image.Image, pose: Pose, angle: str, side: str, label: str, scale: float) -> None:
    points = {k.name: k for k in pose.keypoints}
    if angle in (TRUNK_LEAN, HIP_ABDUCTION):
        arcs = [_body_arc(points, angle)]
    elif angle in THREE_POINT:  # one named joint ("left_knee"): an exercise of one side
        arcs = [tuple(points.get(n) for n in THREE_POINT[angle])]
    else:
        sides = ("left", "right") if side == "both" else (side,)
        arcs = [tuple(points.get(n) for n in THREE_POINT[f"{s}_{angle}"]) for s in sides]
    draw = ImageDraw.Draw(image)
    font = _font(max(10, round(18 * scale)))
    for arc in arcs:
        if arc is None or any(p is None for p in arc):
            continue
        a, v, b = arc
        _arc(draw, a, v, b, label, font, scale)


def _body_arc(points: dict[str, Keypoint], angle: str) -> tuple | None:
    """(a, vertex, b) for the whole-body angles: the trunk against the vertical above the hips, or the
    two thighs from the hips' midpoint."""
    names = ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "left_knee", "right_knee")
    if any(n not in points for n in names):
        return None
    lh, rh = points["left_hip"], points["right_hip"]
    hips = Keypoint("hips", (lh.x + rh.x) / 2, (lh.y + rh.y) / 2, 1.0)
    if angle == TRUNK_LEAN:
        ls, rs = points["left_shoulder"], points["right_shoulder"]
        shoulders = Keypoint("shoulders", (ls.x + rs.x) / 2, (ls.y + rs.y) / 2, 1.0)
        up = Keypoint("up", hips.x, hips.y - math.hypot(shoulders.x - hips.x, shoulders.y - hips.y), 1.0)
        return up, hips, shoulders
    lk, rk = points["left_knee"], points["right_knee"]
    return lk, hips, rk


def _arc(draw: ImageDraw.ImageDraw, a: Keypoint, v: Keypoint, b: Keypoint, label: str, font, scale: float) -> None:
    ra, rb = math.hypot(a.x - v.x, a.y - v.y), math.hypot(b.x - v.x, b.y - v.y)
    radius = max(8.0 * scale, 0.35 * min(ra, rb))
    if min(ra, rb) < 1.0:
        return
    # Pillow's angles run clockwise from 3 o'clock (image y grows downwards): go the short way round.
    start = math.degrees(math.atan2(a.y - v.y, a.x - v.x))
    end = math.degrees(math.atan2(b.y - v.y, b.x - v.x))
    if (end - start) % 360 > 180:
        start, end = end, start
    box = [v.x - radius, v.y - radius, v.x + radius, v.y + radius]
    width = max(2, round(4 * scale))
    draw.arc(box, start, end, fill=ARC, width=width)
    draw.line([(v.x, v.y), (a.x, a.y)], fill=ARC, width=max(1, width // 2))
    draw.line([(v.x, v.y), (b.x, b.y)], fill=ARC, width=max(1, width // 2))
    # The label outside the arc, on the bisector of the two rays.
    mid = math.radians(start + ((end - start) % 360) / 2)
    x, y = v.x + (radius + 6 * scale) * math.cos(mid), v.y + (radius + 6 * scale) * math.sin(mid)
    draw.text((x, y), label, font=font, fill=ARC, anchor="mm", stroke_width=max(1, round(scale)), stroke_fill=(0, 0, 0))
