"""edgepose.pillow_bilinear against Pillow itself: bit-exact on every case, or the project's keypoints move.

Thousands of seeded random axis-aligned transforms on the shared COCO photos and on noise: shrinks and
enlargements from 0.1x to 10x, flips, fractional shifts, ROIs over every edge and wholly outside, sample
points on exact pixel centres and edges, tiny sources and outputs, non-contiguous sources.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from edgepose.pillow_bilinear import affine_bilinear
from tests.conftest import DATA_DIR

PHOTOS = ("000000000785.jpg", "000000196141.jpg")

Coeffs = tuple[float, float, float, float, float, float]


def pillow(src: np.ndarray, size: tuple[int, int], coeffs: Coeffs) -> np.ndarray:
    """What the project computed before: Pillow's transform of the array, back as an array."""
    image = Image.fromarray(src).transform(size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)
    return np.asarray(image)


def assert_as_pillow(src: np.ndarray, size: tuple[int, int], coeffs: Coeffs) -> None:
    expected = pillow(src, size, coeffs)
    got = affine_bilinear(src, size, coeffs)
    assert got is not None, (src.shape, size, coeffs)
    if not np.array_equal(got, expected):
        wrong = np.argwhere(got != expected)
        i, j, ch = wrong[0]
        raise AssertionError(
            f"src {src.shape} size {size} coeffs {coeffs!r}: {len(wrong)} values differ, "
            f"first at ({i}, {j}, {ch}): {got[i, j, ch]} vs Pillow's {expected[i, j, ch]}"
        )


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [np.asarray(Image.open(DATA_DIR / "coco" / name).convert("RGB")) for name in PHOTOS]


def random_source(rng: np.random.Generator, photos: list[np.ndarray]) -> np.ndarray:
    """A crop of a photo (a strided view, as the resampler's ROIs are), noise, or a tiny image."""
    kind = rng.random()
    if kind < 0.1:
        h, w = (1, 1) if rng.random() < 0.3 else tuple(rng.integers(1, 4, 2))
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind < 0.3:
        h, w = rng.integers(1, 80, 2)
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    photo = photos[rng.integers(len(photos))]
    h, w = rng.integers(1, 160, 2)
    y, x = rng.integers(0, photo.shape[0] - h + 1), rng.integers(0, photo.shape[1] - w + 1)
    return photo[y : y + h, x : x + w]


def random_axis(rng: np.random.Generator, n_out: int, n_in: int) -> tuple[float, float]:
    """(scale, offset) of one axis: sample point of output index k at scale * (k + 1/2) + offset."""
    magnification = np.exp(rng.uniform(np.log(0.1), np.log(10.0)))
    scale = n_in / n_out / magnification if rng.random() < 0.5 else 1.0 / magnification
    # Where the sample points lie relative to the input: inside, over either edge, over both, outside.
    placement = rng.choice(
        ["inside", "over low edge", "over high edge", "over both", "outside"], p=[0.5, 0.15, 0.15, 0.1, 0.1]
    )
    if placement == "over both":
        scale = n_in / n_out * rng.uniform(1.1, 3.0)
    span = scale * n_out
    if placement == "inside":
        start = rng.uniform(0, max(n_in - span, 0))
    elif placement == "over low edge":
        start = rng.uniform(-span, 0)
    elif placement == "over high edge":
        start = rng.uniform(n_in - span, n_in)
    elif placement == "over both":
        start = rng.uniform(n_in - span, 0)
    else:
        start = rng.choice([-1.0, 1.0]) * (span + n_in + rng.uniform(0, 5))
    offset = start
    if rng.random() < 0.1:
        # Flipped: output index 0 samples the far end.
        scale, offset = -scale, start + span
    if rng.random() < 0.3:
        # Sample points on exact pixel edges and centres (integers and halves in pixel-edge coordinates),
        # where the inside test, the floor and the weights meet their boundaries.
        scale = (np.round(scale * 4) / 4) or 0.25
        offset = np.round(offset * 4) / 4
    return float(scale), float(offset)


def random_cases(seed: int, n: int, photos: list[np.ndarray]) -> Iterator[tuple[np.ndarray, tuple[int, int], Coeffs]]:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        src = random_source(rng, photos)
        if rng.random() < 0.05:
            width, height = 1, 1
        else:
            width, height = (int(v) for v in rng.integers(1, 48, 2))
        a, c = random_axis(rng, width, src.shape[1])
        e, f = random_axis(rng, height, src.shape[0])
        yield src, (width, height), (a, 0.0, c, 0.0, e, f)


@pytest.mark.parametrize("seed", range(4))
def test_random_axis_aligned_transforms_are_bit_exact(seed: int, photos: list[np.ndarray]) -> None:
    for src, size, coeffs in random_cases(seed, 2500, photos):
        assert_as_pillow(src, size, coeffs)


