"""Mixed-precision int8 TFLite: the fewest layers kept in float that bring the model within tolerance.

How the layers are chosen (measured on BlazePose's landmark model, where plain int8 is ~10 px off):

- Sensitivity is measured end to end, by simulation on the float ONNX graph in onnxruntime: one
  quantization at a time is applied exactly as the int8 TFLite model has it (a layer's weights and
  bias: the model's own dequantized ones; an activation: the model's own scale and zero point), the
  rest of the graph stays float, and the caller's `error_of` scores the result. With all of them
  applied the simulation lands within a few percent of the real int8 error. Ranking by the
  debugger's per-layer activation RMSE does not predict the end error; weights alone do not explain
  it either (int16 activations still leave half of it), so activations are simulated too.
- TFLite's precision is per edge: a float op hands float readers its float output and puts a
  QUANTIZE in front of int8 readers. An activation point is therefore one tensor as one reader gets
  it, and undoing it takes the writer, the layout ops on the way (PAD, RESHAPE, ...) and the reader,
  all float. The op ranking is the order in which the points, most harmful first, bring their ops in.
- ONNX nodes are matched to TFLite ops by content, never by name or position: weighted layers by
  their weights (OIHW against OHWI / 1HWC / OI, after transposing), the others by kind and by the
  matched ops that feed them. An op writing a model output is named as the converter knows it: by
  the output's name (its own tensor got a suffixed name when the final DEQUANTIZE was added).
- The search converts for real (`tflite_quantize.quantize_int8`, TF's selective quantization) with
  the top k ops in float, k = 1, 2, 3, 5, 8, 13, ..., then bisects between the last failing and the
  first passing k; the caller's `evaluate` decides what passes.

The error is spread thin over this model (253 quantizations, most worth 0.3-1 px alone); about 56 of
its 142 ops (~60% of the multiply-adds) must stay float for 1.5 px, so the result is only ~15% faster
than the fp16 source, against ~2x for plain int8.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.bindings import Backend, TensorSpec

# ONNX ops that carry values through unchanged (layout, padding, pooling by max, resampling) or are
# fused into the op before them in TFLite (activations); a quantized tensor keeps its scale across them.
_ONNX_PASS = {
    "Clip",
    "Relu",
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Flatten",
    "Pad",
    "MaxPool",
    "Resize",
    "Upsample",
    "Identity",
    "Cast",
    "Slice",
    "Split",
    "Gather",
    "DepthToSpace",
    "SpaceToDepth",
}
_ONNX_FUSED = {"Clip", "Relu"}  # fused into the producer in TFLite: the quantized tensor is after them
_TFL_PASS = {
    "TRANSPOSE",
    "RESHAPE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "PAD",
    "PADV2",
    "MAX_POOL_2D",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "SLICE",
    "STRIDED_SLICE",
    "SPLIT",
    "SPLIT_V",
    "GATHER",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
    "RELU",
    "RELU6",
}
_TFL_CONVERT = {"QUANTIZE", "DEQUANTIZE"}  # inserted by the converter; not ops of the model
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
# ONNX op -> TFLite kinds it becomes (weighted ops are matched by weights instead).
_KINDS = {
    "Add": {"ADD"},
    "Sub": {"SUB"},
    "Mul": {"MUL"},
    "Div": {"DIV"},
    "Sigmoid": {"LOGISTIC"},
    "Tanh": {"TANH"},
    "Softmax": {"SOFTMAX"},
    "Concat": {"CONCATENATION"},
    "HardSwish": {"HARD_SWISH"},
    "PRelu": {"PRELU"},
    "LeakyRelu": {"LEAKY_RELU"},
    "AveragePool": {"AVERAGE_POOL_2D"},
    "GlobalAveragePool": {"MEAN", "AVERAGE_POOL_2D"},
    "ReduceMean": {"MEAN"},
}
LADDER = (1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233)


@dataclass
class SearchResult:
    model: bytes | None  # the passing model (None if nothing passed within max_float_layers)
    float_layers: list[str]  # TFLite tensor names kept float (empty = plain int8 passed)
    trials: list[dict]  # per conversion: {"float_layers": k, "metric": float, "passed": bool, "seconds": float}
    ranking: list[tuple[str, float]]  # (name, sensitivity) the search used, most sensitive first


# --- the int8 TFLite graph ---------------------------------------------------------------------------------


@dataclass
class _TflOp:
    index: int
    kind: str
    name: str  # its first output tensor's name: what quantize_int8's float_layers takes
    inputs: list[int]  # activation tensors (not constants)
    outputs: list[int]
    weights: np.ndarray | None = None  # dequantized, in the ONNX layout (OIHW, or OI)
    bias: np.ndarray | None = None


@dataclass
class _TflGraph:
    ops: list[_TflOp]
    names: dict[int, str]
    quant: dict[int, tuple[float, int]]  # tensor -> (scale, zero point), per-tensor int8/uint8 only
    producer: dict[int, int] = field(default_factory=dict)  # tensor -> op index
    readers: dict[int, list[int]] = field(default_factory=dict)  # tensor -> op indices
    outputs: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op.index
            for t in op.inputs:
                self.readers.setdefault(t, []).append(op.index)

    def value_source(self, tensor: int) -> int | None:
        """The op that last changed the values of `tensor` (walking back through layout ops), or None."""
        seen = 0
        while tensor in self.producer and seen < 1000:
            op = self.ops[self.producer[tensor]]
            if op.kind not in _TFL_PASS and op.kind not in _TFL_CONVERT:
                return op.index
            if not op.inputs:
                return None
            tensor, seen = op.inputs[0], seen + 1
        return None


def _interpreter(model: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from edgepose.converters.tflite_quantize import _tf

        Interpreter = _tf().lite.Interpreter  # noqa: N806 - a class
    return Interpreter(model_content=model)


def _dequantized(it, detail: dict) -> np.ndarray:
    q = it.get_tensor(detail["index"])
    qp = detail["quantization_parameters"]
    scales, zps = np.asarray(qp["scales"], np.float64), np.asarray(qp["zero_points"], np.float64)
    if q.dtype.kind == "f" or scales.size == 0:
        return q.astype(np.float32)
    shape = [1] * q.ndim
    if scales.size > 1:
        shape[qp["quantized_dimension"]] = -1
    return ((q.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def _tfl_graph(model: bytes) -> _TflGraph:
    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    raw_ops = it._get_ops_details()  # private, but the only op list LiteRT and tf.lite expose
    produced = {t for o in raw_ops for t in o["outputs"]}
    graph_inputs = {d["index"] for d in it.get_input_details()}
    ops = []
    for o in raw_ops:
        ins = [t for t in o["inputs"] if t >= 0]
        acts = [t for t in ins if t in produced or t in graph_inputs]
        consts = [t for t in ins if t not in acts]
        op = _TflOp(o["index"], o["op_name"], details[o["outputs"][0]]["name"], acts, list(o["outputs"]))
        if op.kind in _WEIGHTED and consts and len(ins) >= 2 and ins[1] in consts:
            w = _dequantized(it, details[ins[1]])
            if op.kind == "CONV_2D" and w.ndim == 4:
                w = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
            elif op.kind == "DEPTHWISE_CONV_2D" and w.ndim == 4:
                w = w.transpose(3, 0, 1, 2)  # 1HWC -> C1HW
            op.weights = w
            if len(ins) >= 3 and ins[2] in consts:
                op.bias = _dequantized(it, details[ins[2]]).reshape(-1)
        ops.append(op)
    quant = {}
    for i, d in details.items():
        qp = d["quantization_parameters"]
        if d["dtype"] in (np.int8, np.uint8) and len(qp["scales"]) == 1 and qp["scales"][0] > 0:
            zp = int(qp["zero_points"][0]) - (128 if d["dtype"] == np.uint8 else 0)
            quant[i] = (float(qp["scales"][0]), zp)
    graph = _TflGraph(ops, {i: d["name"] for i, d in details.items()}, quant)
    graph.outputs = {d["index"] for d in it.get_output_details()}
    for op in ops:
        # An op writing a model output through the final DEQUANTIZE is known to the converter by the
        # output's name (its own tensor got a suffixed name when the DEQUANTIZE was added).
        readers = graph.readers.get(op.outputs[0], [])
        if len(readers) == 1 and ops[readers[0]].kind == "DEQUANTIZE" and ops[readers[0]].outputs[0] in graph.outputs:
            op.name = details[ops[readers[0]].outputs[0]]["name"]
    return graph


def float_ops(model: bytes) -> list[str]:
    """Output names of the ops that compute in float in a TFLite model (QUANTIZE/DEQUANTIZE aside)."""
    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    return [
        details[o["outputs"][0]]["name"]
        for o in it._get_ops_details()
        if o["op_name"] not in _TFL_CONVERT and details[o["outputs"][0]]["dtype"] == np.float32
    ]


# --- the float ONNX graph and its match to the TFLite ops ------------------------------------------------------


def _onnx_weights(node, inits: dict[str, np.ndarray]) -> np.ndarray | None:
    """A weighted node's weights in the TFLite layout family (OIHW for Conv, OI for Gemm/MatMul)."""
    from onnx import helper

    if len(node.input) < 2 or node.input[1] not in inits:
        return None
    w = inits[node.input[1]]
    if node.op_type == "Conv":
        return w if w.ndim == 4 else None
    if node.op_type == "Gemm" and w.ndim == 2:
        trans_b = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "transB"), 0)
        return w if trans_b else w.T
    if node.op_type == "MatMul" and w.ndim == 2:
        return w.T
    return None


