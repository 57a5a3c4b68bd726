"""The parity report: source and converted model on the same runtime inputs, through the real runtime.

Both models get the very tensors the runtime fed the source on the calibration images (converted to
each model's dtype and layout) and are decoded by the runtime's own decoder for the family, so errors
are in pixels of the model input (e.g. the 256x256 BlazePose crop), where the family's decoder puts them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepose.bindings import Backend, dequantize, to_input_dtype
from edgepose.geometry import Roi
from edgepose.geometry import oks as geometry_oks
from edgepose.io.atomic import atomic_path
from edgepose.keypoints import sigmas_for
from edgepose.models.base import is_nchw
from edgepose.models.families import FAMILIES

# A keypoint counts when the SOURCE is confident about it (above its family's confident_score): a single
# low-confidence keypoint can jump across the image between two kernels of the same model.
# BlazePose's presence flag and the detector's "someone is here" must agree wherever the source is clear.
CLEAR_MARGIN = 0.2
MIN_AREA = 32.0 * 32.0
TIMING_ROUNDS = 30


@dataclass
class Decoded:
    kps: np.ndarray  # Kx3 (x, y, score) in model-input pixels
    present: float | None = None  # a pose-level probability where the family has one


@dataclass
class ParityReport:
    source: str
    output: str
    format: str
    images: int
    inputs: int
    mean_px_err: float
    max_px_err: float
    mean_oks: float
    score_mae: float
    presence_flips: int
    presence_mae: float
    size_bytes: int
    source_size_bytes: int
    invoke_ms: dict[str, float]
    min_oks: float
    max_mean_px_err: float | None
    passed: bool
    keypoints_compared: int
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """As a JSON-able dict; a measure that does not apply (NaN) becomes null."""
        return _no_nan(asdict(self))

    def write(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")


def _no_nan(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def input_size(spec) -> tuple[int, int]:
    """(width, height) of an image input, NHWC or NCHW."""
    s = spec.shape
    return (s[3], s[2]) if is_nchw(s) else (s[2], s[1])


def decoder_for(family: str, backend: Backend) -> Callable[[list[np.ndarray]], Decoded]:
    """Raw outputs of `backend` -> keypoints in its input pixels, via the runtime's model class for the family."""
    w, h = input_size(backend.inputs[0])
    whole = Roi(w / 2.0, h / 2.0, float(w), float(h), 0.0)
    fam = FAMILIES[family]
    if fam.default_task == "detector":
        det = fam.model_class("detector")(backend)

        def detector(outs: list[np.ndarray]) -> Decoded:
            found = det.decode(outs, [whole])
            if not found:
                return Decoded(np.zeros((6, 3)), 0.0)
            d = found[0]
            x0, y0, x1, y1 = d.face_box
            pts = np.vstack([d.keypoints, [[x0, y0], [x1, y1]]])
            return Decoded(np.hstack([pts, np.full((6, 1), d.score)]), d.score)

        return detector
    if "single" not in fam.tasks:
        raise ValueError(f"no parity decoder for the {family} family (parity compares one crop at a time)")
    model = fam.model_class("single")(backend)
    has_presence = fam.presence  # a presence probability: parity counts its flips

    def pose(outs: list[np.ndarray]) -> Decoded:
        est = model.decode(outs, [whole], w, h)[0]
        return Decoded(est.keypoints, est.score if has_presence else None)

    return pose


def adapt_input(x: np.ndarray, src_spec, dst_spec) -> np.ndarray:
    """A source input tensor as the other model takes it: real values, then its layout and dtype."""
    real = dequantize(x, src_spec)
    if real.ndim == 4 and is_nchw(src_spec.shape) != is_nchw(dst_spec.shape):
        real = real.transpose(0, 2, 3, 1) if is_nchw(src_spec.shape) else real.transpose(0, 3, 1, 2)
    if real.shape[1:] != tuple(dst_spec.shape)[1:] and all(d > 1 for d in dst_spec.shape[1:]):
        raise ValueError(f"input {real.shape} does not fit the converted model's {tuple(dst_spec.shape)}")
    return to_input_dtype(real, dst_spec)


def _sigmas(family: str, k: int) -> np.ndarray:
    sigmas = FAMILIES[family].layout.sigmas
    return np.asarray(sigmas) if len(sigmas) == k else sigmas_for(k)


