"""Workstation converters: `edgepose convert` in Python.

    from edgepose.converters import ConvertOptions, convert
    result = convert(ConvertOptions(source=Path("blazepose_landmark_full.tflite"), to="tflite-int8",
                                    output=Path("bp_int8.tflite"), calib=Path("photos/")))
    result.report.passed, result.report.mean_px_err, result.report.extra["float_layers"]

Heavy dependencies (TensorFlow, onnx2tf, tf2onnx, torch) are imported only when a step needs them
(pip install "edgepose[convert]"); the runtime never imports this package.
"""

from edgepose.converters.convert import FORMATS, ConversionResult, ConvertOptions, convert
from edgepose.converters.parity import ParityReport

__all__ = ["FORMATS", "ConversionResult", "ConvertOptions", "ParityReport", "convert"]