def _match_weights(nodes: list, inits: dict[str, np.ndarray], tfl: _TflGraph) -> dict[str, int]:
    """ONNX node name -> TFLite op index, by weights: after transposing, the int8 weights are the float
    ones rounded (max deviation half a step of the channel's max / 127); a wrong pair is far off."""
    pairs = []
    for node in nodes:
        w = _onnx_weights(node, inits)
        if w is None:
            continue
        scale = float(np.abs(w).max()) or 1.0
        for op in tfl.ops:
            if op.weights is not None and op.weights.shape == w.shape:
                pairs.append((float(np.abs(op.weights - w).max()) / scale, node.name, op.index))
    pairs.sort()
    taken_nodes, taken_ops, match = set(), set(), {}
    for dev, name, idx in pairs:
        if dev > 0.02:  # 5x the worst int8 rounding: no longer the same tensor
            break
        if name not in taken_nodes and idx not in taken_ops:
            taken_nodes.add(name)
            taken_ops.add(idx)
            match[name] = idx
    return match


class _OnnxGraph:
    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        g = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in g.node:  # Constant nodes are initializers by another name
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.input = next(i.name for i in g.input if i.name not in self.inits)
        self.nodes = list(g.node)
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.readers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.readers.setdefault(i, []).append(n)

    def is_value_op(self, node) -> bool:
        has_activation = any(i and i not in self.inits and (i in self.producer or i == self.input) for i in node.input)
        return node.op_type not in _ONNX_PASS and has_activation

    def quantized_tensor(self, node) -> str:
        """Where TFLite quantizes a value op's result: after its fused activation, if it has one."""
        t = node.output[0]
        readers = self.readers.get(t, [])
        if len(readers) == 1 and readers[0].op_type in _ONNX_FUSED:
            return readers[0].output[0]
        return t

    def value_sources(self, node) -> list[str | None]:
        """Per activation input: the value op (node name) or graph input ('') it comes from."""
        out = []
        for i in node.input:
            if not i or i in self.inits:
                continue
            seen = 0
            while i in self.producer and seen < 1000:
                p = self.producer[i]
                if self.is_value_op(p):
                    break
                acts = [x for x in p.input if x and x not in self.inits]
                if not acts:
                    break
                i, seen = acts[0], seen + 1
            if i == self.input:
                out.append("")
            elif i in self.producer and self.is_value_op(self.producer[i]):
                out.append(self.producer[i].name)
            else:
                out.append(None)
        return out


