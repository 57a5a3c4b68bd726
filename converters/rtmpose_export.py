"""RTMPose -> ONNX with mmdeploy's ``end2end.onnx`` contract, so our files and OpenMMLab's SDK zips are interchangeable.

Contract: one input ``input`` (1x3xHxW float32, normalized RGB), two outputs ``simcc_x`` (1xKx(W*2))
and ``simcc_y`` (1xKx(H*2)); static batch 1.

Exporter: torch's legacy TorchScript exporter (``dynamo=False``). The torch.export-based default needs
``onnxscript``, which the convert environment does not have, and the legacy path gives a plain graph
(Conv, Mul/Sigmoid for SiLU, MatMul, ReduceL2, HardSigmoid, MaxPool) with BatchNorm folded into Conv.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

__all__ = ["INPUT_NAME", "OUTPUT_NAMES", "export_rtmpose_onnx"]

INPUT_NAME = "input"
OUTPUT_NAMES = ("simcc_x", "simcc_y")


def _graph_shapes(values: list[onnx.ValueInfoProto]) -> dict[str, tuple[int, ...]]:
    return {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in values}


def export_rtmpose_onnx(model: nn.Module, out_path: str | Path, opset: int = 17) -> Path:
    """Export ``model`` (an ``RTMPose``) to ``out_path`` atomically; returns the path.

    The file appears only once it is complete and has passed ``onnx.checker`` and a names/shapes check
    against the contract; on any failure the previous file (if any) is left untouched.
    """
    out_path = Path(out_path)
    width, height = model.input_size  # type: ignore[attr-defined]
    param = next(model.parameters())
    if param.dtype != torch.float32:
        raise ValueError(f"export needs a float32 model, got {param.dtype}; call model.float() first")
    dummy = torch.zeros(1, 3, height, width, dtype=torch.float32, device=param.device)

    was_training = model.training
    model.eval()  # BatchNorm must use running stats so the exporter folds it into the convs
    try:
        with torch.no_grad():
            expected = dict(zip(OUTPUT_NAMES, (tuple(t.shape) for t in model(dummy))))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # The legacy exporter announces its own deprecation on every call; we chose it on purpose.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.onnx")
                warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")
                torch.onnx.export(
                    model,
                    (dummy,),
                    str(tmp),
                    input_names=[INPUT_NAME],
                    output_names=list(OUTPUT_NAMES),
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )
            _check(tmp, {INPUT_NAME: tuple(dummy.shape)}, expected)
            os.replace(tmp, out_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    finally:
        model.train(was_training)
    return out_path


def _check(path: Path, inputs: dict[str, tuple[int, ...]], outputs: dict[str, tuple[int, ...]]) -> None:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    got_in = _graph_shapes(list(proto.graph.input))
    got_out = _graph_shapes(list(proto.graph.output))
    if got_in != inputs or got_out != outputs:
        raise RuntimeError(f"exported graph breaks the end2end.onnx contract: inputs {got_in}, outputs {got_out}")
    for v in [*proto.graph.input, *proto.graph.output]:
        if v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise RuntimeError(f"exported graph breaks the end2end.onnx contract: {v.name} is not float32")
