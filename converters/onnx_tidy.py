"""Make an ONNX graph safe for onnx2tf and the runtime: plain names, a float input named `input`.

- onnx2tf rewrites ':' in names and chokes on ';' (BlazePose's TFLite names carry both), so every
  tensor and node name is reduced to [A-Za-z0-9_].
- onnx2tf's int8 path needs a float32 input; a uint8 input (MoveNet) becomes float32 carrying the same
  0..255 pixel values, so nothing else in the graph changes.
- DepthToSpace (BlazePose's detector) becomes the equivalent Reshape -> Transpose -> Reshape: onnx2tf
  mistracks the layout of square feature maps before it and fails on the op itself.
"""

from __future__ import annotations

import re
from pathlib import Path

INPUT_NAME = "input"


def _plain(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def tidy_onnx(src: Path, dst: Path, output_names: dict[str, str] | None = None) -> None:
    """Rename (plain names; the single graph input becomes `input`), make the input float32, save.

    `output_names` maps original output names to wanted ones (e.g. RTMPose's simcc_x / simcc_y).
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    if len(real_inputs) != 1:
        raise ValueError(f"expected one image input, found {len(real_inputs)}")
    renames: dict[str, str] = {real_inputs[0].name: INPUT_NAME}
    for out in graph.output:
        renames[out.name] = (output_names or {}).get(out.name, _plain(out.name))
    taken = set(renames.values())

    def new_name(name: str) -> str:
        if not name or name in renames:
            return renames.get(name, name)
        base = candidate = _plain(name)
        i = 1
        while candidate in taken:
            candidate = f"{base}_{i}"
            i += 1
        taken.add(candidate)
        renames[name] = candidate
        return candidate

    for node in graph.node:
        node.input[:] = [new_name(x) for x in node.input]
        node.output[:] = [new_name(x) for x in node.output]
        node.name = _plain(node.name)
    for t in graph.initializer:
        t.name = new_name(t.name)
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        vi.name = new_name(vi.name)

    inp = next(i for i in graph.input if i.name == INPUT_NAME)
    old_type = inp.type.tensor_type.elem_type
    if old_type != TensorProto.FLOAT:
        inp.type.tensor_type.elem_type = TensorProto.FLOAT
        consumers = [n for n in graph.node if INPUT_NAME in n.input]
        casts_to_float = all(
            n.op_type == "Cast"
            and any(a.name == "to" and helper.get_attribute_value(a) == TensorProto.FLOAT for a in n.attribute)
            for n in consumers
        )
        if not casts_to_float:
            # Someone needs the original integer type: cast once, right at the input.
            cast = helper.make_node("Cast", [INPUT_NAME], ["input_as_source_type"], to=old_type, name="input_cast")
            for n in consumers:
                n.input[:] = ["input_as_source_type" if x == INPUT_NAME else x for x in n.input]
            graph.node.insert(0, cast)
    _expand_depth_to_space(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def _expand_depth_to_space(model) -> None:
    """DepthToSpace (DCR) as Reshape [N, b, b, C/b^2, H, W] -> Transpose -> Reshape [N, C/b^2, H*b, W*b]."""
    import numpy as np
    from onnx import helper, numpy_helper, shape_inference

    graph = model.graph
    if not any(n.op_type == "DepthToSpace" for n in graph.node):
        return
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.value_info, *inferred.input, *inferred.output]
    }
    nodes = []
    for n in graph.node:
        mode = next((a.s.decode() for a in n.attribute if a.name == "mode"), "DCR")
        shape = shapes.get(n.input[0]) if n.op_type == "DepthToSpace" else None
        if shape is None or len(shape) != 4 or 0 in shape or mode != "DCR":
            nodes.append(n)
            continue
        b = next(a.i for a in n.attribute if a.name == "blocksize")
        batch, c, h, w = shape
        split = numpy_helper.from_array(np.array([batch, b, b, c // (b * b), h, w], np.int64), f"{n.name}_split")
        merged = numpy_helper.from_array(np.array([batch, c // (b * b), h * b, w * b], np.int64), f"{n.name}_merged")
        graph.initializer.extend([split, merged])
        nodes += [
            helper.make_node("Reshape", [n.input[0], split.name], [f"{n.name}_r"], name=f"{n.name}_r"),
            helper.make_node(
                "Transpose", [f"{n.name}_r"], [f"{n.name}_t"], perm=[0, 3, 4, 1, 5, 2], name=f"{n.name}_t"
            ),
            helper.make_node("Reshape", [f"{n.name}_t", merged.name], [n.output[0]], name=f"{n.name}_m"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)


def onnx_io(path: Path) -> tuple[list[tuple[str, list[int]]], list[tuple[str, list[int]]]]:
    """(name, shape) of the graph inputs (initializers excluded) and outputs."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}

    def shape(vi) -> list[int]:
        return [d.dim_value if d.dim_value > 0 else -1 for d in vi.type.tensor_type.shape.dim]

    inputs = [(i.name, shape(i)) for i in graph.input if i.name not in initializers]
    return inputs, [(o.name, shape(o)) for o in graph.output]