def _match(onnx_graph: _OnnxGraph, tfl: _TflGraph) -> dict[str, int]:
    """ONNX value-op name -> TFLite op index: weighted ops by weights, then the others by kind and by
    the (already matched) ops their inputs come from, until nothing more matches unambiguously."""
    match = _match_weights(onnx_graph.nodes, onnx_graph.inits, tfl)
    matched_ops = set(match.values())
    tfl_sources = {}
    for op in tfl.ops:
        srcs = []
        for t in op.inputs:
            s = tfl.value_source(t)
            srcs.append("" if s is None and _reaches_input(tfl, t) else s)
        tfl_sources[op.index] = srcs
    pending = [n for n in onnx_graph.nodes if onnx_graph.is_value_op(n) and n.name not in match and n.op_type in _KINDS]
    changed = True
    while changed and pending:
        changed = False
        for node in list(pending):
            srcs = onnx_graph.value_sources(node)
            if any(s is None or (s and s not in match) for s in srcs):
                continue
            want = sorted(("" if s == "" else str(match[s])) for s in srcs)
            cands = [
                op.index
                for op in tfl.ops
                if op.kind in _KINDS[node.op_type]
                and op.index not in matched_ops
                and sorted("" if s == "" else str(s) for s in tfl_sources[op.index] if s is not None) == want
            ]
            if len(cands) == 1:
                match[node.name] = cands[0]
                matched_ops.add(cands[0])
                pending.remove(node)
                changed = True
    return match


