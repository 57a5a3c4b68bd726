"""BlazePose's real float models (fp16 weights): landmark and detector round trips, and int8."""

from __future__ import annotations

import pytest

from edgepose.assets.metadata import load_metadata

from .conftest import BLAZEPOSE_DETECTOR, BLAZEPOSE_FULL


@pytest.mark.parametrize("source, family", [(BLAZEPOSE_FULL, "blazepose"), (BLAZEPOSE_DETECTOR, "person-detector")])
def test_float_round_trip_is_exact(conversions, source, family):
    """fp16 weights -> float ONNX -> onnx2tf fp32: the same numbers (the detector's sparse weights densified)."""
    r = conversions(source, "tflite-fp32")
    rep = r.report
    assert rep.passed and rep.mean_px_err < 1e-3 and rep.presence_flips == 0, rep
    # Runtime inputs recorded from the shared photos: 47 landmark crops since duplicate crops of one
    # person are dropped by OKS (more before).
    assert rep.inputs >= 40 and rep.keypoints_compared > 100
    assert load_metadata(r.output).family == family


def test_int8_landmarks_reach_the_target_by_mixed_precision(conversions):
    """Plain full-int8 is far off; the search keeps the fewest layers float that give <= 1.5 px on the 256
    input (visible landmarks, crops with a person) and no presence flip, all measured on real crops."""
    r = conversions(BLAZEPOSE_FULL, "tflite-int8")
    rep = r.report
    plain = rep.extra["plain_int8"]
    assert plain["mean_px_err"] > 3.0, plain
    float_layers = rep.extra["float_layers"]
    trials = rep.extra["mixed_precision"]["trials"]
    msg = f"{len(float_layers)} float layers; trials {[(t['float_layers'], round(t['metric'], 2)) for t in trials]}"
    assert rep.passed and rep.mean_px_err <= 1.5 and rep.presence_flips == 0, msg
    assert float_layers and any(t["float_layers"] == len(float_layers) - 1 and not t["passed"] for t in trials), msg
    assert rep.invoke_ms["output"] > 0 and load_metadata(r.output).family == "blazepose"
    print(msg, rep.mean_px_err, rep.invoke_ms)
