"""Mixed-precision int8 for BlazePose's landmark model: plain full-int8 is far off the fp16 source, and
the parts of the automated search (content matching of ONNX to TFLite ops, the quantization simulator,
the sensitivity ranking) do what the search relies on. The search itself runs through `convert` in
test_convert_blazepose.py.

Everything is built here from the real fp16 model with the converters' own steps (tf2onnx, onnx2tf,
runtime calibration inputs on ../shared/data), once per module; the fixture is reusable.

Error measure (as the parity report counts it): pixels on the 256x256 input, over the landmarks the
source sees (visibility >= 0.5) on crops where the source finds a person (presence >= 0.5); a presence
flip counts where the source is clear about it (|presence - 0.5| > 0.2).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgepose.bindings import Backend, open_backend, to_input_dtype
from edgepose.converters import mixed_precision as mp
from edgepose.converters.calibration import load_images, runtime_inputs
from edgepose.converters.onnx_to_tflite import onnx_to_tflite
from edgepose.converters.tflite_quantize import quantize_int8
from edgepose.converters.tflite_to_onnx import to_float_onnx
from edgepose.geometry import Roi
from edgepose.models.blazepose import BlazePoseLandmark

MAX_MEAN_PX = 1.5
CLEAR_MARGIN = 0.2
VISIBLE = 0.5
SEARCH_CROPS = 16  # crops `error_of` scores the simulated models on (the ranking); `evaluate` takes them all
CROP = Roi(128.0, 128.0, 256.0, 256.0, 0.0)


@dataclass
class Scores:
    mean_px: float
    flips: int
    presence_mae: float


class Reference:
    """The fp16 source's landmarks and presence on fixed crops, and a candidate's deviation from them."""

    def __init__(self, source: Backend, crops: list[np.ndarray]):
        self.crops = crops
        self.ref = [_decode(source, x) for x in crops]

    def scores(self, backend: Backend) -> Scores:
        errors, flips, dp = [], 0, []
        for (kps, pres), x in zip(self.ref, self.crops, strict=True):
            got_kps, got_pres = _decode(backend, x)
            dp.append(abs(pres - got_pres))
            if abs(pres - 0.5) > CLEAR_MARGIN and (pres >= 0.5) != (got_pres >= 0.5):
                flips += 1
            if pres < 0.5:
                continue
            vis = kps[:, 2] >= VISIBLE
            errors.extend(np.hypot(*(kps[vis, :2] - got_kps[vis, :2]).T))
        return Scores(float(np.mean(errors)), flips, float(np.mean(dp)))


def _decode(backend: Backend, x: np.ndarray) -> tuple[np.ndarray, float]:
    outputs = backend.run([to_input_dtype(x, backend.inputs[0])])
    kps, presence, *_ = BlazePoseLandmark(backend).decode(outputs, [CROP], 256, 256)[0]
    return kps, presence


def _tflite_scores(reference: Reference, model: bytes) -> Scores:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "candidate.tflite"
        path.write_bytes(model)
        return reference.scores(open_backend(path, threads=2))


@dataclass
class BlazePoseInt8:
    """What the mixed-precision search needs for BlazePose's landmark model, built from the fp16 source."""

    source: Path
    float_onnx: Path
    saved_model: Path
    calib: list[np.ndarray]  # the runtime's crops, NHWC float32 in [0, 1] (duplicates kept, as calibration)
    crops: list[np.ndarray]  # the distinct ones
    plain_int8: bytes
    reference: Reference  # on all distinct crops: what passes
    quick: Reference  # on SEARCH_CROPS of them: what ranks

    def evaluate(self, model: bytes) -> tuple[bool, float]:
        s = _tflite_scores(self.reference, model)
        return s.mean_px <= MAX_MEAN_PX and s.flips == 0, s.mean_px

    def error_of(self, backend: Backend) -> float:
        s = self.quick.scores(backend)
        return s.mean_px + 10.0 * s.presence_mae  # a presence shift of 0.1 weighs like a pixel