def _reaches_input(tfl: _TflGraph, tensor: int) -> bool:
    seen = 0
    while tensor in tfl.producer and seen < 1000:
        op = tfl.ops[tfl.producer[tensor]]
        if op.kind not in _TFL_PASS and op.kind not in _TFL_CONVERT or not op.inputs:
            return False
        tensor, seen = op.inputs[0], seen + 1
    return tensor not in tfl.producer


# --- the simulator ------------------------------------------------------------------------------------------


@dataclass
class _Point:
    """One quantization the int8 model applies: a layer's weights (and bias), or one activation as one
    of its readers gets it (TFLite quantizes per reader: a float op feeding float and int8 ops hands the
    float ones the float tensor)."""

    kind: str  # "weights" or "activation"
    onnx_node: str  # the weighted node, or the value op that writes the activation ("" for the input)
    tensor: str  # the quantized ONNX activation (activations only)
    reader: str | None  # the ONNX node that reads it quantized; None for a model output
    needs: set[int]  # TFLite op indices that must all be float to undo it
    scale: float = 0.0
    zero_point: int = 0


class _SimBackend(Backend):
    """A Backend over an in-memory ONNX model (what `error_of` is given)."""

    def __init__(self, model_bytes: bytes, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # ORT's QDQ rewrites would turn the fake-quant pairs into int8 kernels (and drop some beside Clip).
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        self._sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        self.name, self.threads, self.path = "onnxruntime-sim", threads, None
        ins = self._sess.get_inputs()
        self._in = [i.name for i in ins]
        self.inputs = tuple(TensorSpec(i.name, _dims(i.shape), np.dtype(np.float32)) for i in ins)
        self.outputs = tuple(TensorSpec(o.name, _dims(o.shape), np.dtype(np.float32)) for o in self._sess.get_outputs())

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, dict(zip(self._in, inputs, strict=False)))


def _dims(shape) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else 1 for d in shape)


