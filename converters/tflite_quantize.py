"""Full-integer TFLite from a SavedModel, calibrated on the runtime's own inputs, per-channel weights.

Mixed precision uses TensorFlow's documented selective quantization (`denylisted_nodes` of the
QuantizationDebugger) to keep chosen layers in float; which ones is decided in mixed_precision.py (the
debugger's own per-layer RMSE ranking does not predict the end error: measured on BlazePose).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError as e:
        from edgepose.converters.toolchain import missing_extra

        raise missing_extra("tensorflow") from e
    tf.get_logger().setLevel("ERROR")
    return tf


def _converter(saved_model: Path, calib: list[np.ndarray], io_type: str):
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def dataset() -> Iterator[list[np.ndarray]]:
        for x in calib:
            yield [x.astype(np.float32)]

    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type != "float":
        converter.inference_input_type = converter.inference_output_type = {"int8": tf.int8, "uint8": tf.uint8}[io_type]
    return converter, dataset


def quantize_int8(
    saved_model: Path, calib: list[np.ndarray], io_type: str = "float", float_layers: list[str] | None = None
) -> bytes:
    """int8 TFLite bytes; `float_layers` (op output tensor names, see mixed_precision.py) stay in float."""
    if not float_layers:
        converter, _ = _converter(saved_model, calib, io_type)
        return converter.convert()
    tf = _tf()
    # Float layers need float kernels beside the int8 ones.
    converter, dataset = _converter(saved_model, calib, io_type)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_layers))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=dataset, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()
