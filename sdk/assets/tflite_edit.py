"""Make the Coral PoseNet multi-person model runnable on a stock TFLite runtime.

The model ends in the custom op `PosenetDecoderOp`, which only the Coral runtime provides. We cut it
off by editing the flatbuffer: its three inputs (heatmaps, short offsets, mid offsets) become the
model outputs and `edgepose.models.posenet` decodes them in numpy. The cut model is written once into the
user cache under a name derived from the source file's SHA-256; the user's file is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgepose.assets import cache_dir, sha256_of
from edgepose.bindings.tflite_file import is_edgetpu_model
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path

DECODER_OP = "PosenetDecoderOp"
# The op's documented defaults, used when its custom options are missing or unreadable.
DEFAULT_PARAMS: dict[str, Any] = {"max_detections": 20, "score_threshold": 0.2, "stride": 16, "nms_radius": 10.0}
# Channel counts of the decoder inputs: heatmaps, short offsets, mid-range (displacement) offsets.
DECODER_CHANNELS = (17, 34, 64)


def _schema():
    try:  # the generated schema (it imports `flatbuffers`) ships with LiteRT
        from ai_edge_litert import schema_py_generated
    except ImportError as e:
        raise ModelError("editing PoseNet models needs ai-edge-litert (pip install ai-edge-litert)") from e
    return schema_py_generated


def load_model_tree(src: Path) -> Any:
    """A TFLite model as an editable object tree (ModelT); ModelError for anything unreadable."""
    s = _schema()
    try:
        buf = src.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read model file {src}: {e.strerror or e}") from e
    if len(buf) < 8 or not s.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelError(f"{src} is not a TFLite model file")
    try:
        return s.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as e:  # a truncated or corrupt flatbuffer fails anywhere inside the generated code
        raise ModelError(f"{src} is not a readable TFLite model ({type(e).__name__})") from e


def _decoder_op(model: Any, src: Path) -> tuple[Any, int]:
    """The subgraph holding the model's one PosenetDecoderOp, and the op's index in it."""
    codes = {i for i, c in enumerate(model.operatorCodes or []) if c.customCode == DECODER_OP.encode()}
    found = [(g, j) for g in model.subgraphs or [] for j, op in enumerate(g.operators or []) if op.opcodeIndex in codes]
    if len(found) != 1:
        raise ModelError(f"{src} is not a PoseNet model with one {DECODER_OP} (found {len(found)})")
    return found[0]


def _params_from_options(options: Any) -> dict[str, Any]:
    params = dict(DEFAULT_PARAMS)
    if options is None or len(options) == 0:
        return params
    try:
        from flatbuffers import flexbuffers

        stored = flexbuffers.Loads(bytes(options))
    except Exception:  # options are advisory: a file with odd ones still decodes with the defaults
        return params
    if isinstance(stored, dict):
        for key, default in DEFAULT_PARAMS.items():
            value = stored.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                params[key] = type(default)(value)
    return params


def decoder_params(src: str | Path) -> dict[str, Any]:
    """max_detections, score_threshold, stride and nms_radius of the model's PosenetDecoderOp."""
    src = Path(src)
    model = load_model_tree(src)
    g, j = _decoder_op(model, src)
    return _params_from_options(g.operators[j].customOptions)


def strip_posenet_decoder(src: Path, dst: Path) -> dict[str, Any]:
    """Write to `dst` a copy of `src` without its PosenetDecoderOp; return the decoder's parameters.

    The outputs of the copy are the decoder's three inputs, in the op's input order. `dst` is
    written atomically; `src` is only read.
    """
    import flatbuffers

    src, dst = Path(src), Path(dst)
    model = load_model_tree(src)
    g, j = _decoder_op(model, src)
    op = g.operators[j]
    params = _params_from_options(op.customOptions)
    if op.inputs is None or len(op.inputs) != len(DECODER_CHANNELS) or min(op.inputs) < 0:
        raise ModelError(f"{src}: {DECODER_OP} has no three input tensors; not a PoseNet decoder model")
    heads = [int(t) for t in op.inputs]
    channels = sorted(int(g.tensors[t].shape[-1]) for t in heads if g.tensors[t].shape is not None)
    if channels != sorted(DECODER_CHANNELS):
        raise ModelError(f"{src}: {DECODER_OP} inputs have {channels} channels, expected 17, 34 and 64")

    del g.operators[j]
    g.outputs = heads
    drop_unused_tensors(g)
    _drop_unused_opcodes(model)
    model.signatureDefs = None  # they would name the decoder's outputs, which are gone

    builder = flatbuffers.Builder(src.stat().st_size + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_path(dst) as tmp:
        tmp.write_bytes(builder.Output())
    return params


def drop_unused_tensors(g: Any) -> None:
    """Remove tensors no op uses any more (after cutting ops), renumbering every tensor reference."""
    used = {int(t) for t in g.inputs} | {int(t) for t in g.outputs}
    for op in g.operators:
        for field in (op.inputs, op.outputs, op.intermediates):
            used.update(int(t) for t in (field if field is not None else []) if t >= 0)
    keep = [i for i in range(len(g.tensors)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}

    def remap(refs):
        return None if refs is None else [new_index[int(t)] if t >= 0 else -1 for t in refs]

    g.tensors = [g.tensors[i] for i in keep]
    g.inputs, g.outputs = remap(g.inputs), remap(g.outputs)
    for op in g.operators:
        op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)


def _drop_unused_opcodes(model: Any) -> None:
    # A runtime may refuse a model that merely lists a custom op it lacks, so drop the orphaned code.
    used = sorted({op.opcodeIndex for g in model.subgraphs for op in (g.operators or [])})
    new_index = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    for g in model.subgraphs:
        for op in g.operators or []:
            op.opcodeIndex = new_index[op.opcodeIndex]


def cpu_posenet_model(src: str | Path, folder: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The decoder-free copy of `src` in `folder` (default: the user cache; made on first use) and the
    decoder parameters."""
    src = Path(src)
    if not src.is_file():
        raise ModelError(f"model file not found: {src}")
    params = decoder_params(src)  # also refuses files that are not PoseNet decoder models
    # Edge TPU builds keep their TPU op; only the decoder, which needs Coral's own library, goes.
    kind = "edgetpu" if is_edgetpu_model(src) else "cpu"
    dst = (folder or cache_dir()) / f"posenet-{kind}-{sha256_of(src)[:16]}.tflite"
    if not dst.is_file():
        strip_posenet_decoder(src, dst)
    return dst, params