class _Simulator:
    """The float ONNX graph with any chosen subset of the int8 model's quantizations applied."""

    def __init__(self, float_onnx: Path, int8_tflite: bytes, inputs: Sequence[np.ndarray], activations: bool = True):
        import onnx

        self.model = onnx.load(str(float_onnx))
        self.onnx = _OnnxGraph(self.model)
        self.tfl = _tfl_graph(int8_tflite)
        self.match = _match(self.onnx, self.tfl)
        self.points: list[_Point] = []
        self.replacements: dict[str, dict[str, np.ndarray]] = {}
        self.unmatched_edges = 0
        unranged = []
        for node in self.onnx.nodes:
            idx = self.match.get(node.name)
            if idx is None:
                continue
            op = self.tfl.ops[idx]
            if op.weights is not None and node.op_type in ("Conv", "Gemm", "MatMul"):
                rep = {node.input[1]: _onnx_layout(node, op.weights, self.onnx.inits[node.input[1]])}
                if op.bias is not None and len(node.input) > 2 and node.input[2] in self.onnx.inits:
                    b = self.onnx.inits[node.input[2]]
                    if b.size == op.bias.size:
                        rep[node.input[2]] = op.bias.reshape(b.shape).astype(b.dtype)
                self.replacements[node.name] = rep
                self.points.append(_Point("weights", node.name, "", None, {idx}))
            if not activations:
                continue
            tensor = self.onnx.quantized_tensor(node)
            scale, zp = self.tfl.quant.get(op.outputs[0], (0.0, 0))
            for reader, needs in self._edges(tensor, op.outputs):
                point = _Point("activation", node.name, tensor, reader, needs | {idx}, scale, zp)
                (unranged if scale == 0.0 else self.points).append(point)
        if activations:
            self._input_points()
            if unranged:
                self._calibrate(unranged, inputs)
                self.points.extend(unranged)

    def _edges(self, tensor: str, tfl_tensors: list[int]) -> list[tuple[str | None, set[int]]]:
        """Per ONNX reader of `tensor` (None: the model output): the TFLite ops between the writer and
        the value ops it feeds, those included. Readers that lead to unmatched ops are left out."""
        edges = []
        hops = [(r.name, [r]) for r in self.onnx.readers.get(tensor, [])]
        if tensor in {o.name for o in self.model.graph.output}:
            hops.append((None, []))
        for name, first in hops:
            dests = self._onnx_dests(first) if first else ["output"]
            needs: set[int] | None = set()
            for d in dests:
                if d != "output" and d not in self.match:
                    needs = None
                    break
                path = self._tfl_path(tfl_tensors, None if d == "output" else self.match[d])
                if path is None or needs is None:
                    needs = None
                    break
                needs |= path
            if needs is None or not dests:
                self.unmatched_edges += 1
            else:
                edges.append((name, needs))
        return edges

    def _onnx_dests(self, nodes: list) -> list[str]:
        """The value ops (names) or model outputs ("output") that `nodes` lead to through layout ops."""
        outputs = {o.name for o in self.model.graph.output}
        dests, todo, seen = [], list(nodes), set()
        while todo:
            n = todo.pop()
            if n.name in seen:
                continue
            seen.add(n.name)
            if self.onnx.is_value_op(n):
                dests.append(n.name)
                continue
            for o in n.output:
                if o in outputs:
                    dests.append("output")
                todo.extend(self.onnx.readers.get(o, []))
        return dests

    def _tfl_path(self, start: list[int], target: int | None) -> set[int] | None:
        """Layout ops from tensors `start` to op `target` (None: a model output), plus `target`."""
        found: set[int] = set()

        def walk(tensors: list[int], path: list[int], depth: int) -> bool:
            hit = False
            for t in tensors:
                if target is None and t in self.tfl.outputs:
                    found.update(path)
                    hit = True
                for r in self.tfl.readers.get(t, []):
                    op = self.tfl.ops[r]
                    if r == target:
                        found.update(path + [r])
                        hit = True
                    elif depth < 50 and op.kind in _TFL_CONVERT:
                        hit = walk(op.outputs, path, depth + 1) or hit
                    elif depth < 50 and op.kind in _TFL_PASS:
                        hit = walk(op.outputs, path + [r], depth + 1) or hit
            return hit

        return found if walk(start, [], 0) else None

    def _input_points(self) -> None:
        """The model input is quantized too (a float-I/O model quantizes it first thing)."""
        for op in self.tfl.ops:
            if op.kind == "QUANTIZE" and op.inputs and op.inputs[0] not in self.tfl.producer:
                scale, zp = self.tfl.quant.get(op.outputs[0], (0.0, 0))
                if scale:
                    for reader, needs in self._edges(self.onnx.input, op.outputs):
                        self.points.append(_Point("activation", "", self.onnx.input, reader, needs, scale, zp))
                return

    def _calibrate(self, points: list[_Point], inputs: Sequence[np.ndarray]) -> None:
        """Min/max ranges, as TFLite's calibration takes them, for tensors the int8 model has no scale for."""
        import onnx
        from onnx import TensorProto, helper

        probe = onnx.ModelProto()
        probe.CopyFrom(self.model)
        names = sorted({p.tensor for p in points})
        have = {o.name for o in probe.graph.output}
        new = [n for n in names if n not in have]
        probe.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in new)
        backend = _SimBackend(probe.SerializeToString())
        lo, hi = np.zeros(len(names)), np.zeros(len(names))
        for x in inputs:
            values = backend._sess.run(names, {backend._in[0]: np.asarray(x, np.float32)})
            lo = np.minimum(lo, [float(v.min()) for v in values])
            hi = np.maximum(hi, [float(v.max()) for v in values])
        ranges = dict(zip(names, zip(lo, hi, strict=True), strict=True))
        for p in points:
            a, b = ranges[p.tensor]
            p.scale = max(float(b - a), 1e-8) / 255.0
            p.zero_point = int(np.clip(np.round(-128 - a / p.scale), -128, 127))

    def backend(self, quantized: Iterable[_Point]) -> _SimBackend:
        return _SimBackend(self.build(quantized).SerializeToString())

    def build(self, quantized: Iterable[_Point]):
        import onnx
        from onnx import helper, numpy_helper

        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        g = model.graph
        inits = {t.name: t for t in g.initializer}
        acts: dict[str, list[_Point]] = {}
        for p in quantized:
            if p.kind == "weights":
                for name, value in self.replacements[p.onnx_node].items():
                    inits[name].CopyFrom(numpy_helper.from_array(value, name))
            else:
                acts.setdefault(p.tensor, []).append(p)
        inserts: dict[str, list] = {}
        for i, (t, points) in enumerate(acts.items()):
            s, z, q, dq = f"__fq{i}_scale", f"__fq{i}_zp", f"__fq{i}_q", f"__fq{i}_dq"
            g.initializer.extend(
                [
                    numpy_helper.from_array(np.array(points[0].scale, np.float32), s),
                    numpy_helper.from_array(np.array(points[0].zero_point, np.int8), z),
                ]
            )
            inserts[t] = [
                helper.make_node("QuantizeLinear", [t, s, z], [q]),
                helper.make_node("DequantizeLinear", [q, s, z], [dq]),
            ]
            readers = {p.reader for p in points}
            for node in g.node:
                if node.name in readers:
                    node.input[:] = [dq if x == t else x for x in node.input]
            if None in readers:  # the model output itself: the graph output becomes the dequantized value
                out = next(o for o in g.output if o.name == t)
                g.node.append(helper.make_node("Identity", [dq], [t + "__sim"]))
                out.name = t + "__sim"
        if not inserts:
            return model
        nodes = list(inserts.pop(self.onnx.input, []))
        for node in g.node:
            nodes.append(node)
            for o in node.output:
                nodes.extend(inserts.pop(o, []))
        del g.node[:]
        g.node.extend(nodes)
        return model


