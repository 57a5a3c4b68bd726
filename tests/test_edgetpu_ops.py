"""What runs where in the shared Edge TPU models, read from their flatbuffers (edgepose.assets.op_map), as
`edgepose models info` shows it and `edgepose bench` records it."""

from __future__ import annotations

import pytest

from edgepose.assets.op_map import operator_map
from edgepose.assets.registry import resolve_model
from tests.conftest import Cli, cli_env

# The operators of each file's main graph, counted from the flatbuffer (LiteRT's own op listing agrees).
EXPECTED = {
    # name: (operators, Edge TPU custom ops, on the CPU, CPU model's operators)
    "movenet-lightning-int8-edgetpu": (60, 1, 59, 157),
    "posenet-mobilenet-edgetpu": (2, 1, 1, 38),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_edgetpu_models_split_into_tpu_and_cpu_operators(name):
    total, tpu, cpu, cpu_model = EXPECTED[name]
    m = operator_map(resolve_model(name, download=False))
    assert (m.operators, m.edgetpu_ops, m.cpu_op_count, m.cpu_model_operators) == (total, tpu, cpu, cpu_model)
    assert m.mapped_to_tpu == cpu_model - cpu  # 98 of MoveNet's 157 operators, 37 of PoseNet's 38
    assert m.edgetpu_code_bytes > 1_000_000  # the compiled code is the bulk of the file
    if name.startswith("posenet"):
        assert m.cpu_ops == {"PosenetDecoderOp": 1}  # the decoder stays on the CPU
    else:
        # MoveNet's post-processing (the keypoint argmax and its arithmetic) stays on the CPU.
        assert m.cpu_ops["ARG_MAX"] == 2 and m.cpu_ops["GATHER_ND"] == 4 and "CONV_2D" not in m.cpu_ops


def test_a_cpu_model_runs_everything_on_the_cpu():
    m = operator_map(resolve_model("movenet-lightning-int8", download=False))
    assert (m.operators, m.edgetpu_ops, m.cpu_op_count) == (157, 0, 157)
    assert m.cpu_ops["CONV_2D"] == 50 and m.cpu_ops["DEPTHWISE_CONV_2D"] == 24
    assert m.mapped_to_tpu is None and m.cpu_model is None


def test_models_info_shows_the_split(model_dir, tmp_path):
    cli = Cli(cli_env(model_dir, tmp_path))
    r = cli("models", "info", "movenet-lightning-int8-edgetpu")
    assert r.returncode == 0, r.stderr
    lines = {line[:16].strip(): line[16:].strip() for line in r.stdout.splitlines()}
    assert lines["operators"] == "60 in the main graph"
    assert "running 98 of the 157 operators of movenet_singlepose_lightning_int8.tflite" in lines["on the Edge TPU"]
    assert lines["on the CPU"].startswith("59: RESHAPE 11, QUANTIZE 7")
    r = cli("models", "info", "posenet-mobilenet")
    assert "38 in the main graph, all on the CPU" in r.stdout


def test_a_damaged_cpu_model_beside_it_only_loses_the_comparison(model_dir, tmp_path):
    import shutil

    from edgepose.assets.registry import ResolvedModel

    tpu = tmp_path / "movenet_edgetpu.tflite"
    shutil.copy(model_dir / "movenet_singlepose_lightning_int8_edgetpu.tflite", tpu)
    (tmp_path / "movenet.tflite").write_bytes(b"TFL3" * 10)  # the "CPU model": garbage
    m = operator_map(ResolvedModel(tpu, str(tpu), None))
    assert (m.operators, m.edgetpu_ops, m.cpu_op_count) == (60, 1, 59)
    assert m.cpu_model is None and m.mapped_to_tpu is None
    shutil.copy(model_dir / "movenet_singlepose_lightning_int8.tflite", tmp_path / "movenet.tflite")
    assert operator_map(ResolvedModel(tpu, str(tpu), None)).mapped_to_tpu == 98  # found by its name
