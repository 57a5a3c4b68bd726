"""One call from a source model to an edge-ready file, with its parity report.

source -> float ONNX (tf2onnx / torch export / as given) -> the asked format
       -> metadata embedded -> parity report against the source on the runtime's own inputs
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.converters.calibration import load_images, runtime_inputs
from edgepose.converters.parity import (
    ParityReport,
    Reference,
    adapt_input,
    compare,
    invoke_ms,
    parity_report,
    passes,
    path_size,
)
from edgepose.converters.sources import Source, identify
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path
from edgepose.models.base import is_nchw
from edgepose.models.families import family as family_row

FORMATS = ("onnx", "onnx-int8", "tflite-fp32", "tflite-fp16", "tflite-int8")
FLOAT_MIN_OKS = 0.98
INT8_MIN_OKS = 0.90
# int8 targets on the model input, where the family has a published one (issue 4: BlazePose landmarks).
SEARCH_INPUTS = 16
PRESENCE_WEIGHT = 10.0  # in the search's ranking, a presence shift of 0.1 weighs like a pixel


@dataclass
class ConvertOptions:
    source: Path
    to: str
    output: Path
    calib: Path | None = None
    family: str = "auto"
    variant: str | None = None
    report: Path | None = None
    min_oks: float | None = None
    max_px_err: float | None = None
    io_type: str = "float"  # tflite-int8 input/output: float, int8 or uint8 (Edge TPU users)
    mixed_precision: bool = True
    max_float_layers: int | None = None  # None: as many as it takes (every op, at worst)
    progress: Callable[[str], None] = print


@dataclass
class ConversionResult:
    output: Path
    report: ParityReport
    seconds: float
    steps: list[tuple[str, float]] = field(default_factory=list)


class _Steps:
    def __init__(self, progress: Callable[[str], None]):
        self.progress = progress
        self.done: list[tuple[str, float]] = []
        self._t0 = time.perf_counter()
        self._label: str | None = None

    def __call__(self, label: str) -> None:
        self.finish()
        self._label, self._t0 = label, time.perf_counter()
        self.progress(f"{label} ...")

    def finish(self) -> None:
        if self._label is not None:
            self.done.append((self._label, round(time.perf_counter() - self._t0, 2)))
            self._label = None


def convert(opts: ConvertOptions) -> ConversionResult:
    """Convert, check parity, write the output (and the report) atomically; raise ModelError on failure."""
    start = time.perf_counter()
    _check_options(opts)
    src = identify(opts.source, opts.family)
    steps = _Steps(opts.progress)
    if src.family == "posenet":
        from edgepose.converters.posenet_convert import convert_posenet

        return convert_posenet(src, opts, steps, start)
    steps("reading calibration images")
    images = load_images(opts.calib)
    with tempfile.TemporaryDirectory(prefix="edgepose-convert-") as tmp:
        work = Path(tmp)
        try:
            report = _convert_in(opts, src, images, work, steps)
        except ImportError as e:
            from edgepose.converters.toolchain import missing_extra

            raise missing_extra(e.name or str(e)) from e
        except Exception as e:  # the toolchain fails in many ways; each becomes one line, logs kept
            kept = _keep_logs(work, Path(opts.output))
            message = str(e) if isinstance(e, ModelError) else f"conversion failed: {type(e).__name__}: {e}"
            message = message.strip().splitlines()[0] if message.strip() else type(e).__name__
            raise ModelError(f"{message} (tool logs: {kept})" if kept else message) from e
    steps.finish()
    report.extra["steps_s"] = dict(steps.done)
    report.extra["conversion_s"] = round(time.perf_counter() - start, 1)
    if opts.report is not None:
        try:
            report.write(Path(opts.report))
        except OSError as e:
            raise ModelError(f"cannot write the report {opts.report}: {e.strerror or e}") from e
    return ConversionResult(Path(opts.output), report, time.perf_counter() - start, steps.done)


def _keep_logs(work: Path, output: Path) -> Path | None:
    """The external tools' logs, copied beside the output before the work folder goes."""
    logs = sorted(work.glob("*.log"))
    if not logs:
        return None
    dest = output.with_name(output.name + ".logs")
    dest.mkdir(parents=True, exist_ok=True)
    for log in logs:
        shutil.copyfile(log, dest / log.name)
    return dest