def _onnx_layout(node, weights: np.ndarray, like: np.ndarray) -> np.ndarray:
    if node.op_type in ("Gemm", "MatMul") and weights.shape != like.shape:
        weights = weights.T
    return weights.reshape(like.shape).astype(like.dtype)


# --- sensitivity --------------------------------------------------------------------------------------------


def _measure(
    sim: _Simulator, error_of: Callable[[Backend], float], points: list[_Point], progress: Callable[[str], None] | None
) -> list[float]:
    errors = []
    t0 = time.monotonic()
    for i, p in enumerate(points):
        errors.append(float(error_of(sim.backend([p]))))
        if progress and (i + 1) % 25 == 0:
            progress(f"  sensitivity {i + 1}/{len(points)} ({time.monotonic() - t0:.0f} s)")
    return errors


def weight_sensitivity(
    float_onnx: Path, int8_tflite: bytes, inputs: list[np.ndarray], error_of: Callable[[Backend], float]
) -> list[tuple[str, float]]:
    """TFLite op output names ranked by the end error their weights' int8 rounding causes alone.

    `inputs` are not needed for weights (kept for the signature shared with `quantization_sensitivity`).
    """
    sim = _Simulator(float_onnx, int8_tflite, inputs, activations=False)
    points = [p for p in sim.points if p.kind == "weights"]
    errors = _measure(sim, error_of, points, None)
    ranked = sorted(zip(points, errors, strict=True), key=lambda pe: -pe[1])
    return [(sim.tfl.ops[next(iter(p.needs))].name, e) for p, e in ranked]