CROPS = {
    "letterbox 640x480 -> 192": ((480, 640), (192, 192), (640 / 192, 0.0, 0.0, 0.0, 640 / 192, -80.0)),
    "torso crop 300 -> 192": ((425, 640), (192, 192), (301.7 / 192, 0.0, 229.65, 0.0, 301.7 / 192, 69.4)),
    "detector tile 256 -> 224": ((425, 640), (224, 224), (256 / 224, 0.0, -0.07, 0.0, 256 / 224, 99.93)),
    "enlarged 200 -> 256": ((425, 640), (256, 256), (200 / 256, 0.0, 200.0, 0.0, 200 / 256, 100.0)),
    "non-square 192x256 over the corner": ((425, 640), (192, 256), (1.3, 0.0, 500.2, 0.0, 1.25, -40.7)),
    "shrunk 8x": ((425, 640), (80, 53), (8.0, 0.0, 0.0, 0.0, 8.0, 0.5)),
}


@pytest.mark.parametrize("name", CROPS)
def test_the_project_crop_kinds_are_bit_exact(name: str, photos: list[np.ndarray]) -> None:
    (h, w), size, coeffs = CROPS[name]
    for photo in photos:
        src = photo if photo.shape[:2] == (h, w) else np.asarray(Image.fromarray(photo).resize((w, h)))
        assert_as_pillow(src, size, coeffs)


LAYOUTS = {
    "view of a larger frame": lambda photo: photo[17:170, 33:290],
    "channels reversed (a BGR frame's RGB view)": lambda photo: photo[:, :, ::-1],
    "upside down": lambda photo: photo[::-1],
    "every other pixel": lambda photo: photo[::2, ::2],
    "Fortran order": np.asfortranarray,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_memory_layout_of_the_source(layout: str, photos: list[np.ndarray]) -> None:
    src = LAYOUTS[layout](photos[0][:200, :300])
    assert_as_pillow(src, (96, 80), (1.7, 0.0, -3.3, 0.0, 1.9, 2.2))
    assert_as_pillow(src, (50, 70), (0.6, 0.0, 11.0, 0.0, 0.45, 5.0))


def test_writes_into_out_and_blacks_out_what_is_outside(photos: list[np.ndarray]) -> None:
    src = photos[0][100:200, 100:250]
    size, coeffs = (64, 48), (2.0, 0.0, -40.0, 0.0, 2.0, 30.0)  # over the left and bottom edges
    out = np.full((48, 64, 3), 77, dtype=np.uint8)
    assert affine_bilinear(src, size, coeffs, out=out) is out
    assert np.array_equal(out, pillow(src, size, coeffs))
    assert (out[:, :10] == 0).all() and (out[-10:] == 0).all()

    outside = (1.0, 0.0, 1000.0, 0.0, 1.0, 0.0)
    out[...] = 77
    assert affine_bilinear(src, size, outside, out=out) is out
    assert not out.any() and not pillow(src, size, outside).any()

    with pytest.raises(ValueError):
        affine_bilinear(src, size, coeffs, out=np.empty((64, 48, 3), np.uint8))


def test_the_same_transform_twice_gives_the_same_pixels(photos: list[np.ndarray]) -> None:
    # The transform's plan is cached and its scratch arrays reused: nothing may leak between calls.
    size, coeffs = (192, 192), (1.4, 0.0, 3.0, 0.0, 1.4, 7.0)
    first = affine_bilinear(photos[0], size, coeffs)
    second = affine_bilinear(photos[1], size, coeffs)
    assert first is not None and second is not None and first is not second
    assert np.array_equal(first, pillow(photos[0], size, coeffs))
    assert np.array_equal(second, pillow(photos[1], size, coeffs))


def test_what_it_leaves_to_pillow(photos: list[np.ndarray]) -> None:
    src = photos[0][:100, :100]
    size = (32, 32)
    for coeffs in (
        (0.9, 0.3, 0.0, -0.3, 0.9, 10.0),
        (1.0, 0.0, 0.0, 1e-9, 1.0, 0.0),
        (1.0, -1e-12, 0.0, 0.0, 1.0, 0.0),
    ):
        assert affine_bilinear(src, size, coeffs) is None, coeffs
    assert affine_bilinear(src, size, (float("nan"), 0.0, 0.0, 0.0, 1.0, 0.0)) is None
    assert affine_bilinear(src, size, (1.0, 0.0, float("inf"), 0.0, 1.0, 0.0)) is None
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert affine_bilinear(src[..., 0], size, identity) is None  # grey
    assert affine_bilinear(np.dstack([src, src[..., :1]]), size, identity) is None  # RGBA
    assert affine_bilinear(src.astype(np.float32), size, identity) is None
    assert affine_bilinear(src[:0], size, identity) is None
    # A zero shear coefficient, of either sign, is an axis-aligned transform.
    assert_as_pillow(src, size, (1.5, -0.0, 2.0, 0.0, 1.5, 1.0))