class Reference:
    """The source's decoded poses on fixed inputs, computed once; `against` scores any other model."""

    def __init__(self, family: str, source: Backend, inputs: list[list[np.ndarray]]):
        self.family, self.source, self.inputs = family, source, inputs
        decode = decoder_for(family, source)
        self.decoded = [decode(source.run(x)) for x in inputs]
        threshold = FAMILIES[family].confident_score
        self.confident = sum(
            int((d.kps[:, 2] >= threshold).sum()) for d in self.decoded if d.present is None or d.present >= 0.5
        )

    def against(self, output: Backend) -> dict:
        """Keypoint errors, OKS, score error and presence flips of `output` against the source."""
        dec_out = decoder_for(self.family, output)
        threshold = FAMILIES[self.family].confident_score
        errors, oks, score_err, presence_err, flips = [], [], [], [], 0
        for x, ref in zip(self.inputs, self.decoded):
            got = dec_out(output.run([adapt_input(t, s, d) for t, s, d in zip(x, self.source.inputs, output.inputs)]))
            if ref.present is not None:
                presence_err.append(abs(ref.present - (got.present or 0.0)))
                if abs(ref.present - 0.5) > CLEAR_MARGIN and (ref.present >= 0.5) != ((got.present or 0.0) >= 0.5):
                    flips += 1
                if ref.present < 0.5:
                    continue  # nobody there: the landmarks are noise in both
            score_err.append(np.abs(ref.kps[:, 2] - got.kps[:, 2]).mean())
            conf = ref.kps[:, 2] >= threshold
            if not conf.any():
                continue
            d = np.hypot(*(ref.kps[conf, :2] - got.kps[conf, :2]).T)
            errors.extend(d.tolist())
            lo, hi = ref.kps[conf, :2].min(axis=0), ref.kps[conf, :2].max(axis=0)
            area = max(float(np.prod(hi - lo)), MIN_AREA)
            sigmas = _sigmas(self.family, len(ref.kps))[conf]
            oks.append(float(geometry_oks(d**2, area, sigmas, np.ones(len(d), dtype=bool))))
        return {
            "mean_px_err": float(np.mean(errors)) if errors else float("nan"),
            "max_px_err": float(np.max(errors)) if errors else float("nan"),
            "mean_oks": float(np.mean(oks)) if oks else float("nan"),
            "score_mae": float(np.mean(score_err)) if score_err else float("nan"),
            "presence_flips": flips,
            "presence_mae": float(np.mean(presence_err)) if presence_err else 0.0,
            "keypoints_compared": len(errors),
        }


def compare(family: str, source: Backend, output: Backend, inputs: list[list[np.ndarray]]) -> dict:
    """Keypoint errors, OKS, score error and presence flips of `output` against `source` on `inputs`."""
    return Reference(family, source, inputs).against(output)


def invoke_ms(source: Backend, output: Backend, x: list[np.ndarray], rounds: int = TIMING_ROUNDS) -> dict:
    """Median invoke time of both, interleaved in one loop so machine load hits both alike."""
    y = [adapt_input(t, s, d) for t, s, d in zip(x, source.inputs, output.inputs)]
    times: dict[str, list[float]] = {"source": [], "output": []}
    for i in range(rounds + 3):
        for key, backend, inp in (("source", source, x), ("output", output, y)):
            t0 = time.perf_counter()
            backend.run(inp)
            if i >= 3:
                times[key].append((time.perf_counter() - t0) * 1000.0)
    return {k: round(float(np.median(v)), 3) for k, v in times.items()}


def passes(metrics: dict, min_oks: float, max_mean_px_err: float | None) -> bool:
    ok = np.isfinite(metrics["mean_oks"]) and metrics["mean_oks"] >= min_oks and metrics["presence_flips"] == 0
    if max_mean_px_err is not None:
        ok = ok and np.isfinite(metrics["mean_px_err"]) and metrics["mean_px_err"] <= max_mean_px_err
    return bool(ok)


def parity_report(
    ref: Reference,
    output_path: Path,
    fmt: str,
    images: int,
    min_oks: float,
    max_mean_px_err: float | None,
    source_label: str,
    source_size: int,
) -> ParityReport:
    """The report of `output_path` against the source decoded in `ref` (computed once per conversion)."""
    from edgepose.bindings import open_backend

    output = open_backend(output_path)
    metrics = ref.against(output)
    return ParityReport(
        source=source_label,
        output=str(output_path),
        format=fmt,
        images=images,
        inputs=len(ref.inputs),
        size_bytes=output_path.stat().st_size,
        source_size_bytes=source_size,
        invoke_ms=invoke_ms(ref.source, output, ref.inputs[0]),
        min_oks=min_oks,
        max_mean_px_err=max_mean_px_err,
        passed=passes(metrics, min_oks, max_mean_px_err),
        **metrics,
    )


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
