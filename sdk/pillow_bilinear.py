"""Pillow's bilinear affine transform of an RGB image, bit for bit, in numpy, for axis-aligned transforms.

`Image.transform(size, AFFINE, coeffs, resample=BILINEAR)` calls a filter function per output pixel
(Pillow's generic transform), which makes it the largest per-frame cost after inference. When the
transform has no rotation or shear (b == d == 0), the input x of an output pixel depends only on its
column and the input y only on its row, so the two taps and weights of every column and every row can be
computed once and the interpolation done on whole rows at a time.

The result must equal Pillow's to the bit (a one-LSB change moves an int8 model's outputs), so every
floating-point operation below is the one Pillow 13's C code (src/libImaging/Geometry.c:
affine_transform, bilinear_filter32RGB) performs on the same operands in the same order, in IEEE
doubles:

    xin = a * (x + 0.5) + b * (y + 0.5) + c         (and yin likewise with d, e, f)
    black if not (0 <= xin < width and 0 <= yin < height)
    xin -= 0.5; x0 = floor(xin); dx = xin - x0      (and y0, dy likewise)
    top = p[y0][x0] + (p[y0][x0 + 1] - p[y0][x0]) * dx, x0 and x0 + 1 clipped into the image,
          bottom likewise on row y0 + 1 (top itself when y0 + 1 is outside)
    pixel = (uint8) truncate(top + (bottom - top) * dy)

The horizontal value `top` of an output pixel depends only on its source row and output column, so it
is computed once per source row and reused by every output row that reads that row: the same doubles
Pillow computes per pixel.

This equals Pillow built for x86-64, where the manylinux wheels do not fuse a multiply and an add. A
build that contracts `a + (b - a) * d` into a fused multiply-add (GCC does so by default for AArch64
targets) rounds once instead of twice and can differ from this module (and from x86 Pillow) by one LSB.
"""

from __future__ import annotations

import math
import threading

import numpy as np

# Byte offsets of the three channels of one interleaved RGB pixel.
_CHANNELS = np.arange(3)


