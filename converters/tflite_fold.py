"""Fold weight-decoding ops (DENSIFY, DEQUANTIZE of constants) into plain float32 constants.

MediaPipe's detector stores sparse fp16 weights behind DENSIFY -> DEQUANTIZE; tf2onnx cannot read sparse
tensors. LiteRT itself computes the dense float weights, and they are written back as constants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.assets.tflite_edit import drop_unused_tensors, load_model_tree
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path

_FOLDABLE = ("DENSIFY", "DEQUANTIZE")


def fold_weight_ops(src: Path, dst: Path) -> int:
    """Write `src` with its constant DENSIFY/DEQUANTIZE ops folded to `dst`; returns how many were folded."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    model = load_model_tree(src)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    g = model.subgraphs[0]

    def op_name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def has_data(t: int) -> bool:
        buf = model.buffers[g.tensors[t].buffer]
        return g.tensors[t].sparsity is not None or (buf.data is not None and len(buf.data) > 0)

    constant = {t for t in range(len(g.tensors)) if has_data(t)}
    folded = []
    for i, op in enumerate(g.operators):  # ops are in execution order, so a chain folds front to back
        if op_name(op) in _FOLDABLE and all(int(t) in constant for t in op.inputs if t >= 0):
            folded.append(i)
            constant.update(int(t) for t in op.outputs)
    if not folded:
        return 0
    from ai_edge_litert.interpreter import OpResolverType

    # Reference kernels: a delegate (XNNPACK) would consume the fp16 weights itself and never fill these.
    interpreter = Interpreter(
        str(src),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
    interpreter.invoke()
    for i in folded:
        for t in g.operators[i].outputs:
            value = np.ascontiguousarray(interpreter.get_tensor(int(t)))
            types = {np.dtype(np.float32): schema.TensorType.FLOAT32, np.dtype(np.float16): schema.TensorType.FLOAT16}
            if value.dtype not in types:
                raise ModelError(f"{src.name}: weight op output {g.tensors[t].name} is {value.dtype}, not float")
            buf = schema.BufferT()
            buf.data = np.frombuffer(value.tobytes(), dtype=np.uint8)
            model.buffers.append(buf)
            tensor = g.tensors[t]
            tensor.buffer, tensor.type, tensor.sparsity, tensor.quantization = (
                len(model.buffers) - 1,
                types[value.dtype],
                None,
                None,
            )
    g.operators = [op for i, op in enumerate(g.operators) if i not in set(folded)]
    drop_unused_tensors(g)  # the sparse originals: tf2onnx reads every tensor, and cannot read those
    builder = flatbuffers.Builder(src.stat().st_size * 4 + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_path(dst) as tmp:
        tmp.write_bytes(builder.Output())
    return len(folded)
