"""Pillow's bilinear affine transform of an RGB image, bit for bit, in numpy, for axis-aligned transforms.

`Image.transform(size, AFFINE, coeffs, resample=BILINEAR)` calls a filter function per output pixel
(Pillow's generic transform), which makes it the largest per-frame cost after inference. Without rotation
or shear (b == d == 0) the input x of an output pixel depends only on its column and the input y only on
its row, so the taps and weights are computed once per column and once per row, and the interpolation
runs on whole rows.

The result must equal Pillow's to the bit (a one-LSB change moves an int8 model's outputs), so every
floating-point operation below is one that Pillow 13's C code (src/libImaging/Geometry.c:
affine_transform, bilinear_filter32RGB) performs, on the same operands, in the same order, in IEEE
doubles. Per output pixel (j, i) and channel:

    xin = a * (j + 0.5) + b * (i + 0.5) + c             yin likewise with d, e, f
    black unless 0 <= xin < width and 0 <= yin < height  (tested before the shift below)
    xin -= 0.5;  x = floor(xin);  dx = xin - x           y and dy likewise
    top = p[y][x] + (p[y][x + 1] - p[y][x]) * dx         x and x + 1 clipped into the image, y too
    bottom: the same on row y + 1, or top itself when y + 1 is outside the image
    pixel = (uint8) (top + (bottom - top) * dy)          the cast truncates

`top` depends only on the source row and the output column, so it is computed once per source row and
shared by the output rows that read that row: the same doubles Pillow computes per pixel.

This matches Pillow's x86-64 wheels, whose C code rounds each multiply and each add. The AArch64 wheels
(a Raspberry Pi's) contract `a + (b - a) * d` into a fused multiply-add (fmadd in bilinear_filter32RGB),
which rounds once instead of twice: in principle a one-LSB difference from x86 Pillow, and from this
module, although a C replica of both found none in 86 million channel values.
"""

from __future__ import annotations

import functools
import math
import threading
from typing import NamedTuple

import numpy as np

# Byte offsets of the channels within one interleaved RGB pixel.
_CHANNELS = np.arange(3)
# Scratch arrays up to this many bytes are kept per thread and reused (see _scratch).
_SCRATCH_MAX_BYTES = 8 << 20


class _Taps(NamedTuple):
    """One axis: output indices [start, stop) sample inside the input; for each, the input indices of
    its two taps (clipped into the input) and the weight of the second."""

    start: int
    stop: int
    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray


class _Plan(NamedTuple):
    """Everything about a transform that does not depend on the pixels (read-only arrays)."""

    cols: tuple[int, int]  # output columns [j0, j1) that sample inside the input
    rows: tuple[int, int]  # output rows [i0, i1) likewise
    byte_lo: np.ndarray  # byte column, within a source row, of each output byte's left tap
    byte_hi: np.ndarray  # ... and of its right tap
    dx: np.ndarray  # weight of the right tap of each output byte
    dy: np.ndarray  # weight of the bottom row of each output row, as a column
    source_rows: np.ndarray  # the source rows interpolated horizontally, in that order
    top: np.ndarray | None  # index in source_rows of each output row's top row (None: the first n_rows)
    bottom: np.ndarray | None  # ... and of its bottom row (None: the next n_rows)


