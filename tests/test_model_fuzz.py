"""Corrupt model files: refused with one line before any interpreter sees them, and never a crash.

The fuzz (seeded mutations of the real models through `open_backend` and one `run`, in child processes)
lives in benchmarks/fuzz_models.py, which also records the long run; here it runs as a script with a
fixed seed and a few hundred mutants. The other tests craft one fault each, the reported one first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgepose.bindings import open_backend
from edgepose.bindings.tflite_file import verify_model
from edgepose.errors import ModelError
from tests.conftest import REPO, Cli, cli_env

FUZZ = REPO / "benchmarks" / "fuzz_models.py"
SEED, COUNT = 20251130, 500


def test_fuzzed_models_never_crash_the_process(tmp_path, model_dir):
    out = tmp_path / "fuzz.json"
    command = [sys.executable, FUZZ, "--count", COUNT, "--seed", SEED, "--jobs", 2, "--label", "test"]
    res = subprocess.run(
        [*map(str, command), "--out", str(out), "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.is_file(), res.stdout[-2000:] + res.stderr[-2000:]
    report = json.loads(out.read_text())
    assert not report["failures"], "\n".join(
        f"{f['id']} ({f.get('kind')}: {f.get('what')}): {f['outcome']} "
        f"{f.get('signal') or f.get('error')} {f.get('message', '')} {f.get('alone', '')}"
        for f in report["failures"]
    )
    assert not report["missing"]
    assert res.returncode == 0, res.stdout[-2000:]
    outcomes = report["outcomes"]
    assert outcomes["mutants"] == COUNT
    # Refused includes the interpreter's own refusal at invoke (bad data: a gather index out of range),
    # a ModelError since test_an_error_at_invoke_is_a_model_error.
    assert outcomes.get("loaded", 0) + outcomes.get("refused", 0) == COUNT
    # Both sides are exercised: mutants that still load (flipped weights), and the verifier refusing.
    assert outcomes.get("loaded", 0) > 0 and outcomes.get("refused_by_verifier", 0) > COUNT // 3
    assert set(report["by_kind"]) == set(report["kinds"])
    assert set(report["by_model"]) == set(report["models"])


# One fault at a time, through the schema's object API -------------------------------------------------


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def edited(src: Path, dst: Path, edit) -> Path:
    """A copy of `src` with `edit(model)` applied to its object tree (ModelT), packed again."""
    import flatbuffers

    model = _schema().ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    edit(model)
    builder = flatbuffers.Builder(src.stat().st_size + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(builder.Output())
    return dst


def largest_constant(model) -> int:
    """The buffer of the largest constant tensor (weights every invoke reads)."""
    g = model.subgraphs[0]
    data = [b.data for b in model.buffers]
    return max((t.buffer for t in g.tensors), key=lambda b: 0 if data[b] is None else len(data[b]))


def out_of_flatbuffer(model, index: int, offset: int, size: int) -> None:
    """Buffer `index` keeps its data outside the flatbuffer, at `offset` from the file start (>2 GB form)."""
    model.buffers[index].data = None
    model.buffers[index].offset, model.buffers[index].size = offset, size


def one_line(res: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepose: error: "), res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_buffer_offset_that_wraps_past_2_64_is_one_line_not_a_segfault(
    tmp_path, model_dir, movenet_path, one_person_photo
):
    # The report: offset + size wraps to 0 in 64 bits, the interpreter read outside the file and died.
    def wrap(model):
        out_of_flatbuffer(model, largest_constant(model), 2**64 - 2**30, 2**30)

    crafted = edited(movenet_path, tmp_path / "crafted.tflite", wrap)
    cli = Cli(cli_env(model_dir, tmp_path / "cache"))
    res = cli("run", one_person_photo, "-m", crafted)
    assert res.returncode == 2, res.stderr
    one_line(res, "crafted.tflite", "truncated or corrupt TFLite model", "outside the file")
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("offset", "size"),
    [(2**64 - 2**30, 2**30), (2**64 - 16, 4096), (2**63, 2**63), ("end", 1), (2, 2**63 + 5)],
    ids=["wraps-to-0", "wraps-near-0", "sums-to-2**64", "past-the-end", "huge-size"],
)
def test_buffer_ranges_outside_the_file_are_refused(tmp_path, movenet_path, offset, size):
    if offset == "end":
        offset = movenet_path.stat().st_size + (1 << 16)  # past any end the repacked file can have
    crafted = edited(
        movenet_path, tmp_path / "m.tflite", lambda m: out_of_flatbuffer(m, largest_constant(m), offset, size)
    )
    with pytest.raises(ModelError, match=r"buffer \d+: data at offset \d+, \d+ bytes, outside the file") as err:
        open_backend(crafted)
    assert "\n" not in str(err.value)


def test_data_kept_outside_the_flatbuffer_still_loads_and_runs_the_same(tmp_path, movenet_path):
    # The form models over 2 GB use, made by hand: the weights appended after the flatbuffer.
    model = _schema().ModelT.InitFromPackedBuf(movenet_path.read_bytes(), 0)
    index = largest_constant(model)
    weights = bytes(model.buffers[index].data)
    placeholder = edited(movenet_path, tmp_path / "a.tflite", lambda m: out_of_flatbuffer(m, index, 1 << 40, 1))
    start = -(-placeholder.stat().st_size // 64) * 64  # the repacked size does not depend on the offset's value
    moved = edited(movenet_path, tmp_path / "b.tflite", lambda m: out_of_flatbuffer(m, index, start, len(weights)))
    data = moved.read_bytes()
    moved.write_bytes(data + b"\0" * (start - len(data)) + weights)
    x = np.full((1, 192, 192, 3), 128, np.uint8)
    expected = open_backend(movenet_path, threads=1).run([x])[0]
    np.testing.assert_array_equal(open_backend(moved, threads=1).run([x])[0], expected)


def _first_op(model, builtin: int):
    g = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    return next(op for op in g.operators if codes[op.opcodeIndex] == builtin)


def _scales(model, tensor: int, factor: float) -> None:
    q = model.subgraphs[0].tensors[tensor].quantization
    q.scale = np.asarray(q.scale, np.float32) * np.float32(factor)


def _conv(model):
    return _first_op(model, 3)  # CONV_2D


def _with(values, index: int, value: int) -> np.ndarray:
    out = np.array(values)  # a writable copy: the tree's arrays are views of the file
    out[index] = value
    return out


def drop_required_input(model):
    _conv(model).inputs = _with(_conv(model).inputs, 1, -1)


def drop_output(model):
    op = model.subgraphs[0].operators[145]  # a CONV_2D of the detector
    op.outputs = _with(op.outputs, 0, -1)


def small_densify_output(model):
    tensor = model.subgraphs[0].tensors[_first_op(model, 124).outputs[0]]  # DENSIFY's output
    tensor.shape = _with(tensor.shape, 0, 4)


def requantization_over_256(model):
    _scales(model, _conv(model).outputs[0], 1e-6)


def add_output_scale(model):
    _scales(model, _first_op(model, 0).outputs[0], 1e-6)  # ADD


def zero_mul_output_scale(model):
    _scales(model, _first_op(model, 18).outputs[0], 0.0)  # MUL


def nan_scale(model):
    _scales(model, _conv(model).inputs[1], float("nan"))


def zero_point_outside_int8(model):
    model.subgraphs[0].tensors[_conv(model).inputs[0]].quantization.zeroPoint = [300]


def quantize_turned_logistic(model):
    op = model.subgraphs[0].operators[128]  # QUANTIZE float32 -> int8, pointed at LOGISTIC's code
    op.opcodeIndex = 8


def depthwise_without_bias(model):
    op = _first_op(model, 4)  # DEPTHWISE_CONV_2D
    op.inputs = np.array(op.inputs[:2])


def input_name_not_utf8(model):
    g = model.subgraphs[0]
    g.tensors[g.inputs[0]].name = b"input\xe8x"


def disagreeing_codes(model):
    model.operatorCodes[_conv(model).opcodeIndex].deprecatedBuiltinCode = 65


def weights_without_data(model):
    model.buffers[model.subgraphs[0].tensors[_conv(model).inputs[1]].buffer].data = None


# Faults past the flatbuffer's structure. "crash": what LiteRT 2.3 does with the file when nothing checks
# it first (found by the fuzz; each confirmed alone with the bare interpreter): SIGSEGV, SIGABRT from a
# kernel's assertion, XNNPACK freeing its subgraph twice. "error": it raises RuntimeError from invoke,
# which no caller expects. "guard": no crash seen, refused on principle (a scale or zero point no
# kernel can use; one byte that turns an operator into another one).
FAULTS = {
    "required input left out": ("movenet", drop_required_input, "crash", "required input 1 is missing"),
    "operator output -1": ("detector", drop_output, "crash", "an output refers to tensor -1"),
    "densify output smaller than its input": ("detector", small_densify_output, "crash", "is not the input's"),
    "requantization scale over 256": ("movenet", requantization_over_256, "crash", "requantization scale"),
    "ADD output scale the kernel asserts on": ("movenet", add_output_scale, "crash", "for output scale"),
    "MUL output scale 0": ("movenet", zero_mul_output_scale, "crash", "quantization scale 0.0"),
    "operator code changed, types no longer match": (
        "movenet",
        quantize_turned_logistic,
        "crash",
        "FLOAT32 and INT8 tensors mixed",
    ),
    "depthwise convolution without its bias": ("movenet", depthwise_without_bias, "crash", "2 inputs, 3 needed"),
    "weights without their data": ("movenet", weights_without_data, "error", "no earlier operator writes"),
    "tensor name not UTF-8": ("movenet", input_name_not_utf8, "error", "name is not UTF-8"),
    "NaN scale": ("movenet", nan_scale, "guard", "quantization scale nan"),
    "zero point outside int8": ("movenet", zero_point_outside_int8, "guard", "zero point outside -128..127"),
    "builtin and deprecated codes disagree": ("movenet", disagreeing_codes, "guard", "deprecated code 65"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_faults_the_runtime_does_not_survive_are_refused(tmp_path, model_dir, movenet_path, fault):
    which, edit, _, fragment = FAULTS[fault]
    src = movenet_path if which == "movenet" else model_dir / "blazepose_detector.tflite"
    crafted = edited(src, tmp_path / "f.tflite", edit)
    with pytest.raises(ModelError, match="is a truncated or corrupt TFLite model") as err:
        open_backend(crafted)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_graph_output_nothing_writes_is_refused(tmp_path, model_dir):
    # Found by the 30,000-mutant run (seed 2): the last operator's output redirected to an earlier
    # tensor, so the graph's output is never written and reading it back raised ValueError.
    def redirect(model):
        g = model.subgraphs[0]
        writer = next(op for op in g.operators if g.outputs[0] in op.outputs)
        writer.outputs = [2 if t == g.outputs[0] else t for t in writer.outputs]

    crafted = edited(model_dir / "blazepose_detector.tflite", tmp_path / "d.tflite", redirect)
    with pytest.raises(ModelError, match=r"output tensor \d+ is never written"):
        open_backend(crafted)


def test_a_zero_scale_on_constant_weights_is_accepted(tmp_path, movenet_path):
    # Quantizers write scale 0 for an all-zero channel (pruned filters); the kernels take it, so the
    # verifier must too. Activations keep the strict rule.
    def prune(model):
        g = model.subgraphs[0]
        conv = next(op for op in g.operators if model.operatorCodes[op.opcodeIndex].builtinCode == 3)
        for slot in (1, 2):  # weights and bias, per channel
            q = g.tensors[conv.inputs[slot]].quantization
            q.scale = np.array(q.scale, np.float32)
            q.scale[0] = 0.0

    backend = open_backend(edited(movenet_path, tmp_path / "pruned.tflite", prune), threads=1)
    out = backend.run([np.zeros(backend.inputs[0].shape, backend.inputs[0].dtype)])
    assert np.isfinite(out[0]).all()


def test_an_error_at_invoke_is_a_model_error(tmp_path, movenet_path):
    # Sound structure, wrong data: tensor 6 (the divisor of the FLOOR_DIV that computes MoveNet's
    # GATHER_ND indices) takes another 4-byte constant's buffer; LiteRT refuses the gather at invoke.
    # No verifier can see that; the integrity check of converted files can.
    def swap(model):
        model.subgraphs[0].tensors[6].buffer = 8

    backend = open_backend(edited(movenet_path, tmp_path / "s.tflite", swap), threads=1)
    with pytest.raises(ModelError):
        backend.run([np.zeros((1, 192, 192, 3), np.uint8)])


def test_every_shared_model_verifies_in_a_few_milliseconds(model_dir):
    for path in sorted(model_dir.glob("*.tflite")):
        info = verify_model(path)
        assert info.subgraphs == 1 and info.tensors > 0, path.name
        assert info.is_edgetpu == path.stem.endswith("_edgetpu"), path.name
        best = min(_timed(verify_model, path) for _ in range(5))
        assert best < 0.1, (path.name, best)  # a few ms here; generous for a loaded CI machine


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0
