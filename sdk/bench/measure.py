"""Latency statistics and the process's memory, as `edgepose bench` reports them."""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Sequence
from pathlib import Path


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as numpy's default ("linear", Hyndman-Fan type 7), written out so the runtime and
    its tests agree on one formula: h = (n-1)·q/100, value = x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]).
    """
    if not sorted_ms:
        raise ValueError("percentile of no samples")
    h = (len(sorted_ms) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (h - lo) * (sorted_ms[hi] - sorted_ms[lo])


def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """n, mean, std (sample, n-1), min, p50, p90, p99, max of per-frame milliseconds."""
    xs = sorted(float(x) for x in samples_ms)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples to summarize")
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    out: dict[str, float | int] = {"n": n, "mean": mean, "std": std, "min": xs[0]}
    for q in (50, 90, 99):
        out[f"p{q}"] = percentile(xs, q)
    out["max"] = xs[-1]
    return {k: (v if k == "n" else round(v, 4)) for k, v in out.items()}


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def rss_mb() -> float | None:
    """The resident set now (Linux); None where /proc is not there."""
    kb = _status_kb("VmRSS")
    return round(kb / 1024, 1) if kb is not None else None


def peak_rss_mb() -> float:
    """The process's resident-set high-water mark so far."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return round(kb / 1024, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # macOS counts bytes