def _convert_in(opts: ConvertOptions, src: Source, images: list[np.ndarray], work: Path, steps: _Steps) -> ParityReport:
    """The conversion proper, in the work folder: float ONNX, the format, metadata, parity."""
    steps("float ONNX graph from the source")
    float_onnx, reference, ref_label = _float_onnx(src, work, opts.variant)
    steps(f"recording the runtime's inputs on {len(images)} images")
    inputs = runtime_inputs(reference, src.family, images)
    # The source's poses on those inputs, decoded once: the no-people check, int8's bar and the report.
    ref_poses = Reference(src.family, _open(reference), inputs)
    if ref_poses.confident == 0:
        raise ModelError(
            f"the source finds no confident keypoints on the --calib photos ({opts.calib}): "
            "calibrate and check parity on photos with people in them"
        )
    converted = work / f"converted{Path(opts.output).suffix}"
    extra = _convert_to(opts, src, float_onnx, reference, ref_poses, images, converted, work, steps)
    steps("embedding metadata")
    with atomic_path(opts.output) as out_tmp:
        _embed(src, converted, out_tmp, opts.to)
        steps("parity report")
        report = _report(opts, src, ref_poses, reference, ref_label, out_tmp, len(images), extra)
        # Written even when parity fails, so it can be inspected; the exit code says it failed.
        report.output = str(opts.output)
    if opts.to == "tflite-int8":
        from edgepose.converters.edgetpu_check import edgetpu_readiness

        steps("Edge TPU readiness")
        report.extra["edgetpu"] = edgetpu_readiness(Path(opts.output))
    return report


def _check_options(opts: ConvertOptions) -> None:
    if opts.to not in FORMATS:
        raise ModelError(f"unknown format {opts.to!r}; choose one of {', '.join(FORMATS)}")
    want = ".onnx" if opts.to.startswith("onnx") else ".tflite"
    if Path(opts.output).suffix.lower() != want:
        raise ModelError(f"output for {opts.to} must end in {want}: {opts.output}")
    if opts.calib is None:
        raise ModelError("give --calib DIR with real photos: they calibrate int8 and prove parity for every format")
    if opts.io_type not in ("float", "int8", "uint8"):
        raise ModelError(f"unknown int8 input/output type {opts.io_type!r}; choose float, int8 or uint8")
    if opts.variant not in (None, "t", "s", "m"):
        raise ModelError(f"unknown RTMPose variant {opts.variant!r}; choose t, s or m")
    paths = {"source": Path(opts.source), "output": Path(opts.output)}
    if opts.report is not None:
        paths["report"] = Path(opts.report)
    resolved = {k: p.resolve() for k, p in paths.items()}
    for a, b in (("source", "output"), ("source", "report"), ("output", "report")):
        if a in resolved and b in resolved and resolved[a] == resolved[b]:
            raise ModelError(f"--{'output' if b == 'output' else b} is the same file as the {a}: {paths[b]}")
    for key in ("output", "report"):
        if key in paths and paths[key].is_dir():
            raise ModelError(f"{key} path is a folder: {paths[key]}")


