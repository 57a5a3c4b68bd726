"""What every benchmark records: the machine's fingerprint and latency statistics."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fingerprint() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import ai_edge_litert

    return {
        "os": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ai_edge_litert": getattr(ai_edge_litert, "__version__", "unknown"),
    }


def stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {
        "mean_ms": round(statistics.fmean(xs), 3),
        "p50_ms": round(xs[len(xs) // 2], 3),
        "p90_ms": round(xs[int(len(xs) * 0.9)], 3),
        "min_ms": round(xs[0], 3),
    }


def interleaved(cases: dict[str, Callable[[], object]], rounds: int, per_round: int, warmup: int) -> dict[str, list]:
    """Milliseconds per call of each case, measured in alternating rounds so load changes hit all alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t0) * 1000.0)
    return samples
