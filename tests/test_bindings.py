"""Backend selection, tensor specs, the Edge TPU check and wrong model files, on the real weights."""

from __future__ import annotations

import builtins
import importlib.util
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.bindings import TensorSpec, dequantize, open_backend, to_input_dtype
from edgepose.bindings.tflite_file import custom_ops, is_edgetpu_model
from edgepose.errors import BackendError, ModelError


def test_litert_is_the_default_and_exposes_specs(movenet_path):
    backend = open_backend(movenet_path, threads=2)
    assert backend.name == "litert"
    assert backend.threads == 2
    (inp,) = backend.inputs
    assert inp.shape == (1, 192, 192, 3) and inp.dtype == np.uint8 and not inp.quantized
    (out,) = backend.outputs
    assert out.shape == (1, 1, 17, 3) and out.dtype == np.float32
    (kps,) = backend.run([np.zeros(inp.shape, np.uint8)])
    assert kps.shape == (1, 1, 17, 3) and np.all((kps >= 0) & (kps <= 1))


def test_edgetpu_build_is_recognised_from_the_flatbuffer(movenet_path, edgetpu_path):
    assert custom_ops(movenet_path) == []
    assert custom_ops(edgetpu_path) == ["edgetpu-custom-op"]
    assert is_edgetpu_model(edgetpu_path) and not is_edgetpu_model(movenet_path)


def test_edgetpu_model_without_tpu_is_one_clear_error(edgetpu_path):
    with pytest.raises(BackendError) as err:
        open_backend(edgetpu_path, cpu_model="movenet-lightning-int8")
    msg = str(err.value)
    assert "compiled for the Edge TPU; install libedgetpu and attach a Coral device" in msg
    assert "`movenet-lightning-int8`" in msg and "\n" not in msg


def test_edgetpu_backend_refuses_a_cpu_model(movenet_path):
    with pytest.raises(BackendError, match="not compiled for the Edge TPU"):
        open_backend(movenet_path, backend="edgetpu")


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n", b"\x00" * 64])
def test_wrong_model_files_are_refused(tmp_path, content):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content)
    with pytest.raises(ModelError):
        open_backend(bad)


