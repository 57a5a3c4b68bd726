"""PoseNet (Coral's int8 file with its PosenetDecoderOp) -> the CPU model: the decoder op cut away.

The source cannot run on a CPU (the op lives in Coral's library), so parity is structural: every
tensor the copy keeps must hold byte-identical data and quantization to the source's, and the copy
must run in the runtime on the calibration images. The decoder then runs in numpy (sdk/models/posenet.py).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

from edgepose.converters.parity import ParityReport
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path
from edgepose.models.families import FAMILIES


def convert_posenet(src, opts, steps, start: float):
    from edgepose.assets.tflite_edit import strip_posenet_decoder
    from edgepose.converters.calibration import load_images, runtime_inputs
    from edgepose.converters.convert import ConversionResult
    from edgepose.converters.metadata import embed_tflite_metadata, make_metadata
    from edgepose.keypoints import COCO17_KEYPOINTS

    if opts.to != "tflite-int8":
        raise ModelError(
            "PoseNet converts to tflite-int8 only: its CPU model is the same int8 graph without the decoder op"
        )
    images = load_images(opts.calib)
    with tempfile.TemporaryDirectory(prefix="edgepose-convert-") as tmp:
        stripped = Path(tmp) / "posenet_cpu.tflite"
        steps("cutting the PosenetDecoderOp")
        params = strip_posenet_decoder(src.path, stripped)
        identical, compared = _same_tensors(src.path, stripped)
        h, w = _input_hw(stripped)
        norm = FAMILIES["posenet"].normalization
        meta = make_metadata(
            "posenet", "multi", (w, h), "NHWC", norm.mean, norm.std, src.path, opts.to, COCO17_KEYPOINTS
        )
        meta["posenet_decoder"] = params  # unknown to readers that don't use it; the defaults are the same
        steps("embedding metadata")
        with atomic_path(opts.output) as out_tmp:
            embed_tflite_metadata(stripped, out_tmp, meta)
            steps(f"running the CPU model on {len(images)} images")
            fed = len(runtime_inputs(out_tmp, "posenet", images)) if images else 0
    steps.finish()
    report = ParityReport(
        source=str(src.path),
        output=str(opts.output),
        format=opts.to,
        images=len(images),
        inputs=fed,
        mean_px_err=math.nan,
        max_px_err=math.nan,
        mean_oks=math.nan,
        score_mae=math.nan,
        presence_flips=0,
        presence_mae=math.nan,
        size_bytes=Path(opts.output).stat().st_size,
        source_size_bytes=src.path.stat().st_size,
        invoke_ms={"source": math.nan, "output": math.nan},
        min_oks=math.nan,
        max_mean_px_err=None,
        passed=identical,
        keypoints_compared=0,
        extra={
            "parity": f"structural: {compared} tensors kept, all byte-identical to the source"
            if identical
            else "structural check FAILED: tensors differ from the source",
            "decoder": params,
            "steps_s": dict(steps.done),
            "conversion_s": round(time.perf_counter() - start, 1),
        },
    )
    if opts.report is not None:
        report.write(Path(opts.report))
    return ConversionResult(Path(opts.output), report, time.perf_counter() - start, steps.done)


def _tensors(path: Path) -> dict[str, tuple]:
    from edgepose.assets.tflite_edit import load_model_tree

    model = load_model_tree(path)
    g = model.subgraphs[0]
    out = {}
    for t in g.tensors:
        name = t.name.decode() if isinstance(t.name, bytes) else t.name
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        q = t.quantization
        quant = (
            None
            if q is None
            else (tuple(q.scale if q.scale is not None else ()), tuple(q.zeroPoint if q.zeroPoint is not None else ()))
        )
        out[name] = (tuple(t.shape), t.type, None if data is None else bytes(data), quant)
    return out


def _same_tensors(src: Path, stripped: Path) -> tuple[bool, int]:
    a, b = _tensors(src), _tensors(stripped)
    return all(name in a and a[name] == v for name, v in b.items()), len(b)


def _input_hw(path: Path) -> tuple[int, int]:
    from edgepose.bindings import open_backend

    shape = open_backend(path).inputs[0].shape
    return shape[1], shape[2]
