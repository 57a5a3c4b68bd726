"""TFLite (any precision) or a TF SavedModel -> a float ONNX graph, with tf2onnx."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgepose.converters.onnx_tidy import tidy_onnx
from edgepose.converters.toolchain import missing_extra, run_tool

OPSET = 17


def to_float_onnx(source: Path, dst: Path, work: Path, saved_model: bool = False) -> None:
    """Convert with tf2onnx; quantized weights are dequantized so the graph is float end to end."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise missing_extra("tf2onnx")
    raw = work / "tf2onnx_raw.onnx"
    if not saved_model:
        from edgepose.converters.tflite_fold import fold_weight_ops

        dense = work / "weights_folded.tflite"
        if fold_weight_ops(source, dense):
            source = dense
    src_flag = ["--saved-model", str(source)] if saved_model else ["--tflite", str(source), "--dequantize"]
    run_tool(
        ["-m", "tf2onnx.convert", *src_flag, "--output", str(raw), "--opset", str(OPSET)],
        work / "tf2onnx.log",
        "tf2onnx",
    )
    tidy_onnx(raw, dst)
