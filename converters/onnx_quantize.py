"""int8 ONNX with onnxruntime's static quantization: QDQ, per-channel int8 weights, uint8 activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def quantize_onnx(float_onnx: Path, calib: list[np.ndarray], out: Path) -> None:
    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError as e:
        from edgepose.converters.toolchain import missing_extra

        raise missing_extra("onnxruntime") from e

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {"input": x}

    quantize_static(
        str(float_onnx),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