def quantization_sensitivity(
    float_onnx: Path,
    int8_tflite: bytes,
    inputs: list[np.ndarray],
    error_of: Callable[[Backend], float],
    progress: Callable[[str], None] | None = None,
) -> list[tuple[str, float]]:
    """TFLite op output names in the order to keep them float, each with the end error (alone) of the
    most harmful quantization it takes part in: weights and activations both, simulated one at a time.

    `inputs` (calibration inputs) give ranges to any matched tensor the int8 model has no scale for.
    """
    sim = _Simulator(float_onnx, int8_tflite, inputs, activations=True)
    if progress:
        n_w = sum(p.kind == "weights" for p in sim.points)
        progress(
            f"simulating {len(sim.points)} quantizations ({n_w} weights, {len(sim.points) - n_w} activations; "
            f"{len(sim.match)} ONNX ops matched to TFLite)"
        )
    errors = _measure(sim, error_of, sim.points, progress)
    return _op_ranking(sim, sim.points, errors)


def _op_ranking(sim: _Simulator, points: list[_Point], errors: list[float]) -> list[tuple[str, float]]:
    order = sorted(range(len(points)), key=lambda i: -errors[i])
    ranking: list[tuple[str, float]] = []
    seen: set[int] = set()
    for i in order:
        # Within one point: the value op first, then the layout ops and readers, in graph order.
        for idx in sorted(points[i].needs):
            if idx not in seen:
                seen.add(idx)
                ranking.append((sim.tfl.ops[idx].name, errors[i]))
    return ranking


# --- search -------------------------------------------------------------------------------------------------


def search_float_layers(
    saved_model: Path,
    float_onnx: Path,
    calib: list[np.ndarray],
    io_type: str,
    evaluate: Callable[[bytes], tuple[bool, float]],
    error_of: Callable[[Backend], float],
    max_float_layers: int = 32,
    progress: Callable[[str], None] = print,
) -> SearchResult:
    """Plain int8 first; if it fails, the smallest k (<= max_float_layers) for which the k most sensitive
    ops in float pass `evaluate`. Conversions are real; only the ranking is simulated."""
    from edgepose.converters.tflite_quantize import quantize_int8

    trials: list[dict] = []
    models: dict[int, tuple[bool, bytes]] = {}

    def trial(k: int, names: list[str]) -> bool:
        t0 = time.monotonic()
        model = quantize_int8(saved_model, calib, io_type, float_layers=names or None)
        passed, metric = evaluate(model)
        seconds = time.monotonic() - t0
        trials.append(
            {"float_layers": k, "metric": float(metric), "passed": bool(passed), "seconds": round(seconds, 1)}
        )
        models[k] = (bool(passed), model)
        progress(f"int8 with {k} float layers: metric {metric:.3f} ({'pass' if passed else 'fail'}, {seconds:.0f} s)")
        n_float = len(float_ops(model)) if k else 0
        if n_float < k:
            progress(f"  only {n_float} of the {k} ops asked for came out float (a name the converter does not know?)")
        return bool(passed)

    if trial(0, []):
        return SearchResult(models[0][1], [], trials, [])
    t0 = time.monotonic()
    ranking = quantization_sensitivity(float_onnx, models[0][1], calib, error_of, progress)
    progress(f"ranked {len(ranking)} ops in {time.monotonic() - t0:.0f} s")
    names = [n for n, _ in ranking]
    limit = min(max_float_layers, len(names))
    ladder = [k for k in LADDER if k < limit] + [limit]
    last_fail, first_pass = 0, None
    for k in ladder:
        if trial(k, names[:k]):
            first_pass = k
            break
        last_fail = k
    if first_pass is None:
        return SearchResult(None, [], trials, ranking)
    while first_pass - last_fail > 1:
        k = (first_pass + last_fail) // 2
        if trial(k, names[:k]):
            first_pass = k
        else:
            last_fail = k
    return SearchResult(models[first_pass][1], names[:first_pass], trials, ranking)
