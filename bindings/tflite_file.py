"""Read and verify a .tflite flatbuffer without any runtime: structure, custom op names, metadata.

Done by hand (bounds-checked) so that an Edge TPU build is recognised, and a wrong, truncated or corrupt
file refused with one line, before any interpreter touches it; and so that edgepose's own metadata
(embedded by the converters) is readable where no flatbuffers package or TFLite schema is installed.

`verify_model` is the gate every .tflite passes before LiteRT, tflite-runtime or the Edge TPU delegate
sees it. A runtime checks the flatbuffer's structure at best, not what its numbers mean: LiteRT adds a
buffer's 64-bit `offset` and `size` in wrapping arithmetic (one corrupt field, and it reads memory
outside the file: a crash, or a silently wrong pose), and its kernels and XNNPACK trust indices, shapes,
types and quantization scales, some with a crash or an abort when they are wrong. The walk here follows
tflite's schema.fbs field by field, the way flatbuffers' Verifier does (every table, vtable, vector and
string inside the file, with Python's exact integers, so no sum wraps), plus the semantic checks the
runtime relies on: every index in range, constant data exactly the size its shape and type need and
never written to, operators reading only what holds data, sparse index arrays inside their dimensions,
and the type, input and scale rules whose breach crashed LiteRT 2.3 (tests/test_model_fuzz.py has one
file per rule; benchmarks/fuzz_models.py is the fuzz that found them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepose.bindings.tflite_ops import builtin_name
from edgepose.errors import ModelError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
SCHEMA_VERSION = 3
# Field indices in tflite's schema.fbs.
_MODEL_BUFFERS = 4  # table Model
_MODEL_METADATA = 6
_BUFFER_DATA = 0  # table Buffer
_BUFFER_OFFSET = 1
_BUFFER_SIZE = 2
_METADATA_NAME = 0  # table Metadata
_METADATA_BUFFER = 1

# TensorType, in enum order: name and bits per element (None: the contents say their size).
_TYPES = (
    ("FLOAT32", 32), ("FLOAT16", 16), ("INT32", 32), ("UINT8", 8), ("INT64", 64), ("STRING", None),
    ("BOOL", 8), ("INT16", 16), ("COMPLEX64", 64), ("INT8", 8), ("FLOAT64", 64), ("COMPLEX128", 128),
    ("UINT64", 64), ("RESOURCE", None), ("VARIANT", None), ("UINT32", 32), ("UINT16", 16), ("INT4", 4),
    ("BFLOAT16", 16), ("INT2", 2), ("UINT4", 4), ("FLOAT8_E4M3FN", 8), ("FLOAT8_E5M2", 8),
)  # fmt: skip
_TYPE_NAMES = tuple(name for name, _ in _TYPES)
_TYPE_BITS = tuple(bits for _, bits in _TYPES)
_DENSE, _SPARSE_CSR = 0, 1
_MAX_ELEMENTS = 1 << 62
_INT8, _UINT8, _INT16 = 9, 3, 7
_MIN_SCALE, _MAX_SCALE = 2.0**-126, float(np.finfo(np.float32).max)  # normal, finite float32
_ZERO_POINT_RANGE = {_INT8: (-128, 127), _UINT8: (0, 255), _INT16: (-32768, 32767), 17: (-8, 7), 20: (0, 15)}
_PLACEHOLDER_CODE = 127  # BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
_SPARSE_INDEX_TYPES = {1: np.dtype("<i4"), 2: np.dtype("<u2"), 3: np.dtype("<u1")}  # SparseIndexVector
# The operator options (union members) that hold more than scalars, by union type: slot -> what it holds.
# An int is a vector of that element size; "str" a string; "sg" a subgraph index; "sgs" a vector of them.
# From schema.fbs (BuiltinOptions, then BuiltinOptions2 for the StableHLO ops).
_OPTIONS: dict[int, dict[int, int | str]] = {
    3: {1: 4, 2: 4},  # ConcatEmbeddingsOptions
    8: {5: 1},  # FullyConnectedOptions.quant_spec
    16: {0: "sg"},  # CallOptions
    17: {0: 4},  # ReshapeOptions.new_shape
    30: {0: 4},  # SqueezeOptions.squeeze_dims
    92: {0: "sg", 1: "sg"},  # IfOptions
    93: {0: "sg", 1: "sg"},  # WhileOptions
    103: {0: "sg"},  # CallOnceOptions
    111: {0: "str", 1: "str"},  # VarHandleOptions
    115: {0: 4},  # BucketizeOptions
}
_OPTIONS_2: dict[int, dict[int, int | str]] = {
    2: {0: 8},
    3: {0: 8, 1: 8, 2: 8},
    4: {0: 8, 1: 8, 2: 8, 3: 8, 4: 1, 7: 8, 10: 8, 13: 8, 16: 4},
    5: {0: "str", 2: "str", 4: 4, 5: 1},
    6: {0: 8, 1: "sg"},
    7: {1: 8, 2: 8, 3: 8, 6: "sg"},
    9: {0: 8},
    10: {0: 8, 1: 8, 2: 8},
    12: {0: 8, 1: 8, 2: 8, 3: 8, 4: 4},
    13: {0: 8, 1: 8, 2: 8, 3: 8, 4: 8, 5: "sg"},
    14: {2: "sg"},
    15: {0: "sg", 1: "sg"},
    16: {0: 8, 1: 8, 2: 8, 4: 8},
    17: {0: 8},
    21: {0: "str", 1: "sg", 2: 1},
    23: {0: "sgs"},
}

_b = struct.Struct("<b").unpack_from
_HH = struct.Struct("<HH").unpack_from
_i = struct.Struct("<i").unpack_from
_I = struct.Struct("<I").unpack_from
_Q = struct.Struct("<Q").unpack_from


class _Reader:
    """Flatbuffer access where every read is bounds-checked: a bad offset raises struct.error."""

    def __init__(self, buf: bytes):
        self.buf = buf

    def _at(self, fmt: str, pos: int) -> int:
        # struct counts negative offsets from the end; a corrupt offset must fail instead.
        if pos < 0:
            raise struct.error("offset before start of file")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def u32(self, pos: int) -> int:
        return self._at("<I", pos)

    def u64(self, pos: int) -> int:
        return self._at("<Q", pos)

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table field, or None when the field is absent."""
        vtable = table - self._at("<i", table)
        vt_size = self._at("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self._at("<H", vtable + slot)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> list[int]:
        """Positions of the elements of a vector of tables/strings stored at field `pos`."""
        vec = self.deref(pos)
        n = self.u32(vec)
        if vec + 4 + 4 * n > len(self.buf):
            raise struct.error("vector past end of file")
        return [self.deref(vec + 4 + 4 * i) for i in range(n)]

    def string(self, pos: int) -> str:
        n = self.u32(pos)
        if pos + 4 + n > len(self.buf):
            raise struct.error("string past end of file")
        return self.buf[pos + 4 : pos + 4 + n].decode("utf-8", "replace")


# Verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TFLiteModelInfo:
    """What the verification learnt on the way: enough to pick a backend, and to say what runs where."""

    custom_ops: tuple[str, ...]
    subgraphs: int
    tensors: int
    operators: int
    buffers: int
    # The main subgraph's operators in execution order: builtin names (tflite_ops) or custom op names.
    main_operators: tuple[str, ...] = ()
    # Per Edge TPU custom op of the main subgraph, the size of its compiled code (its custom options).
    edgetpu_code_bytes: tuple[int, ...] = ()

    @property
    def is_edgetpu(self) -> bool:
        return EDGETPU_CUSTOM_OP in self.custom_ops


class _Corrupt(Exception):
    """One fault found by the walk; the message says where, for the user's one line."""


@dataclass(frozen=True)
class _Tensor:
    """What the cross checks need of a verified tensor."""

    shape: tuple[int, ...]
    dtype: int
    elements: int
    constant: bool  # holds data from the file
    variable: bool
    scales: tuple[float, ...] | None


def _check_same_shape(inputs: list[_Tensor | None], outputs: list[_Tensor]) -> None:
    # DENSIFY and DEQUANTIZE of constant weights are folded when the model loads (XNNPACK), writing the
    # input's elements into a buffer the output's shape sized.
    if inputs[0] is not None and inputs[0].shape != outputs[0].shape:
        raise _Corrupt(f"output shape {_show(outputs[0].shape)} is not the input's {_show(inputs[0].shape)}")


def _check_add(inputs: list[_Tensor | None], outputs: list[_Tensor]) -> None:
    # Quantized ADD/SUB: the kernel asserts that twice the larger input scale over 2**20 (2**15 for
    # int16) output scales is under 1.
    out = outputs[0]
    if len(inputs) < 2 or out.scales is None or out.dtype not in (_INT8, _UINT8, _INT16):
        return
    a, b = inputs[0], inputs[1]
    if a is None or b is None or a.scales is None or b.scales is None:
        return
    if 2 * max(a.scales[0], b.scales[0]) >= (1 << (15 if out.dtype == _INT16 else 20)) * out.scales[0]:
        raise _Corrupt(f"input scales {a.scales[0]:.3g} and {b.scales[0]:.3g} for output scale {out.scales[0]:.3g}")


def _conv_check(data: int, weights: int):
    def check(inputs: list[_Tensor | None], outputs: list[_Tensor]) -> None:
        # Quantized convolutions: XNNPACK refuses a requantization scale (input scale x weight scale /
        # output scale) of 256 or more only after taking the node, and then frees its subgraph twice.
        if len(inputs) <= max(data, weights):
            return
        x, w, out = inputs[data], inputs[weights], outputs[0]
        if x is None or w is None or x.scales is None or w.scales is None or out.scales is None:
            return
        worst = x.scales[0] * max(w.scales) / out.scales[0]
        if x.dtype in (_INT8, _UINT8) and worst >= 256:
            raise _Corrupt(f"requantization scale {worst:.3g} (input x weights / output), over 256")

    return check


_ANY = ("any",)
# Inputs an operator may leave out (-1): the optional ones; any for custom and recurrent operators.
_OPTIONAL_INPUTS: dict[int, tuple] = {
    3: (2,),  # CONV_2D: bias
    4: (2,),  # DEPTHWISE_CONV_2D: bias
    9: (2,),  # FULLY_CONNECTED: bias
    15: (2,),  # LSH_PROJECTION: weights
    27: (3,),  # SVDF: bias
    67: (3,),  # TRANSPOSE_CONV: bias
    131: (2,),  # CONV_3D: bias
    140: (3,),  # CONV_3D_TRANSPOSE: bias
    16: _ANY,  # LSTM
    24: _ANY,  # RNN
    32: _ANY,  # CUSTOM
    35: _ANY,  # UNIDIRECTIONAL_SEQUENCE_RNN
    44: _ANY,  # UNIDIRECTIONAL_SEQUENCE_LSTM
    46: _ANY,  # BIDIRECTIONAL_SEQUENCE_RNN
    52: _ANY,  # BIDIRECTIONAL_SEQUENCE_LSTM
}
# Operators whose data input and outputs share one type (TFLite's kernels and XNNPACK assume it; a
# changed operator code or index that breaks it crashed XNNPACK). Code -> the inputs that carry data: a
# tuple of slots, or _ANY for all of them (concatenation and elementwise operators).
_SAME_TYPE: dict[int, tuple] = {
    **dict.fromkeys((0, 2, 18, 41, 42, 55, 57, 83), _ANY),  # ADD CONCATENATION MUL SUB DIV MAXIMUM MINIMUM PACK
    **dict.fromkeys(
        # AVERAGE_POOL_2D CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE FLOOR L2_NORMALIZATION L2_POOL_2D LOGISTIC
        # MAX_POOL_2D RELU RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR SPACE_TO_DEPTH TANH PAD TRANSPOSE MEAN
        # SQUEEZE STRIDED_SLICE EXP PRELU NEG PADV2 SLICE SQRT RSQRT UNPACK SQUARE RESIZE_NEAREST_NEIGHBOR
        # LEAKY_RELU ABS CEIL ELU ROUND HARD_SWISH GELU
        (1, 3, 4, 5, 8, 11, 12, 14, 17, 19, 20, 21, 22, 23, 26, 28, 34, 39, 40, 43, 45, 47, 54, 59, 60, 65, 75)
        + (76, 88, 92, 97, 98, 101, 104, 111, 116, 117, 150),
        (0,),
    ),
    49: (1,),  # SPLIT: (axis, data)
    67: (2,),  # TRANSPOSE_CONV: (output shape, weights, data)
}
# Inputs an operator must have, where the kernel does not check and dereferences a missing one.
_MIN_INPUTS = {4: 3}  # DEPTHWISE_CONV_2D: the bias (LiteRT 2.3 crashes without it; -1 it refuses)
_OPERATOR_CHECKS = {
    0: _check_add,  # ADD
    41: _check_add,  # SUB
    3: _conv_check(0, 1),  # CONV_2D
    4: _conv_check(0, 1),  # DEPTHWISE_CONV_2D
    9: _conv_check(0, 1),  # FULLY_CONNECTED
    67: _conv_check(2, 1),  # TRANSPOSE_CONV
    6: _check_same_shape,  # DEQUANTIZE
    124: _check_same_shape,  # DENSIFY
}


class _Table:
    """A verified table: itself and its vtable inside the file; fields are checked as they are read."""

    __slots__ = ("buf", "pos", "fields", "inline")

    def __init__(self, buf: bytes, pos: int):
        n = len(buf)
        if pos % 4 or pos + 4 > n:
            raise _Corrupt("table outside the file" if pos + 4 > n else "misaligned table")
        vt = pos - _i(buf, pos)[0]
        if vt < 0 or vt % 2 or vt + 4 > n:
            raise _Corrupt("vtable outside the file")
        vt_size, inline = _HH(buf, vt)
        if vt_size < 4 or vt_size % 2 or vt + vt_size > n:
            raise _Corrupt(f"vtable of {vt_size} bytes")
        if inline < 4 or pos + inline > n:
            raise _Corrupt(f"table of {inline} bytes past the end of the file")
        self.buf, self.pos, self.inline = buf, pos, inline
        self.fields = struct.unpack_from(f"<{(vt_size - 4) // 2}H", buf, vt + 4)

    def at(self, slot: int, size: int) -> int | None:
        """Position of field `slot` (`size` bytes wide), or None when absent."""
        fields = self.fields
        off = fields[slot] if slot < len(fields) else 0
        if not off:
            return None
        if off < 4 or off + size > self.inline:
            raise _Corrupt(f"field {slot} outside its table")
        pos = self.pos + off
        if pos % size:
            raise _Corrupt(f"misaligned field {slot}")
        return pos

    def u8(self, slot: int) -> int:
        pos = self.at(slot, 1)
        return 0 if pos is None else self.buf[pos]

    def i8(self, slot: int) -> int:
        pos = self.at(slot, 1)
        return 0 if pos is None else _b(self.buf, pos)[0]

    def i32(self, slot: int) -> int:
        pos = self.at(slot, 4)
        return 0 if pos is None else _i(self.buf, pos)[0]

    def u32(self, slot: int) -> int:
        pos = self.at(slot, 4)
        return 0 if pos is None else _I(self.buf, pos)[0]

    def u64(self, slot: int) -> int:
        pos = self.at(slot, 8)
        return 0 if pos is None else _Q(self.buf, pos)[0]

    def target(self, slot: int) -> int | None:
        """Where the offset in field `slot` points, or None when absent."""
        pos = self.at(slot, 4)
        return None if pos is None else pos + _I(self.buf, pos)[0]

    def vector(self, slot: int, size: int, what: str) -> tuple[int, int]:
        """(start, length) of the vector of `size`-byte elements in field `slot`; (0, 0) when absent."""
        vec = self.target(slot)
        if vec is None:
            return 0, 0
        buf = self.buf
        if vec % 4 or vec + 4 > len(buf):
            raise _Corrupt(f"{what} outside the file" if vec + 4 > len(buf) else f"misaligned {what}")
        n = _I(buf, vec)[0]
        if vec + 4 + n * size > len(buf):
            raise _Corrupt(f"{what} of {n} elements runs past the end of the file")
        return vec + 4, n

    def ints(self, slot: int, what: str) -> tuple[int, ...]:
        """The vector of int32 in field `slot`; () when absent."""
        start, n = self.vector(slot, 4, what)
        return struct.unpack_from(f"<{n}i", self.buf, start) if n else ()

    def array(self, slot: int, what: str, dtype: np.dtype) -> np.ndarray:
        """A long vector of numbers in field `slot`, as a read-only view; empty when absent."""
        start, n = self.vector(slot, dtype.itemsize, what)
        return np.frombuffer(self.buf, dtype, n, start) if n else np.zeros(0, dtype)

    def tables(self, slot: int, what: str) -> list[int]:
        """Positions of the tables a vector of offsets in field `slot` points to."""
        start, n = self.vector(slot, 4, what)
        if not n:
            return []
        offsets = struct.unpack_from(f"<{n}I", self.buf, start)
        return [start + 4 * k + off for k, off in enumerate(offsets)]

    def table(self, slot: int) -> _Table | None:
        pos = self.target(slot)
        return None if pos is None else _Table(self.buf, pos)

    def string(self, slot: int, what: str) -> str | None:
        start, n = self.vector(slot, 1, what)
        if start == 0:
            return None
        # Interpreters read names as C strings: the terminating zero must be there.
        if start + n >= len(self.buf) or self.buf[start + n] != 0:
            raise _Corrupt(f"{what} without its terminating zero")
        try:  # flatbuffers strings are UTF-8 (the runtimes' Python wrappers decode names strictly)
            return bytes(self.buf[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise _Corrupt(f"{what} is not UTF-8") from None


def _check_indices(indices: tuple[int, ...], limit: int, what: str, optional: bool = False) -> None:
    """Every tensor index in range (-1, "no tensor", allowed where optional)."""
    low = -1 if optional else 0
    if indices and (min(indices) < low or max(indices) >= limit):
        bad = next(k for k in indices if not low <= k < limit)
        raise _Corrupt(f"{what} refers to tensor {bad}, not one of the {limit}")


def _count(shape: tuple[int, ...]) -> int:
    """Elements in `shape` (dimensions known non-negative); no tensor holds 2**62 or more."""
    n = 1
    for d in shape:
        n *= d
        if n >= _MAX_ELEMENTS:
            raise _Corrupt(f"shape {_show(shape)} is too large")
    return n


def _show(shape: tuple[int, ...]) -> str:
    return str(list(shape[:8]))[:-1] + ", ...]" if len(shape) > 8 else str(list(shape))


class _Verifier:
    """One walk over a model. Faults raise _Corrupt; each level adds where it was (subgraph, tensor, ...)."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.size = len(buf)
        self.ncodes = 0
        self.builtin: list[int] = []
        self.code_names: list[str] = []  # each operator code's builtin or custom name
        self.nsubgraphs = 0
        self.main_operators: list[str] = []
        self.edgetpu_code_bytes: list[int] = []
        self._recording = False  # walking the main subgraph

    def model(self) -> TFLiteModelInfo:
        buf = self.buf
        root = _Table(buf, _I(buf, 0)[0])
        version = root.u32(0)
        if version != SCHEMA_VERSION:
            raise _Corrupt(f"schema version {version}, not {SCHEMA_VERSION}")
        buffer_bytes = self._buffers(root)
        custom = self._operator_codes(root)
        external = self._external_buffers(root)
        subgraphs = root.tables(2, "subgraph list")
        if not subgraphs:
            raise _Corrupt("no subgraph")
        self.nsubgraphs = len(subgraphs)
        tensor_counts, operators = [], 0
        for k, pos in enumerate(subgraphs):
            self._recording = k == 0
            try:
                nt, nops = self._subgraph(_Table(buf, pos), buffer_bytes, external)
            except _Corrupt as e:
                raise _Corrupt(f"subgraph {k}: {e}") from None
            tensor_counts.append(nt)
            operators += nops
        root.string(3, "description")
        nbuf = len(buffer_bytes)
        for k in root.ints(5, "metadata buffer list"):
            if not 0 <= k < nbuf:
                raise _Corrupt(f"metadata buffer {k}, not one of the {nbuf}")
        for k, pos in enumerate(root.tables(6, "metadata list")):
            try:
                entry = _Table(buf, pos)
                entry.string(0, "name")
                index = entry.u32(1)
                if index >= nbuf:
                    raise _Corrupt(f"buffer {index}, not one of the {nbuf}")
            except _Corrupt as e:
                raise _Corrupt(f"metadata {k}: {e}") from None
        for k, pos in enumerate(root.tables(7, "signature list")):
            try:
                self._signature(_Table(buf, pos), tensor_counts)
            except _Corrupt as e:
                raise _Corrupt(f"signature {k}: {e}") from None
        return TFLiteModelInfo(
            tuple(custom),
            len(subgraphs),
            sum(tensor_counts),
            operators,
            nbuf,
            tuple(self.main_operators),
            tuple(self.edgetpu_code_bytes),
        )

    def _buffers(self, root: _Table) -> list[int]:
        """The byte size of each buffer's constant data (0: none)."""
        sizes = []
        n = self.size
        for k, pos in enumerate(root.tables(4, "buffer list")):
            try:
                b = _Table(self.buf, pos)
                _, length = b.vector(0, 1, "data")
                offset, size = b.u64(1), b.u64(2)
            except _Corrupt as e:
                raise _Corrupt(f"buffer {k}: {e}") from None
            # Files over 2 GB keep data after the flatbuffer: `offset` from the file start (0 and 1 mean
            # none). Exact integers: an offset near 2**64 plus a size must not wrap back into the file.
            if offset > n or size > n or (offset > 1 and offset + size > n):
                raise _Corrupt(f"buffer {k}: data at offset {offset}, {size} bytes, outside the file ({n} bytes)")
            sizes.append(length if length else size if offset > 1 else 0)
        return sizes

    def _operator_codes(self, root: _Table) -> list[str]:
        """The custom op names, in operator code order; each code's builtin operator in self.builtin."""
        names = []
        for k, pos in enumerate(root.tables(1, "operator code list")):
            try:
                code = _Table(self.buf, pos)
                deprecated, builtin = code.i8(0), code.i32(3)
                # Writers since schema 3a fill both (the old int8 field saturates at 127); older files have
                # only the old one. A runtime takes the larger: the two must agree, or one byte changes the op.
                # (A writer that fills only the new field leaves the old one 0: also accepted, as by LiteRT.)
                agree = deprecated in (0, min(builtin, _PLACEHOLDER_CODE))
                if deprecated < 0 or builtin < 0 or (builtin and not agree):
                    raise _Corrupt(f"builtin code {builtin} with deprecated code {deprecated}")
                name = code.string(1, "custom code")
                code.i32(2)
            except _Corrupt as e:
                raise _Corrupt(f"operator code {k}: {e}") from None
            self.builtin.append(max(builtin, deprecated))
            self.code_names.append(name if name is not None else builtin_name(max(builtin, deprecated)))
            if name is not None:
                names.append(name)
        self.ncodes = len(self.builtin)
        return names

    def _external_buffers(self, root: _Table) -> set[int]:
        """The ids of the external buffers (weights in other files, which only their loader can check)."""
        groups = root.tables(8, "external buffer group list")
        for k, pos in enumerate(groups):
            _Table(self.buf, pos).string(0, f"external buffer group {k} name")
        ids = set()
        for k, pos in enumerate(root.tables(9, "external buffer list")):
            ext = _Table(self.buf, pos)
            group, offset, length = ext.u32(1), ext.u64(2), ext.u64(3)
            ext.string(4, "packing")
            if group >= len(groups) or offset >= 1 << 63 or length >= 1 << 63:
                raise _Corrupt(f"external buffer {k}: group {group}, offset {offset}, {length} bytes")
            ids.add(ext.u32(0))
        return ids

    def _subgraph(self, g: _Table, buffer_bytes: list[int], external: set[int]) -> tuple[int, int]:
        buf = self.buf
        positions = g.tables(0, "tensor list")
        nt = len(positions)
        inputs, outputs = g.ints(1, "input list"), g.ints(2, "output list")
        _check_indices(inputs, nt, "an input")
        _check_indices(outputs, nt, "an output")
        g.string(4, "name")
        g.i32(5)
        tensors = []
        for k, pos in enumerate(positions):
            try:
                tensors.append(self._tensor(_Table(buf, pos), nt, buffer_bytes, external))
            except _Corrupt as e:
                raise _Corrupt(f"tensor {k}: {e}") from None
        # What an operator may read: graph inputs, constants, variables, empty tensors, earlier outputs.
        ready = set(inputs)
        ready.update(k for k, t in enumerate(tensors) if t.constant or t.variable or t.elements == 0)
        for k in inputs:
            if tensors[k].constant:
                raise _Corrupt(f"input tensor {k} holds constant data (the file is mapped read-only)")
        ops = g.tables(3, "operator list")
        for k, pos in enumerate(ops):
            try:
                self._operator(_Table(buf, pos), tensors, ready)
            except _Corrupt as e:
                raise _Corrupt(f"operator {k}: {e}") from None
        for k in outputs:  # an output nothing writes has no data to read back (a ValueError at run)
            if k not in ready:
                raise _Corrupt(f"output tensor {k} is never written")
        return nt, len(ops)

    def _operator(self, op: _Table, tensors: list[_Tensor], ready: set[int]) -> None:
        """Checks one operator against the tensors it reads and writes (in execution order)."""
        nt = len(tensors)
        index = op.u32(0)
        if index >= self.ncodes:
            raise _Corrupt(f"operator code {index}, not one of the {self.ncodes}")
        code = self.builtin[index]
        inputs, outputs = op.ints(1, "input list"), op.ints(2, "output list")
        optional = _OPTIONAL_INPUTS.get(code, ())
        _check_indices(inputs, nt, "an input", optional=bool(optional))
        for slot, k in enumerate(inputs):
            if k < 0 and optional is not _ANY and slot not in optional:
                raise _Corrupt(f"required input {slot} is missing (-1)")
            if k >= 0 and k not in ready:
                raise _Corrupt(f"reads tensor {k}, which holds no data and no earlier operator writes")
        _check_indices(outputs, nt, "an output")
        for k in outputs:
            if tensors[k].constant:
                raise _Corrupt(f"writes tensor {k}, which holds constant data (the file is mapped read-only)")
        ready.update(outputs)
        _check_indices(op.ints(8, "intermediate list"), nt, "an intermediate", optional=True)
        op.vector(7, 1, "mutating variable inputs")
        _, custom_bytes = op.vector(5, 1, "custom options")
        if self._recording:
            self.main_operators.append(self.code_names[index])
            if self.code_names[index] == EDGETPU_CUSTOM_OP:
                self.edgetpu_code_bytes.append(custom_bytes)
        op.u8(6)
        offset, size = op.u64(9), op.u64(10)
        if size and offset + size > self.size:
            raise _Corrupt(f"custom options at offset {offset}, {size} bytes, outside the file ({self.size} bytes)")
        for type_slot, slot, known in ((3, 4, _OPTIONS), (11, 12, _OPTIONS_2)):
            options = op.table(slot)
            if options is not None:
                self._options(options, known.get(op.u8(type_slot), {}))
        op.i32(13)
        if len(inputs) < _MIN_INPUTS.get(code, 0):
            raise _Corrupt(f"{len(inputs)} inputs, {_MIN_INPUTS[code]} needed")
        data = _SAME_TYPE.get(code)
        if data is not None and outputs:
            slots = range(len(inputs)) if data is _ANY else data
            types = {tensors[inputs[j]].dtype for j in slots if j < len(inputs) and inputs[j] >= 0}
            types.update(tensors[k].dtype for k in outputs)
            if len(types) > 1:
                names = " and ".join(_TYPE_NAMES[t] for t in sorted(types))
                raise _Corrupt(f"{names} tensors mixed in an operator that keeps its type")
        check = _OPERATOR_CHECKS.get(code)
        if check is not None and inputs and outputs:
            check([tensors[k] if k >= 0 else None for k in inputs], [tensors[k] for k in outputs])

    def _options(self, options: _Table, fields: dict[int, int | str]) -> None:
        for slot, kind in fields.items():
            if kind == "str":
                options.string(slot, "option string")
                continue
            if kind == "sg":
                subgraphs: tuple[int, ...] = (options.i32(slot),)
            elif kind == "sgs":
                subgraphs = options.ints(slot, "subgraph list")
            else:
                options.vector(slot, int(kind), "option vector")
                continue
            for index in subgraphs:
                if not 0 <= index < self.nsubgraphs:
                    raise _Corrupt(f"options name subgraph {index}, not one of the {self.nsubgraphs}")

    def _tensor(self, t: _Table, nt: int, buffer_bytes: list[int], external: set[int]) -> _Tensor:
        shape = t.ints(0, "shape")
        if shape and min(shape) < 0:
            raise _Corrupt(f"shape {_show(shape)}")
        dtype = t.u8(1)
        if dtype >= len(_TYPE_BITS):
            raise _Corrupt(f"unknown type {dtype}")
        index = t.u32(2)
        if index and index >= len(buffer_bytes):
            raise _Corrupt(f"buffer {index}, not one of the {len(buffer_bytes)}")
        t.string(3, "name")
        is_variable = t.u8(5)
        t.u8(8)
        signature = t.ints(7, "shape signature")
        if signature and (len(signature) != len(shape) or any(s != d and s != -1 for s, d in zip(signature, shape))):
            raise _Corrupt(f"shape signature {_show(signature)} does not match shape {_show(shape)}")
        for pos in t.tables(9, "variant list"):
            variant = _Table(self.buf, pos)
            variant.ints(0, "variant shape")
            if variant.u8(1) >= len(_TYPE_BITS):
                raise _Corrupt("unknown variant type")
        ext = t.u32(10)
        if ext and ext not in external:
            raise _Corrupt(f"external buffer {ext} does not exist")
        quantization = t.table(4)
        constant = bool(index and buffer_bytes[index])
        scales = self._quantization(quantization, shape, dtype, nt, constant) if quantization is not None else None
        sparsity = t.table(6)
        elements = _count(shape)
        stored = elements if sparsity is None else self._sparsity(sparsity, shape)
        nbytes = buffer_bytes[index] if index else 0
        bits = _TYPE_BITS[dtype]
        # Constant data (read-only: the interpreters map the file) is exactly what the shape holds; strings,
        # resources and variants say their own size. 4- and 2-bit types: packed, or a byte per element.
        if nbytes and bits is not None and nbytes != (stored * bits + 7) // 8 and not (bits < 8 and nbytes == stored):
            expected = (stored * bits + 7) // 8
            raise _Corrupt(f"{nbytes} bytes of data for shape {_show(shape)} of type {dtype} ({expected} expected)")
        return _Tensor(shape, dtype, elements, nbytes > 0, bool(is_variable), scales)

    def _quantization(
        self, q: _Table, shape: tuple[int, ...], dtype: int, nt: int, constant: bool
    ) -> tuple[float, ...] | None:
        """Checks a tensor's quantization; returns its scales (None when it has none)."""
        q.vector(0, 4, "min")
        q.vector(1, 4, "max")
        start, scales = q.vector(2, 4, "scale")
        zp_start, zero_points = q.vector(3, 8, "zero point")
        details_type = q.u8(4)
        details = q.table(5)
        if details is not None:
            if details_type == 1:  # CustomQuantization
                details.vector(0, 1, "custom quantization")
            elif details_type in (2, 3):  # Blockwise, MultiAxis: scales and zero points are tensors
                _check_indices((details.i32(0),), nt, "block scales")
                _check_indices((details.i32(1),), nt, "block zero points", optional=True)
                details.i32(2)
                details.ints(3, "block shape")
        dim = q.i32(6)
        if not scales:
            return None
        if zero_points != scales:
            raise _Corrupt(f"{scales} scales but {zero_points} zero points")
        if dim < 0 or (shape and dim >= len(shape)):
            raise _Corrupt(f"quantized dimension {dim} of shape {_show(shape)}")
        if scales > 1 and (not shape or shape[dim] != scales):
            raise _Corrupt(f"{scales} scales for dimension {dim} of shape {_show(shape)}")
        # The kernels turn scales into fixed-point multipliers and abort (not fail) on a zero, negative,
        # denormal, infinite or NaN one; zero points outside the type's range wrap in their arithmetic.
        values = struct.unpack_from(f"<{scales}f", self.buf, start)
        total = sum(values)  # NaN if any is NaN (min and max alone may step over one)
        # Constant weights may carry scale 0: quantizers write it for an all-zero channel (pruned filters),
        # and the kernels take it. Activations may not.
        lowest = 0.0 if constant else _MIN_SCALE
        if not (min(values) >= lowest and max(values) <= _MAX_SCALE and total == total):
            bad = next(s for s in values if not lowest <= s <= _MAX_SCALE)
            raise _Corrupt(f"quantization scale {bad}")
        limits = _ZERO_POINT_RANGE.get(dtype)
        if limits is not None:
            points = struct.unpack_from(f"<{zero_points}q", self.buf, zp_start)
            if not limits[0] <= min(points) <= max(points) <= limits[1]:
                raise _Corrupt(f"zero point outside {limits[0]}..{limits[1]}")
        return values

    def _sparsity(self, s: _Table, shape: tuple[int, ...]) -> int:
        """Checks a sparse tensor's index arrays against its shape; returns how many values it stores.

        The levels are walked as a densifier walks them (tflite's FormatConverter): a dense level must
        span its dimension exactly, a CSR level's segments must be ordered and its indices inside the
        dimension, or the densified weights are written outside their tensor.
        """
        rank = len(shape)
        order = s.ints(0, "traversal order")
        block_map = s.ints(1, "block map")
        levels = [_Table(self.buf, pos) for pos in s.tables(2, "dimension metadata")]
        if sorted(order) != list(range(rank + len(block_map))) or len(levels) != len(order):
            raise _Corrupt(f"traversal order {_show(order)} for shape {_show(shape)}")
        if list(block_map) != sorted(set(block_map)) or any(not 0 <= d < rank for d in block_map):
            raise _Corrupt(f"block map {_show(block_map)} for shape {_show(shape)}")
        # Each level's extent: a dimension of the shape (divided by its block), or a block's size.
        extent = list(shape) + [0] * len(block_map)
        for k, d in enumerate(block_map):
            block = levels[order.index(rank + k)].i32(1)
            if block <= 0 or shape[d] % block:
                raise _Corrupt(f"block of {block} in a dimension of {shape[d]}")
            extent[d] //= block
            extent[rank + k] = block
        stored = 1
        for level, d in zip(levels, order):
            size, kind = extent[d], level.u8(0)
            if kind == _DENSE:
                if level.i32(1) != size:
                    raise _Corrupt(f"dense size {level.i32(1)} for a dimension of {size}")
                stored *= size
                continue
            seg_type, seg_table = level.u8(2), level.table(3)
            idx_type, idx_table = level.u8(4), level.table(5)
            if kind != _SPARSE_CSR or not (seg_table and idx_table) or seg_type not in _SPARSE_INDEX_TYPES:
                raise _Corrupt(f"dimension format {kind} without its index arrays")
            if idx_type not in _SPARSE_INDEX_TYPES:
                raise _Corrupt(f"array indices of type {idx_type}")
            segments = seg_table.array(0, "array segments", _SPARSE_INDEX_TYPES[seg_type]).astype(np.int64)
            indices = idx_table.array(0, "array indices", _SPARSE_INDEX_TYPES[idx_type])
            if len(segments) != stored + 1 or segments[0] != 0:
                raise _Corrupt(f"{len(segments)} array segments for {stored} rows")
            if np.any(np.diff(segments) < 0) or segments[-1] != len(indices):
                raise _Corrupt("array segments out of order or past the indices")
            if len(indices) and not 0 <= int(indices.min()) <= int(indices.max()) < size:
                raise _Corrupt(f"array index past a dimension of {size}")
            stored = len(indices)
        return stored

    def _signature(self, sig: _Table, tensor_counts: list[int]) -> None:
        sig.string(2, "key")
        index = sig.u32(4)
        if index >= len(tensor_counts):
            raise _Corrupt(f"subgraph {index}, not one of the {len(tensor_counts)}")
        for slot in (0, 1):
            for pos in sig.tables(slot, "tensor map"):
                entry = _Table(self.buf, pos)
                entry.string(0, "tensor name")
                _check_indices((entry.u32(1),), tensor_counts[index], "a signature entry")


def verify_tflite(buf: bytes) -> TFLiteModelInfo:
    """Walk a whole TFLite flatbuffer; raise ModelError (one line, without the file name) at the first fault."""
    if not is_tflite_buffer(buf):
        raise ModelError("not a TFLite model (no TFL3 flatbuffer identifier)")
    try:
        return _Verifier(buf).model()
    except _Corrupt as e:
        raise ModelError(f"truncated or corrupt TFLite model ({e})") from None
    except (struct.error, IndexError) as e:  # a read the walk did not guard: still one clear line
        raise ModelError(f"truncated or corrupt TFLite model ({e})") from None


def verify_model(path: str | Path) -> TFLiteModelInfo:
    """Read `path` once and verify it as a TFLite model. Raises ModelError naming the file and the fault."""
    path = Path(path)
    buf = _read_tflite(path)
    try:
        return verify_tflite(buf)
    except ModelError as e:
        raise ModelError(f"{path} is a {e}") from None


def _read_tflite(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            # The identifier first: a large file that is not a model is refused without reading it all.
            if not is_tflite_buffer(f.read(8)):
                raise ModelError(f"{path} is not a TFLite model (no TFL3 flatbuffer identifier)")
            f.seek(0)
            return f.read()
    except OSError as e:
        raise ModelError(f"cannot read model file {path}: {e.strerror or e}") from e


def is_tflite_buffer(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[4:8] == b"TFL3"


def custom_ops(path: str | Path) -> list[str]:
    """Names of the custom ops a .tflite file uses. Raises ModelError if it is not a sound TFLite model."""
    return list(verify_model(path).custom_ops)


def is_edgetpu_model(path: str | Path) -> bool:
    return verify_model(path).is_edgetpu


def metadata_entry(buf: bytes, name: str) -> bytes | None:
    """The bytes of the Model.metadata entry called `name` in a TFLite flatbuffer, or None.

    The last entry of that name wins (a re-embedding tool may have appended one). Raises ModelError
    when `buf` is not a readable TFLite flatbuffer.
    """
    span = metadata_entry_span(buf, name)
    return None if span is None else bytes(buf[span[0] : span[1]])


def metadata_entry_span(buf: bytes, name: str) -> tuple[int, int] | None:
    """(start, end) in `buf` of the bytes of the Model.metadata entry called `name`, or None (as
    `metadata_entry`: the last entry of that name wins; ModelError when `buf` is not readable)."""
    if not is_tflite_buffer(buf):
        raise ModelError("not a TFLite model (no TFL3 flatbuffer identifier)")
    r = _Reader(buf)
    try:
        root = r.deref(0)
        entries = r.field(root, _MODEL_METADATA)
        index = None
        for entry in r.vector(entries) if entries is not None else []:
            name_at = r.field(entry, _METADATA_NAME)
            buffer_at = r.field(entry, _METADATA_BUFFER)
            if name_at is not None and buffer_at is not None and r.string(r.deref(name_at)) == name:
                index = r.u32(buffer_at)
        if index is None:
            return None
        buffers_at = r.field(root, _MODEL_BUFFERS)
        buffers = r.vector(buffers_at) if buffers_at is not None else []
        return _buffer_span(r, buffers[index]) if index < len(buffers) else None
    except (struct.error, IndexError) as e:
        raise ModelError("truncated or corrupt TFLite model") from e


def _buffer_span(r: _Reader, buffer: int) -> tuple[int, int] | None:
    data = r.field(buffer, _BUFFER_DATA)
    if data is not None:
        vec = r.deref(data)
        n = r.u32(vec)
        if vec + 4 + n > len(r.buf):
            raise struct.error("byte vector past end of file")
        if n:
            return vec + 4, vec + 4 + n
    # Models over 2 GB keep buffers after the flatbuffer: `offset` from the file start (1 is a sentinel).
    offset_at, size_at = r.field(buffer, _BUFFER_OFFSET), r.field(buffer, _BUFFER_SIZE)
    offset = r.u64(offset_at) if offset_at is not None else 0
    size = r.u64(size_at) if size_at is not None else 0
    if offset > 1 and size > 0 and offset + size <= len(r.buf):
        return offset, offset + size
    return None