def _float_onnx(src: Source, work: Path, variant: str | None) -> tuple[Path, Path, str]:
    """(float ONNX, the model parity compares against, how the report names that reference)."""
    from edgepose.converters.onnx_tidy import tidy_onnx

    float_onnx = work / "float.onnx"
    if src.kind in ("tflite", "saved_model"):
        from edgepose.converters.tflite_to_onnx import to_float_onnx

        to_float_onnx(src.path, float_onnx, work, saved_model=src.kind == "saved_model")
        if src.kind == "tflite" and not src.quantized:
            return float_onnx, src.path, str(src.path)
        # A quantized source's float graph is what every format is made from; its own int8 numbers are
        # reported beside (`vs_source_file`). A SavedModel is only runnable through its float graph.
        return float_onnx, float_onnx, f"{src.path} (its float graph)"
    if src.kind == "onnx":
        tidy_onnx(src.path, float_onnx)
        return float_onnx, src.path, str(src.path)
    if src.kind == "sdk_zip":
        from edgepose.converters.rtmpose_weights import extract_sdk_zip

        end2end = extract_sdk_zip(src.path, work / "sdk")
        tidy_onnx(end2end, float_onnx)
        return float_onnx, end2end, f"{src.path} (end2end.onnx)"
    from edgepose.converters.rtmpose_export import export_rtmpose_onnx
    from edgepose.converters.rtmpose_weights import infer_variant, load_rtmpose_state_dict, rtmpose_from_checkpoint

    if variant is not None:
        found = infer_variant(load_rtmpose_state_dict(src.path))
        if found != variant:
            raise ModelError(f"{src.path.name} holds RTMPose-{found} weights, not RTMPose-{variant}")
    export_rtmpose_onnx(rtmpose_from_checkpoint(src.path), float_onnx)
    return float_onnx, float_onnx, f"{src.path} (exported to ONNX)"


