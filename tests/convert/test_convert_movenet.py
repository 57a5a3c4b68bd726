"""MoveNet int8 (the real file) -> float ONNX -> TFLite fp32 / fp16 / int8, each with its parity report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgepose.assets.metadata import load_metadata
from edgepose.bindings import open_backend
from edgepose.converters.calibration import load_images, runtime_inputs
from edgepose.converters.parity import compare
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from tests.conftest import gt_for, oks

from .conftest import CALIB, MOVENET_INT8

REPORT_KEYS = {
    "source",
    "output",
    "format",
    "images",
    "mean_px_err",
    "max_px_err",
    "mean_oks",
    "size_bytes",
    "invoke_ms",
    "passed",
}


def test_onnx_is_the_float_graph_and_reports_the_int8_source(conversions):
    r = conversions(MOVENET_INT8, "onnx")
    rep = r.report
    assert rep.passed and rep.mean_oks > 0.999 and rep.mean_px_err < 0.01, rep
    # Against the int8 file itself the float graph differs by the source's own quantization noise.
    vs = rep.extra["vs_source_file"]
    assert 0.8 < vs["mean_oks"] < 0.95 and 1.0 < vs["mean_px_err"] < 4.0, vs
    saved = json.loads(r.output.with_suffix(".json").read_text())
    assert set(saved) >= REPORT_KEYS and set(saved["invoke_ms"]) == {"source", "output"}
    assert saved["images"] == 7 and saved["inputs"] >= 40
    meta = load_metadata(r.output)
    assert meta.family == "movenet" and meta.input_layout == "NHWC" and tuple(meta.input_size) == (192, 192)


@pytest.mark.parametrize("fmt, max_mean_px", [("tflite-fp32", 0.01), ("tflite-fp16", 0.5)])
def test_float_tflite_round_trip(conversions, fmt, max_mean_px):
    rep = conversions(MOVENET_INT8, fmt).report
    assert rep.passed and rep.mean_px_err < max_mean_px and rep.mean_oks >= 0.98, rep
    assert rep.presence_flips == 0 and rep.invoke_ms["output"] > 0


def test_int8_round_trip_matches_googles_own_int8(conversions):
    """Our int8 (calibrated on the runtime's crops) is as close to the float graph as Google's int8 is."""
    r = conversions(MOVENET_INT8, "tflite-int8", min_oks=0.8, mixed_precision=False)
    rep = r.report
    ref = open_backend(MOVENET_INT8)
    float_graph = conversions(MOVENET_INT8, "onnx").output
    inputs = runtime_inputs(float_graph, "movenet", load_images(CALIB))
    google = compare("movenet", open_backend(float_graph), ref, inputs)
    assert rep.passed and rep.mean_oks >= google["mean_oks"] - 0.05, (rep.mean_oks, google)
    assert rep.size_bytes < 3.5e6 and rep.extra["edgetpu"]["float_io"], rep.extra["edgetpu"]


def test_converted_files_run_in_the_runtime_by_metadata(conversions, coco, one_person_photo):
    """`edgepose run --model converted.*` needs no other flag, and the keypoints stay on the person."""
    ann = gt_for(coco, one_person_photo.name)[0]
    for fmt in ("onnx", "tflite-fp16", "tflite-int8"):
        kwargs = {"min_oks": 0.8, "mixed_precision": False} if fmt == "tflite-int8" else {}
        path = conversions(MOVENET_INT8, fmt, **kwargs).output
        with PoseEstimator.create_from_options(PoseEstimatorOptions(model=str(path))) as est:
            poses = est.estimate(one_person_photo)
        xy = np.array([[k.x, k.y] for k in poses[0].keypoints])
        assert oks(xy, ann) >= 0.9, (fmt, oks(xy, ann))


def test_saved_model_source(conversions, tmp_path):
    """A TF SavedModel (here: onnx2tf's, from the float graph) converts with --family, same parity."""
    from edgepose.converters.convert import ConvertOptions, convert
    from edgepose.converters.onnx_to_tflite import onnx_to_tflite

    files = onnx_to_tflite(conversions(MOVENET_INT8, "onnx").output, tmp_path, load_images(CALIB))
    out = tmp_path / "from_saved_model.tflite"
    r = convert(
        ConvertOptions(
            source=files["saved_model"],
            to="tflite-fp16",
            output=out,
            calib=CALIB,
            family="movenet",
            progress=lambda m: None,
        )
    )
    assert r.report.passed and r.report.mean_oks >= 0.98 and load_metadata(out).family == "movenet", r.report


def test_int8_with_uint8_io_for_the_edge_tpu(conversions):
    r = conversions(MOVENET_INT8, "tflite-int8", min_oks=0.8, mixed_precision=False, io_type="uint8")
    backend = open_backend(r.output)
    assert backend.inputs[0].dtype == np.uint8 and all(o.dtype == np.uint8 for o in backend.outputs)
    tpu = r.report.extra["edgetpu"]
    assert tpu["float_io"] == [] and r.report.passed, tpu
    # The float ops left are MoveNet's own keypoint decoding tail (argmax, casts), as in Google's TPU build.
    assert all(op.split(":")[0] in ("CAST", "QUANTIZE", "DEQUANTIZE", "SQRT", "DIV") for op in tpu["float_ops"]), tpu


def test_posenet_converts_to_its_cpu_model(conversions):
    from .conftest import POSENET

    r = conversions(POSENET, "tflite-int8")
    assert r.report.passed and "byte-identical" in r.report.extra["parity"], r.report.extra
    assert r.report.inputs >= 7 and load_metadata(r.output).family == "posenet"
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model=str(r.output), mode="multi")) as est:
        assert len(est.estimate(CALIB / "coco" / "000000196141.jpg")) >= 3
