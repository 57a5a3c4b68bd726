"""Edge TPU readiness of an int8 TFLite: what the compiler would leave on the CPU, and the compiler itself.

The Edge TPU runs only full-integer ops with static shapes; a float op (a layer kept float by the
mixed-precision search, float I/O) or a dynamic dimension cuts the graph and the rest runs on the CPU.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

# Float I/O conversions at the graph edges are expected (the compiler leaves them to the CPU cheaply).
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}


def edgetpu_readiness(model: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(model))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    graph_io = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    float_ops, dynamic = [], []
    for op in interpreter._get_ops_details():  # noqa: SLF001 (the only op listing LiteRT's Python API has)
        ios = [tensors[i] for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0 and i in tensors]
        is_float = any(t["dtype"] == np.float32 for t in ios)
        at_edge = op["op_name"] in _EDGE_OPS and any(t["index"] in graph_io for t in ios)
        if is_float and not at_edge:
            float_ops.append(f"{op['op_name']}:{_name(tensors, op)}")
        if any((t.get("shape_signature") is not None and -1 in t["shape_signature"][1:]) for t in ios):
            dynamic.append(f"{op['op_name']}:{_name(tensors, op)}")
    io_float = [
        d["name"]
        for d in interpreter.get_input_details() + interpreter.get_output_details()
        if d["dtype"] == np.float32
    ]
    result = {
        "ready": not float_ops and not dynamic,
        "float_ops": float_ops,
        "dynamic_ops": dynamic,
        "float_io": io_float,
        "compiler": None,
    }
    compiler = shutil.which("edgetpu_compiler")
    if compiler:
        proc = subprocess.run(
            [compiler, "-s", "-o", str(model.parent), str(model)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        result["compiler"] = {
            "returncode": proc.returncode,
            "log": proc.stdout[-2000:] + proc.stderr[-500:],
            "output": str(model.with_name(model.stem + "_edgetpu.tflite")),
        }
    else:
        result["compiler"] = "edgetpu_compiler not on PATH (Linux x86-64 only: coral.ai/docs/edgetpu/compiler)"
    return result


def _name(tensors: dict, op: dict) -> str:
    outs = [i for i in op["outputs"] if i >= 0]
    return tensors[outs[0]]["name"][:80] if outs and outs[0] in tensors else "?"
