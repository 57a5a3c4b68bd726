"""BlazePose's real float models (fp16 weights): landmark and detector round trips, and int8."""

from __future__ import annotations

import pytest
from edgepose.model_metadata import load_metadata

from .conftest import BLAZEPOSE_DETECTOR, BLAZEPOSE_FULL


@pytest.mark.parametrize("source, family", [(BLAZEPOSE_FULL, "blazepose"), (BLAZEPOSE_DETECTOR, "blazepose-detector")])
def test_float_round_trip_is_exact(conversions, source, family):
    """fp16 weights -> float ONNX -> onnx2tf fp32: the same numbers (the detector's sparse weights densified)."""
    r = conversions(source, "tflite-fp32")
    rep = r.report
    assert rep.passed and rep.mean_px_err < 1e-3 and rep.presence_flips == 0, rep
    assert rep.inputs >= 50 and rep.keypoints_compared > 100
    assert load_metadata(r.output).family == family