def _convert_to(opts, src, float_onnx, reference: Path, ref_poses: Reference, images, out, work, steps) -> dict:
    inputs = ref_poses.inputs
    extra: dict = {}
    if opts.to == "onnx":
        shutil.copyfile(float_onnx, out)
        return extra
    if opts.to == "onnx-int8":
        from edgepose.converters.onnx_quantize import quantize_onnx

        steps("int8 ONNX (onnxruntime static quantization, per-channel, QDQ)")
        quantize_onnx(float_onnx, _float_calib(reference, float_onnx, inputs), out)
        return extra
    from edgepose.converters.onnx_to_tflite import onnx_to_tflite

    steps("TFLite via onnx2tf")
    files = onnx_to_tflite(float_onnx, work, images)
    if opts.to in ("tflite-fp32", "tflite-fp16"):
        shutil.copyfile(files[opts.to], out)
        return extra
    from edgepose.converters.tflite_quantize import quantize_int8

    calib = _float_calib(reference, files["tflite-fp32"], inputs)
    steps(f"int8 quantization on {len(calib)} runtime inputs (per-channel weights, {opts.io_type} I/O)")
    out.write_bytes(quantize_int8(files["saved_model"], calib, opts.io_type))
    min_oks, max_px = _bars(opts, src)
    ref_backend = ref_poses.source
    metrics = ref_poses.against(_open(out))
    extra["plain_int8"] = metrics
    if passes(metrics, min_oks, max_px) or not opts.mixed_precision:
        extra["float_layers"] = []
        return extra
    if _open(float_onnx).inputs[0].shape != _open(files["tflite-fp32"]).inputs[0].shape:
        extra["float_layers"] = []
        extra["fallback"] = (
            "the mixed-precision search needs the same input layout in ONNX and TFLite (this model "
            "is NCHW in ONNX): use --to tflite-fp16, or a lower --min-oks"
        )
        return extra
    steps("plain int8 misses the bar: mixed-precision search (layers kept in float)")
    from edgepose.converters.mixed_precision import search_float_layers

    def evaluate(model: bytes) -> tuple[bool, float]:
        trial = work / "trial.tflite"
        trial.write_bytes(model)
        m = ref_poses.against(_open(trial))
        return passes(m, min_oks, max_px), m["mean_px_err"]

    # The ranking scores hundreds of simulated models: a spread of 16 inputs keeps it to about a minute.
    few = inputs[:: max(1, len(inputs) // SEARCH_INPUTS)][:SEARCH_INPUTS]
    few_ref = Reference(src.family, ref_backend, few)

    def error_of(backend) -> float:
        m = few_ref.against(backend)
        return m["mean_px_err"] + PRESENCE_WEIGHT * m["presence_mae"]

    limit = opts.max_float_layers if opts.max_float_layers is not None else _op_count(out)
    result = search_float_layers(
        files["saved_model"], float_onnx, calib, opts.io_type, evaluate, error_of, limit, opts.progress
    )
    extra["mixed_precision"] = {"trials": result.trials, "ranking": result.ranking[:20]}
    extra["float_layers"] = result.float_layers
    if result.model is not None:
        out.write_bytes(result.model)
    else:
        extra["most_sensitive"] = [name for name, _ in result.ranking[:10]]
        extra["fallback"] = (
            f"no set of up to {limit} float layers reached the bar: use --to tflite-fp16, "
            "or accept plain int8 with a lower --min-oks"
        )
    return extra


def _op_count(model: Path) -> int:
    from ai_edge_litert.interpreter import Interpreter

    return len(Interpreter(str(model))._get_ops_details())  # noqa: SLF001 (LiteRT's only op listing)


def _open(path: Path):
    from edgepose.bindings import open_backend

    return open_backend(path)


def _float_calib(reference: Path, float_model: Path, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The recorded inputs as real float32 values in the float model's layout."""
    ref, dst = _open(reference), _open(float_model)
    spec = dst.inputs[0]
    float_spec = type(spec)(spec.name, spec.shape, np.dtype(np.float32))
    return [adapt_input(x[0], ref.inputs[0], float_spec).astype(np.float32) for x in inputs]


def _bars(opts: ConvertOptions, src: Source) -> tuple[float, float | None]:
    int8 = opts.to.endswith("int8")
    min_oks = opts.min_oks if opts.min_oks is not None else (INT8_MIN_OKS if int8 else FLOAT_MIN_OKS)
    max_px = (
        opts.max_px_err if opts.max_px_err is not None else (family_row(src.family).int8_max_px_err if int8 else None)
    )
    return min_oks, max_px


def _embed(src: Source, converted: Path, out: Path, fmt: str) -> None:
    from edgepose.converters.metadata import embed_metadata, make_metadata
    from edgepose.converters.parity import input_size

    backend = _open(converted)
    spec = backend.inputs[0]
    w, h = input_size(spec)
    layout = "NCHW" if is_nchw(spec.shape) else "NHWC"
    names, mean, std, split = _family_meta(src.family, backend, w)
    fam = family_row(src.family)
    meta = make_metadata(fam.name, fam.default_task, (w, h), layout, mean, std, src.path, fmt, names, split)
    embed_metadata(converted, out, meta)


def _family_meta(family: str, backend, width: int):
    """Keypoint names, normalization and SimCC split of a converted model, from the family table."""
    fam = family_row(family)
    mean, std = fam.normalization.mean, fam.normalization.std
    if fam.name != "rtmpose":
        return fam.layout.keypoints, mean, std, None
    x_bins = max(o.shape[-1] for o in backend.outputs if len(o.shape) == 3 and o.shape[-1] % width == 0)
    k = backend.outputs[0].shape[1]
    return fam.layout.keypoints if k == len(fam.layout.keypoints) else (), mean, std, x_bins / width


def _report(opts, src, ref_poses: Reference, reference, ref_label, out, n_images, extra) -> ParityReport:
    min_oks, max_px = _bars(opts, src)
    # `source` is the user's file; the metrics are against `reference` (the same file, or its float graph).
    report = parity_report(ref_poses, out, opts.to, n_images, min_oks, max_px, str(src.path), path_size(src.path))
    report.extra["reference"] = ref_label
    if reference != src.path and src.kind == "tflite":
        # The user's file is what the output replaces on the device: time the two side by side.
        src_inputs = _source_inputs(src, ref_poses.inputs, reference)
        report.extra["vs_source_file"] = compare(src.family, _open(src.path), _open(out), src_inputs)
        report.invoke_ms = invoke_ms(_open(src.path), _open(out), src_inputs[0])
    report.extra.update(extra)
    if not report.passed and opts.to == "onnx-int8" and "fallback" not in report.extra:
        report.extra["fallback"] = (
            "onnx-int8 has no mixed-precision search: use --to tflite-int8 (it searches for "
            "layers to keep in float), --to tflite-fp16 or --to onnx"
        )
    return report


def _source_inputs(src: Source, inputs, reference: Path):
    ref, s = _open(reference), _open(src.path)
    return [[adapt_input(x[0], ref.inputs[0], s.inputs[0])] for x in inputs]