def test_truncated_model_is_refused(tmp_path, movenet_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(movenet_path.read_bytes()[: movenet_path.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated or corrupt|cannot load"):
        open_backend(cut)


def test_onnxruntime_refuses_tflite(movenet_path):
    with pytest.raises(BackendError, match="onnxruntime runs .onnx files"):
        open_backend(movenet_path, backend="onnxruntime")


def _block_import(monkeypatch, name: str, exc: BaseException) -> None:
    real_import = builtins.__import__

    def fake_import(mod, *args, **kwargs):
        if mod == name or mod.startswith(name + "."):
            raise exc
        return real_import(mod, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_tflite_runtime_under_numpy2_gets_a_clear_error(monkeypatch, movenet_path):
    # tflite-runtime 2.14 wheels raise AttributeError (_ARRAY_API not found) when numpy 2 is installed.
    _block_import(monkeypatch, "tflite_runtime", AttributeError("_ARRAY_API not found"))
    with pytest.raises(BackendError, match=r"needs numpy<2"):
        open_backend(movenet_path, backend="tflite-runtime")


def test_auto_falls_back_to_tflite_runtime_when_litert_is_missing(monkeypatch, movenet_path):
    from ai_edge_litert.interpreter import Interpreter

    # A stand-in tflite_runtime package exposing the same Interpreter class, as the real one does.
    pkg = types.ModuleType("tflite_runtime")
    mod = types.ModuleType("tflite_runtime.interpreter")
    mod.Interpreter = Interpreter
    pkg.interpreter = mod
    monkeypatch.setitem(sys.modules, "tflite_runtime", pkg)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", mod)
    _block_import(monkeypatch, "ai_edge_litert", ImportError("no LiteRT"))
    backend = open_backend(movenet_path)
    assert backend.name == "tflite-runtime"


def test_no_tflite_runtime_at_all(monkeypatch, movenet_path):
    _block_import(monkeypatch, "ai_edge_litert", ImportError("no LiteRT"))
    _block_import(monkeypatch, "tflite_runtime", ImportError("no tflite_runtime"))
    real_find_spec = importlib.util.find_spec
    absent = ("ai_edge_litert", "tflite_runtime")
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in absent else real_find_spec(n, *a))
    with pytest.raises(BackendError, match="pip install ai-edge-litert"):
        open_backend(movenet_path)


def test_an_installed_runtime_that_fails_to_import_is_not_called_missing(monkeypatch, movenet_path):
    # A wheel for another glibc or CPU: the package is there, its native library is not loadable.
    _block_import(monkeypatch, "ai_edge_litert", ImportError("libstdc++.so.6: version `GLIBCXX_3.4.32' not found"))
    with pytest.raises(BackendError, match="ai-edge-litert is installed but fails to import: libstdc"):
        open_backend(movenet_path, backend="litert")


def _constant_movenet_onnx(path, y: float, x: float) -> None:
    """An ONNX model with MoveNet's interface that puts every keypoint at (y, x) with score 0.9."""
    value = np.tile(np.array([y, x, 0.9], np.float32), (1, 1, 17, 1))
    nodes = [
        helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["f"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["z"]),
        helper.make_node("Add", ["kps", "z"], ["output_0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_movenet",
        [helper.make_tensor_value_info("input", TensorProto.UINT8, [1, 192, 192, 3])],
        [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, [1, 1, 17, 3])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("kps", TensorProto.FLOAT, value.shape, value.ravel().tolist()),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


def test_onnx_model_runs_through_onnxruntime_and_maps_to_pixels(tmp_path):
    path = tmp_path / "constant.onnx"
    _constant_movenet_onnx(path, y=0.25, x=0.75)
    est = PoseEstimator.create_from_options(PoseEstimatorOptions(model=str(path), threads=1))
    assert est.backend.name == "onnxruntime"
    assert est.backend.inputs[0] == TensorSpec("input", (1, 192, 192, 3), np.dtype(np.uint8))
    # A 400x200 image letterboxed into a 400x400 square starting at y=-100.
    (pose,) = est.estimate(np.zeros((200, 400, 3), np.uint8))
    assert pose.keypoints[0].x == pytest.approx(300.0, abs=1e-3)
    assert pose.keypoints[0].y == pytest.approx(0.0, abs=1e-3)  # 0.25*400-100 = 0: the top edge
    assert pose.score == pytest.approx(0.9, abs=1e-6)


def test_quantized_io_round_trip():
    spec = TensorSpec("x", (4,), np.dtype(np.int8), scale=0.5, zero_point=-10)
    real = np.array([-50.0, 0.0, 10.25, 200.0], np.float32)
    q = to_input_dtype(real, spec)
    assert q.dtype == np.int8 and q.tolist() == [-110, -10, 10, 127]  # clipped at int8's max
    assert dequantize(q, spec).tolist() == [-50.0, 0.0, 10.0, 68.5]


@pytest.mark.parametrize("batch_dim", ["N", 1])
def test_onnx_run_batch_is_one_call_only_with_a_symbolic_batch(tmp_path, batch_dim):
    from edgepose.bindings import open_backend

    path = tmp_path / "cast.onnx"
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [batch_dim, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    backend = open_backend(path, "onnxruntime", threads=1)
    calls = []
    real_run = backend._sess.run
    backend._sess.run = lambda *a, **k: calls.append(1) or real_run(*a, **k)
    crops = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (out,) = backend.run_batch([crops])
    assert out.tolist() == crops.astype(np.float32).tolist()
    assert len(calls) == (1 if batch_dim == "N" else 3)


@pytest.mark.parametrize(
    ("name", "batchable"),
    [
        ("blazepose-full", True),  # resizes to a batch of 3 and runs it in one invoke
        ("movenet-lightning-int8", False),  # GATHER_ND fails on batch > 1: loop on the batch-1 tensors
        ("blazepose-detector", False),  # runs, but a reshape folds the batch into the anchors: refused
    ],
)
def test_tflite_run_batch_matches_one_invoke_per_crop(model_dir, name, batchable):
    from edgepose.assets.registry import REGISTRY
    from edgepose.bindings import open_backend

    backend = open_backend(model_dir / REGISTRY[name].filename, "litert", threads=2)
    spec = backend.inputs[0]
    rng = np.random.default_rng(0)
    crops = (rng.random((3, *spec.shape[1:])) * 255).astype(spec.dtype)
    singles = [backend.run([crops[i : i + 1]]) for i in range(3)]
    batched = backend.run_batch([crops])
    assert backend._batchable is batchable
    for k, out in enumerate(batched):
        assert out.shape == (3, *backend.outputs[k].shape[1:])
        for i in range(3):
            np.testing.assert_allclose(out[i], singles[i][k][0], rtol=1e-4, atol=1e-4)
    assert [o.shape[0] for o in backend.run([crops[:1]])] == [1] * len(batched)  # batch 1 still works after


def test_a_batch_the_runtime_refuses_falls_back_to_a_loop_and_stays_usable(model_dir):
    # Delegates such as the Edge TPU's can refuse a batch > 1 when tensors are allocated.
    from edgepose.assets.registry import REGISTRY
    from edgepose.bindings import open_backend

    backend = open_backend(model_dir / REGISTRY["blazepose-full"].filename, "litert", threads=2)
    interp = backend._interp
    real_allocate = interp.allocate_tensors

    def allocate() -> None:
        if interp.get_input_details()[0]["shape"][0] != 1:
            raise RuntimeError("delegate: batch > 1 not supported")
        real_allocate()

    interp.allocate_tensors = allocate
    crops = np.random.default_rng(1).random((3, 256, 256, 3)).astype(np.float32)
    singles = [backend.run([crops[i : i + 1]])[0] for i in range(3)]
    (landmarks, *_) = backend.run_batch([crops])
    assert backend._batchable is False
    np.testing.assert_allclose(landmarks, np.concatenate(singles), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(backend.run([crops[:1]])[0], singles[0], rtol=1e-5, atol=1e-4)