def affine_bilinear(
    src: np.ndarray,
    size: tuple[int, int],
    coeffs: tuple[float, float, float, float, float, float],
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """What `np.asarray(Image.fromarray(src).transform(size, Image.Transform.AFFINE, coeffs,
    resample=Image.Resampling.BILINEAR))` returns, for an HxWx3 uint8 `src` (any strides) and an
    axis-aligned transform (coeffs[1] == coeffs[3] == 0): output pixel (i, j) samples the input at
    (a * (j + 1/2) + c, e * (i + 1/2) + f) in pixel-edge coordinates, black outside the input.

    Written into `out` (shape (size[1], size[0], 3), uint8) when given, else into a new array, and that
    array is returned; None for what this does not handle (rotation or shear, non-finite coefficients,
    another image layout, an empty image), where the caller should call Pillow.
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

    plan = _plan(a, c, e, f, width, height, src.shape[0], src.shape[1])
    if plan is None:
        out[...] = 0
        return out
    (j0, j1), (i0, i1) = plan.cols, plan.rows
    per_row = _horizontal(src, plan)
    n_rows = i1 - i0
    block = (n_rows, per_row.shape[1])
    # mode="clip" (a no-op: the indices are valid) lets np.take write straight into its `out` array;
    # the default mode writes to a temporary first.
    if plan.top is None:
        top = per_row[:n_rows]
    else:
        top = np.take(per_row, plan.top, axis=0, out=_scratch("top", block, np.float64), mode="clip")
    if plan.bottom is None:
        bottom = per_row[n_rows : 2 * n_rows]
    else:
        bottom = np.take(per_row, plan.bottom, axis=0, out=_scratch("bottom", block, np.float64), mode="clip")
    np.subtract(bottom, top, out=bottom)
    np.multiply(bottom, plan.dy, out=bottom)
    np.add(bottom, top, out=bottom)
    # Pillow's (UINT8) cast truncates, as numpy's does; each value lies between two pixel values.
    np.copyto(out[i0:i1, j0:j1], bottom.reshape(n_rows, j1 - j0, 3), casting="unsafe")
    # Pillow's fill: black wherever the sample point is outside the input (written last, after every read
    # of src, in case `out` is a view of it).
    out[:i0] = 0
    out[i1:] = 0
    out[i0:i1, :j0] = 0
    out[i0:i1, j1:] = 0
    return out


def _horizontal(src: np.ndarray, plan: _Plan) -> np.ndarray:
    """left + (right - left) * dx at every output byte of each of the plan's source rows, as float64
    rows of interleaved RGB (a scratch array)."""
    picked = src[plan.source_rows].reshape(len(plan.source_rows), -1)
    shape = (len(plan.source_rows), len(plan.byte_lo))
    # np.take lays its result out row by row; fancy indexing along axis 1 is faster but leaves the result
    # transposed in memory, which every later pass pays for.
    left = np.take(picked, plan.byte_lo, axis=1, out=_scratch("left", shape, np.uint8), mode="clip")
    right = np.take(picked, plan.byte_hi, axis=1, out=_scratch("right", shape, np.uint8), mode="clip")
    # right - left is the same exact integer whether subtracted in int16 or in doubles; int16 is cheaper.
    diff = np.subtract(right, left, out=_scratch("diff", shape, np.int16), dtype=np.int16)
    value = _scratch("value", shape, np.float64)
    np.copyto(value, diff)
    np.multiply(value, plan.dx, out=value)
    np.add(value, left, out=value)
    return value


@functools.lru_cache(maxsize=32)
def _plan(
    a: float, c: float, e: float, f: float, width: int, height: int, src_height: int, src_width: int
) -> _Plan | None:
    """The plan of a transform; cached, since a stream repeats its letterbox and tiles every frame.
    None when no output pixel samples inside the input."""
    cols = _taps(a, c, width, src_width)
    rows = cols if (e, f, height) == (a, c, width) and src_height == src_width else _taps(e, f, height, src_height)
    if cols is None or rows is None:
        return None
    byte_lo = (3 * cols.lo[:, None] + _CHANNELS).ravel()
    byte_hi = (3 * cols.hi[:, None] + _CHANNELS).ravel()
    dx = np.repeat(cols.weight, 3)
    dy = rows.weight[:, None]

    # Three ways to give each output row its top and bottom source rows, interpolated horizontally:
    # interpolate every used source row once and gather both (fewest rows; what an enlargement needs),
    # interpolate the top rows in output order and then the other bottom rows, gathering only the
    # bottoms, or interpolate top and bottom rows in output order (no gather; a shrink by 2 or more
    # shares no rows). A gathered row costs about an eighth of a horizontal interpolation of one.
    n_rows = rows.stop - rows.start
    used = np.zeros(src_height, dtype=bool)
    used[rows.lo] = True
    used[rows.hi] = True
    used_once = np.flatnonzero(used)
    top_rows = np.zeros(src_height, dtype=bool)
    top_rows[rows.lo] = True
    other_bottoms = np.flatnonzero(used & ~top_rows)
    cost_once = len(used_once) + 2 * n_rows / 8
    cost_tops_first = n_rows + len(other_bottoms) + n_rows / 8
    cost_in_order = 2 * n_rows
    top: np.ndarray | None = None
    bottom: np.ndarray | None = None
    if cost_in_order <= min(cost_once, cost_tops_first):
        source_rows = np.concatenate((rows.lo, rows.hi))
    elif cost_tops_first <= cost_once:
        source_rows = np.concatenate((rows.lo, other_bottoms))
        slot = np.empty(src_height, dtype=np.intp)
        slot[rows.lo] = np.arange(n_rows)
        slot[other_bottoms] = np.arange(n_rows, n_rows + len(other_bottoms))
        bottom = slot[rows.hi]
    else:
        source_rows = used_once
        slot = np.cumsum(used) - 1
        top, bottom = slot[rows.lo], slot[rows.hi]
    arrays = [byte_lo, byte_hi, dx, dy, source_rows, top, bottom]
    for array in arrays:
        if array is not None:
            array.flags.writeable = False
    return _Plan((cols.start, cols.stop), (rows.start, rows.stop), *arrays)


def _taps(scale: float, offset: float, n_out: int, n_in: int) -> _Taps | None:
    """One axis of the transform (see _Taps); None when no output index samples inside the input."""
    # Pillow adds the other axis' term, a zero coefficient times a coordinate, before the offset: that
    # can only change the sign of a zero, which neither the inside test nor the floor can see.
    pos = scale * (np.arange(n_out) + 0.5) + offset
    inside = np.flatnonzero((pos >= 0.0) & (pos < n_in))
    if len(inside) == 0:
        return None
    # pos is monotonic in the output index (rounding is), so the inside indices form one run.
    start, stop = int(inside[0]), int(inside[-1]) + 1
    centre = pos[start:stop] - 0.5
    first = np.floor(centre)
    weight = centre - first
    # Inside points have centre >= -0.5 and < n_in - 0.5, so lo >= -1 and lo + 1 <= n_in.
    lo = first.astype(np.intp)
    return _Taps(start, stop, np.maximum(lo, 0), np.minimum(lo + 1, n_in - 1), weight)


_local = threading.local()


def _scratch(slot: str, shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
    """A C-contiguous array of `shape` for intermediate values, reused by later calls in this thread:
    a fresh array of a megabyte or more comes from mmap and pays a page fault per 4 KiB on first touch,
    about as much as an arithmetic pass over it."""
    n = shape[0] * shape[1]
    if n * np.dtype(dtype).itemsize > _SCRATCH_MAX_BYTES:
        return np.empty(shape, dtype)
    pool: dict[str, np.ndarray] = _local.__dict__
    buf = pool.get(slot)
    if buf is None or buf.size < n or buf.dtype != dtype:
        buf = pool[slot] = np.empty(n, dtype)
    return buf[:n].reshape(shape)