def affine_bilinear(
    src: np.ndarray,
    size: tuple[int, int],
    coeffs: tuple[float, float, float, float, float, float],
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """What `np.asarray(Image.fromarray(src).transform(size, Image.Transform.AFFINE, coeffs,
    resample=Image.Resampling.BILINEAR))` returns, for an HxWx3 uint8 `src` and an axis-aligned
    transform (coeffs[1] == coeffs[3] == 0): output pixel (i, j) samples the input at
    (a * (j + 1/2) + c, e * (i + 1/2) + f) in pixel-edge coordinates, black outside the input.

    Written into `out` (shape (size[1], size[0], 3), uint8) when given, else into a new array; returns
    that array, or None for what this does not handle (a rotation or shear, non-finite coefficients,
    another image layout), where the caller should use Pillow itself.
    """
    a, b, c, d, e, f = (float(v) for v in coeffs)
    if b != 0.0 or d != 0.0 or not all(math.isfinite(v) for v in (a, c, e, f)):
        return None
    if src.dtype != np.uint8 or src.ndim != 3 or src.shape[2] != 3 or src.shape[0] < 1 or src.shape[1] < 1:
        return None
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        return None
    if out is None:
        out = np.empty((height, width, 3), dtype=np.uint8)
    elif out.shape != (height, width, 3) or out.dtype != np.uint8:
        raise ValueError(f"out must be a ({height}, {width}, 3) uint8 array, not {out.shape} {out.dtype}")

    src_height, src_width = src.shape[:2]
    cols = _taps(a, c, width, src_width)
    rows = _taps(e, f, height, src_height)
    if cols is None or rows is None:
        out[...] = 0
        return out
    j0, j1, x_lo, x_hi, dx = cols
    i0, i1, y_lo, y_hi, dy = rows
    # Everything outside the block of output pixels that read the input is black (Pillow's fill).
    out[:i0] = 0
    out[i1:] = 0
    out[i0:i1, :j0] = 0
    out[i0:i1, j1:] = 0

    # Byte columns of the left and right taps of every output column, channels interleaved as in `out`.
    byte_lo = (3 * x_lo[:, None] + _CHANNELS).ravel()
    byte_hi = (3 * x_hi[:, None] + _CHANNELS).ravel()
    dx3 = np.repeat(dx, 3)

    n_rows = i1 - i0
    width3 = 3 * (j1 - j0)
    used, where = np.unique(np.concatenate((y_lo, y_hi)), return_inverse=True)
    if len(used) == 2 * n_rows:
        # No source row feeds two output rows (a shrink by 2 or more): interpolate the rows in the order
        # the output reads them, so that the top and bottom rows are views, not gathered copies.
        per_row = _horizontal(src, np.concatenate((y_lo, y_hi)), byte_lo, byte_hi, dx3)
        top, bottom = per_row[:n_rows], per_row[n_rows:]
    else:
        per_row = _horizontal(src, used, byte_lo, byte_hi, dx3)
        top = np.take(per_row, where[:n_rows], axis=0, out=_scratch("top", (n_rows, width3), np.float64), mode="clip")
        bottom = np.take(per_row, where[n_rows:], axis=0, out=_scratch("bottom", (n_rows, width3), np.float64), mode="clip")
    np.subtract(bottom, top, out=bottom)
    np.multiply(bottom, dy[:, None], out=bottom)
    np.add(bottom, top, out=bottom)
    # Pillow's (UINT8) cast truncates; the values lie in [0, 255] (each step interpolates between two).
    np.copyto(out[i0:i1, j0:j1], bottom.reshape(n_rows, j1 - j0, 3), casting="unsafe")
    return out


def _taps(
    scale: float, offset: float, n_out: int, n_in: int
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray] | None:
    """For one axis: the range [start, stop) of output indices that read the input, and for each of
    them the two input indices (clipped into the input) and the weight of the second; None when no
    output index reads the input."""
    # Pillow adds the other axis' term, coefficient (zero) times coordinate, before the offset; a zero
    # can only change the sign of a zero sum, which neither the tests nor the floor below can see.
    pos = scale * (np.arange(n_out) + 0.5) + offset
    # Pillow tests the coordinate before moving it to pixel centres: [0, n_in) reads the input.
    inside = np.flatnonzero((pos >= 0.0) & (pos < n_in))
    if len(inside) == 0:
        return None
    # pos is monotonic in the output index (rounding is monotonic), so the inside indices are a run.
    start, stop = int(inside[0]), int(inside[-1]) + 1
    centre = pos[start:stop] - 0.5
    floor = np.floor(centre)
    weight = centre - floor
    first = floor.astype(np.intp)
    return start, stop, np.clip(first, 0, n_in - 1), np.clip(first + 1, 0, n_in - 1), weight


def _horizontal(
    src: np.ndarray, rows: np.ndarray, byte_lo: np.ndarray, byte_hi: np.ndarray, dx3: np.ndarray
) -> np.ndarray:
    """left + (right - left) * dx for `rows` of `src` at every output column, as float64 rows of
    interleaved RGB."""
    picked = src[rows].reshape(len(rows), -1)
    shape = (len(rows), len(byte_lo))
    left = np.take(picked, byte_lo, axis=1, out=_scratch("left", shape, np.uint8), mode="clip")
    right = np.take(picked, byte_hi, axis=1, out=_scratch("right", shape, np.uint8), mode="clip")
    left_f = _scratch("left_f", shape, np.float64)
    value = _scratch("value", shape, np.float64)
    np.copyto(left_f, left)
    np.copyto(value, right)
    np.subtract(value, left_f, out=value)
    np.multiply(value, dx3, out=value)
    np.add(value, left_f, out=value)
    return value


_local = threading.local()


def _scratch(slot: str, shape: tuple[int, int], dtype: type) -> np.ndarray:
    pool = _local.__dict__
    n = shape[0] * shape[1]
    buf = pool.get(slot)
    if buf is None or buf.size < n or buf.dtype != dtype:
        buf = np.empty(n, dtype)
        pool[slot] = buf
    return buf[:n].reshape(shape)