@pytest.fixture(scope="module")
def blazepose_int8(tmp_path_factory: pytest.TempPathFactory) -> BlazePoseInt8:
    model_dir = Path(os.environ["EDGEPOSE_MODEL_DIR"]).resolve()
    source = model_dir / "blazepose_landmark_full.tflite"
    images = load_images(model_dir.parent / "data")
    work = tmp_path_factory.mktemp("mixed_precision")
    float_onnx = work / "blazepose_landmark.onnx"
    to_float_onnx(source, float_onnx, work)
    saved_model = onnx_to_tflite(float_onnx, work, images)["saved_model"]
    calib = [r[0].astype(np.float32) for r in runtime_inputs(source, "blazepose", images)]
    seen, crops = set(), []
    for x in calib:
        key = hashlib.sha1(x.tobytes()).hexdigest()
        if key not in seen:
            seen.add(key)
            crops.append(x)
    assert len(crops) >= 32, f"only {len(crops)} distinct crops from {model_dir.parent / 'data'}"
    src = open_backend(source, threads=2)
    step = max(1, len(crops) // SEARCH_CROPS)
    return BlazePoseInt8(
        source,
        float_onnx,
        saved_model,
        calib,
        crops,
        quantize_int8(saved_model, calib, "float"),
        Reference(src, crops),
        Reference(src, crops[::step][:SEARCH_CROPS]),
    )


def test_plain_int8_misses_the_target(blazepose_int8):
    s = _tflite_scores(blazepose_int8.reference, blazepose_int8.plain_int8)
    assert s.mean_px > 3 * MAX_MEAN_PX or s.flips > 0, f"plain int8 already passes ({s}): nothing to search"


def test_ops_are_matched_by_content(blazepose_int8):
    """Every ONNX Conv finds its TFLite op by weights (the int8 weights are the float ones rounded), and
    the other value ops follow by kind and inputs; no two share an op."""
    import onnx

    sim = mp._Simulator(blazepose_int8.float_onnx, blazepose_int8.plain_int8, [], activations=False)
    convs = [n for n in onnx.load(str(blazepose_int8.float_onnx)).graph.node if n.op_type == "Conv"]
    assert convs and all(n.name in sim.match for n in convs)
    matched = mp._match(sim.onnx, sim.tfl)
    value_ops = [n for n in sim.onnx.nodes if sim.onnx.is_value_op(n)]
    assert len(matched) == len(value_ops), [n.op_type for n in value_ops if n.name not in matched]
    assert len(set(matched.values())) == len(matched)
    for n in convs:
        op = sim.tfl.ops[matched[n.name]]
        w = sim.onnx.inits[n.input[1]]
        assert op.weights.shape == w.shape
        assert np.abs(op.weights - w).max() <= 0.51 * np.abs(w).max() / 127 + 1e-6  # half an int8 step


def test_simulator_reproduces_the_int8_model(blazepose_int8):
    """All of the int8 model's quantizations applied to the float ONNX graph land near the real int8 error,
    and none of them leaves it exact: the ranking is measured on a faithful stand-in."""
    b = blazepose_int8
    sim = mp._Simulator(b.float_onnx, b.plain_int8, b.calib, activations=True)
    simulated = b.quick.scores(sim.backend(sim.points)).mean_px
    real = _tflite_scores(b.quick, b.plain_int8).mean_px
    float_only = b.quick.scores(sim.backend([])).mean_px
    assert float_only < 0.01, float_only
    assert 0.7 * real <= simulated <= 1.3 * real, f"simulated {simulated:.2f} px vs real int8 {real:.2f} px"


def test_weight_sensitivity_ranks_every_conv(blazepose_int8):
    b = blazepose_int8
    few = Reference(open_backend(b.source, threads=2), b.quick.crops[:6])
    ranked = mp.weight_sensitivity(b.float_onnx, b.plain_int8, b.calib, lambda be: few.scores(be).mean_px)
    assert len(ranked) == 96  # the landmark model's Conv layers, each once
    errors = [e for _, e in ranked]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.5 and errors[-1] >= 0.0
