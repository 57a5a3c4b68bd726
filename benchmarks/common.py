"""What every benchmark records: the machine's fingerprint (edgepose.bench.device_info) and latency statistics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgepose.bench.device_info import fingerprint
from edgepose.bench.measure import summarize
from edgepose.eval.coco import oks
from edgepose.io.atomic import atomic_path

__all__ = ["SHARED_DATA", "fingerprint", "interleaved", "oks", "pingpong", "pose_xy", "save_result", "stats"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"


def save_result(result: dict, name: str, out: str | Path | None = None) -> Path:
    """Write `result` as JSON to `out` (default benchmarks/results/NAME.json), atomically; return the path."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return path


def pose_xy(pose) -> np.ndarray:
    """Kx2 pixel coordinates of a Pose."""
    return np.array([(k.x, k.y) for k in pose.keypoints])


def stats(xs: list[float]) -> dict:
    s = summarize(xs)
    return {"mean_ms": s["mean"], "p50_ms": s["p50"], "p90_ms": s["p90"], "min_ms": s["min"]}


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


def pingpong(clip: list) -> list:
    """One forward-and-back cycle of a clip's frames (0 1 2 3 2 1), for streams longer than the clip that
    never jump from its last frame to its first."""
    return clip + clip[-2:0:-1] if len(clip) > 1 else list(clip)
