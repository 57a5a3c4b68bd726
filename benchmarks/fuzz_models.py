"""Fuzz the model loader: seeded mutations of the real .tflite files must never crash the process.

Mutations, drawn from one seed: bit flips anywhere, bit flips outside the weights (in the flatbuffer's
tables, vectors and strings), truncations, flatbuffer fields set to edge values (0, 1, -1, 2**31-1,
2**32-1, 2**63, 2**64-2**30, the file length, ...; the fields are found by walking the file: offsets,
vtables, vector and string lengths, tensor / buffer / operator-code indices, shape dimensions, types,
sparse index arrays), and a buffer's data moved out of the flatbuffer to a 64-bit offset and size
(valid, past the end, or wrapping past 2**64).

Each mutant goes through the public path an app takes: `edgepose.bindings.open_backend` (the PoseNet
decoder model first through its decoder cut, as the estimator does) and one `run` on zeros of the
declared input shapes. Mutants run in child processes, many per child; a child that dies (a signal, an
abort) or hangs is replaced by a new one that carries on after the mutant it died on, so every crash
is named. Pass: no child dies or hangs, and each mutant either loads and runs or raises an
EdgeposeError (ModelError, BackendError), nothing else. A mutant that loads and gives other numbers is
fine here (flipped weights are still weights).

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/fuzz_models.py --count 5000 --seed 1 --label ci-x86_64-2core

tests/test_model_fuzz.py runs this script (a fixed seed, a few hundred mutants). The exit status is 1
when a mutant crashed, hung or raised anything but an EdgeposeError.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODEL_DIR = Path(os.environ.get("EDGEPOSE_MODEL_DIR", HERE.parents[1] / "shared" / "models"))
# The real files, with their share of the mutants.
MODELS = {
    "movenet_singlepose_lightning_int8.tflite": 0.3,
    "blazepose_detector.tflite": 0.25,
    "blazepose_landmark_full.tflite": 0.2,
    "posenet_mobilenet_v1_075_481_641_quant_decoder.tflite": 0.25,
}
KINDS = {"bit_flip": 0.15, "metadata_bit_flip": 0.2, "truncate": 0.1, "field_edge": 0.45, "buffer_range": 0.1}
# Seconds a child may spend on one mutant before it counts as hung.
MUTANT_TIMEOUT_S = 120

# tflite's schema.fbs, as far as the mutator walks it: table -> slot -> (field name, how it is stored, what).
# "u8"/"i8"/"i32"/"u32"/"u64": a scalar of that kind (what: the field kind a mutation reports); "str": a
# string; "vec": a vector of (element bytes, element kind or None); "table"/"tables": one table / a
# vector of tables of the named type (None: walked as a bare table); "sparse": a SparseIndexVector
# union whose type is in the named slot.
SCHEMA: dict[str, dict[int, tuple]] = {
    "Model": {
        0: ("version", "u32", "version"),
        1: ("operator_codes", "tables", "OperatorCode"),
        2: ("subgraphs", "tables", "SubGraph"),
        3: ("description", "str", None),
        4: ("buffers", "tables", "Buffer"),
        5: ("metadata_buffer", "vec", (4, "buffer_index")),
        6: ("metadata", "tables", "Metadata"),
        7: ("signature_defs", "tables", "SignatureDef"),
    },
    "OperatorCode": {
        0: ("deprecated_builtin_code", "i8", "opcode"),
        1: ("custom_code", "str", None),
        2: ("version", "i32", "opcode"),
        3: ("builtin_code", "i32", "opcode"),
    },
    "SubGraph": {
        0: ("tensors", "tables", "Tensor"),
        1: ("inputs", "vec", (4, "tensor_index")),
        2: ("outputs", "vec", (4, "tensor_index")),
        3: ("operators", "tables", "Operator"),
        4: ("name", "str", None),
    },
    "Tensor": {
        0: ("shape", "vec", (4, "dim")),
        1: ("type", "u8", "type"),
        2: ("buffer", "u32", "buffer_index"),
        3: ("name", "str", None),
        4: ("quantization", "table", "QuantizationParameters"),
        6: ("sparsity", "table", "SparsityParameters"),
        7: ("shape_signature", "vec", (4, "dim")),
    },
    "QuantizationParameters": {
        0: ("min", "vec", (4, None)),
        1: ("max", "vec", (4, None)),
        2: ("scale", "vec", (4, "scale")),
        3: ("zero_point", "vec", (8, "zero_point")),
        6: ("quantized_dimension", "i32", "quantized_dimension"),
    },
    "SparsityParameters": {
        0: ("traversal_order", "vec", (4, "sparse")),
        1: ("block_map", "vec", (4, "sparse")),
        2: ("dim_metadata", "tables", "DimensionMetadata"),
    },
    "DimensionMetadata": {
        0: ("format", "u8", "enum"),
        1: ("dense_size", "i32", "dim"),
        2: ("array_segments_type", "u8", "enum"),
        3: ("array_segments", "sparse", 2),
        4: ("array_indices_type", "u8", "enum"),
        5: ("array_indices", "sparse", 4),
    },
    "Operator": {
        0: ("opcode_index", "u32", "opcode_index"),
        1: ("inputs", "vec", (4, "tensor_index")),
        2: ("outputs", "vec", (4, "tensor_index")),
        3: ("builtin_options_type", "u8", "enum"),
        4: ("builtin_options", "table", None),
        5: ("custom_options", "vec", (1, None)),
        8: ("intermediates", "vec", (4, "tensor_index")),
    },
    "Buffer": {0: ("data", "vec", (1, None)), 1: ("offset", "u64", "buffer_offset"), 2: ("size", "u64", "buffer_size")},
    "Metadata": {0: ("name", "str", None), 1: ("buffer", "u32", "buffer_index")},
    "SignatureDef": {
        0: ("inputs", "tables", "TensorMap"),
        1: ("outputs", "tables", "TensorMap"),
        2: ("signature_key", "str", None),
        4: ("subgraph_index", "u32", "subgraph_index"),
    },
    "TensorMap": {0: ("name", "str", None), 1: ("tensor_index", "u32", "tensor_index")},
}
_WIDTH = {"u8": 1, "i8": 1, "i32": 4, "u32": 4, "u64": 8}
_SPARSE_ELEMENT = {1: 4, 2: 2, 3: 1}  # SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector


@dataclass(frozen=True)
class Field:
    """A number in the file a mutation may set: where, how wide, what it is."""

    pos: int
    width: int
    kind: str
    where: str


class ModelLayout:
    """The fields of a pristine model file, found by walking its flatbuffer by the schema above."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.fields: list[Field] = []
        self.weights: list[tuple[int, int]] = []  # [start, end) of each buffer's data
        self.buffers: list[tuple[int, int, int]] = []  # (vector slot pointing at the Buffer, data start, length)
        self._tables: set[int] = set()
        self._vtables: set[int] = set()
        root = self._u32(0)
        self.fields.append(Field(0, 4, "uoffset", "root"))
        self._table(root, "Model", "model")
        self.by_kind: dict[str, list[Field]] = defaultdict(list)
        for f in self.fields:
            self.by_kind[f.kind].append(f)

    def _u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.buf, pos)[0]

    def _table(self, pos: int, name: str | None, where: str) -> None:
        if pos in self._tables:
            return
        self._tables.add(pos)
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.fields.append(Field(pos, 4, "soffset", f"{where} (vtable offset)"))
        vt_size = struct.unpack_from("<H", self.buf, vt)[0]
        if vt not in self._vtables:
            self._vtables.add(vt)
            self.fields.append(Field(vt, 2, "vtable", f"{where} (vtable size)"))
            self.fields.append(Field(vt + 2, 2, "vtable", f"{where} (table size)"))
            for slot in range((vt_size - 4) // 2):
                self.fields.append(Field(vt + 4 + 2 * slot, 2, "vtable", f"{where} (field {slot} offset)"))
        for slot, (field, how, what) in SCHEMA.get(name or "", {}).items():
            off = struct.unpack_from("<H", self.buf, vt + 4 + 2 * slot)[0] if 4 + 2 * slot < vt_size else 0
            if off:
                self._field(pos, pos + off, how, what, f"{where}.{field}")

    def _field(self, table: int, at: int, how: str, what, where: str) -> None:
        if how in _WIDTH:
            self.fields.append(Field(at, _WIDTH[how], what, where))
            return
        self.fields.append(Field(at, 4, "uoffset", where))
        target = at + self._u32(at)
        if how == "table":
            self._table(target, what, where)
            return
        if how == "sparse":  # a union: Int32Vector / Uint16Vector / Uint8Vector, its type in another slot
            type_at = self._field_at(table, what)
            element = _SPARSE_ELEMENT.get(self.buf[type_at] if type_at is not None else 0, 1)
            self._table(target, None, where)
            values = self._field_at(target, 0)
            if values is not None:
                self._field(target, values, "vec", (element, "sparse"), where)
            return
        n = self._u32(target)
        self.fields.append(Field(target, 4, "length", where))
        if how == "tables":
            for k in range(n):
                slot = target + 4 + 4 * k
                self.fields.append(Field(slot, 4, "uoffset", f"{where}[{k}]"))
                element = slot + self._u32(slot)
                if what == "Buffer":
                    self._buffer(slot, element)
                self._table(element, what, f"{where}[{k}]")
        elif how == "vec":
            size, kind = what
            if where.endswith(".data"):
                self.weights.append((target + 4, target + 4 + n))
            elif kind is not None:
                self.fields += [Field(target + 4 + size * k, size, kind, f"{where}[{k}]") for k in range(n)]

    def _field_at(self, table: int, slot: int) -> int | None:
        vt = table - struct.unpack_from("<i", self.buf, table)[0]
        vt_size = struct.unpack_from("<H", self.buf, vt)[0]
        off = struct.unpack_from("<H", self.buf, vt + 4 + 2 * slot)[0] if 4 + 2 * slot < vt_size else 0
        return table + off if off else None

    def _buffer(self, slot: int, table: int) -> None:
        data = self._field_at(table, 0)
        if data is not None:
            vec = data + self._u32(data)
            self.buffers.append((slot, vec + 4, self._u32(vec)))

    def outside_weights(self) -> list[tuple[int, int]]:
        """[start, end) ranges of the file that hold no weights: the flatbuffer's own structure."""
        ranges, pos = [], 0
        for start, end in sorted(self.weights):
            if start > pos:
                ranges.append((pos, start))
            pos = max(pos, end)
        if pos < len(self.buf):
            ranges.append((pos, len(self.buf)))
        return ranges


# Mutations -------------------------------------------------------------------------------------------


def edge_values(width: int, orig: int, pos: int, size: int) -> list[int]:
    """Values worth trying in a `width`-byte field at `pos` of a `size`-byte file (as unsigned)."""
    bits = 8 * width
    mask = (1 << bits) - 1
    values = [0, 1, 2, 3, 4, 8, orig + 1, orig - 1, orig * 2, orig ^ (1 << (bits - 1)), mask, mask - 1]
    values += [mask >> 1, (mask >> 1) + 1, size, size - 1, size + 1, size - pos, size - pos - 4, size - pos + 4]
    if width >= 4:
        values += [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE, 0xC000_0000, 1 << 16, 1 << 24]
    if width == 8:
        values += [1 << 63, (1 << 63) - 1, (1 << 64) - (1 << 30), (1 << 64) - (1 << 12), (1 << 64) - size]
    return sorted({v & mask for v in values})


def float_edge_values(orig: float) -> list[int]:
    """Values worth trying in a float32 field (a quantization scale), as their bit patterns."""
    values = [0.0, -0.0, -orig, orig * 1e4, orig * 1e-6, orig * 30, orig / 30, 1e-40, 2.0**-126, 3.4e38]
    values += [float("inf"), float("-inf"), float("nan")]
    return sorted({struct.unpack("<I", struct.pack("<f", v))[0] for v in values})


def _patch(pos: int, value: int, width: int) -> list:
    return [pos, (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little").hex()]


def _flips(rng: random.Random, buf: bytes, positions: list[int]) -> list[list]:
    data = {}
    for pos in positions:
        data[pos] = data.get(pos, buf[pos]) ^ (1 << rng.randrange(8))
    return [[pos, bytes([b]).hex()] for pos, b in sorted(data.items())]


def bit_flip(rng: random.Random, buf: bytes, layout: ModelLayout) -> dict:
    positions = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
    return {"what": f"{len(positions)} bits flipped at {sorted(positions)}", "patches": _flips(rng, buf, positions)}


def metadata_bit_flip(rng: random.Random, buf: bytes, layout: ModelLayout) -> dict:
    ranges = layout.outside_weights()
    total = sum(end - start for start, end in ranges)
    positions = []
    for _ in range(rng.randint(1, 4)):
        k = rng.randrange(total)
        for start, end in ranges:
            if k < end - start:
                positions.append(start + k)
                break
            k -= end - start
    return {
        "what": f"{len(positions)} bits flipped outside the weights at {sorted(positions)}",
        "patches": _flips(rng, buf, positions),
    }


def truncate(rng: random.Random, buf: bytes, layout: ModelLayout) -> dict:
    if rng.random() < 0.7:
        n = rng.randrange(len(buf))
    else:  # inside the last stretch of structure (tables, names), where a cut is easiest to miss
        start, end = layout.outside_weights()[-1]
        n = rng.randrange(start, end)
    return {"what": f"cut to {n} of {len(buf)} bytes", "truncate": n}


def field_edge(rng: random.Random, buf: bytes, layout: ModelLayout) -> dict:
    kind = rng.choice(sorted(layout.by_kind))
    f = rng.choice(layout.by_kind[kind])
    orig = int.from_bytes(buf[f.pos : f.pos + f.width], "little")
    if f.kind == "scale":
        candidates = float_edge_values(struct.unpack_from("<f", buf, f.pos)[0])
    else:
        candidates = edge_values(f.width, orig, f.pos, len(buf))
    value = rng.choice([v for v in candidates if v != orig])
    return {
        "what": f"{f.where}: {f.kind} ({f.width} bytes at {f.pos}) {orig} -> {value}",
        "field": f.kind,
        "patches": [_patch(f.pos, value, f.width)],
    }


def buffer_range(rng: random.Random, buf: bytes, layout: ModelLayout) -> dict:
    """Point one buffer at a new Buffer table (appended) that holds its data by 64-bit offset and size."""
    k = rng.choice([i for i, (_, _, n) in enumerate(layout.buffers) if n > 0])
    slot, start, n = layout.buffers[k]
    size = len(buf)
    offset, length = rng.choice(
        [
            (start, n),  # valid: the same bytes, found by offset
            ((1 << 64) - (1 << 30), 1 << 30),  # the reported crash: offset + size wraps to 0
            ((1 << 64) - (1 << 12), n + (1 << 12)),  # wraps to just past the real data
            ((1 << 64) - 16, 4096),
            (size - n + 1, n),  # one byte past the end
            (size, n),
            (start, n + 1),
            (start + 1, n),
            (start, (1 << 64) - start),
            (2, (1 << 63) + 5),
            (1 << 63, 1 << 63),
            (1, n),  # the "no data" sentinel
            (0, n),
        ]
    )
    # Appended at an 8-aligned end: vtable (4 slots: data absent, offset at 8, size at 16), then the table.
    pad = (-size) % 8
    vtable = struct.pack("<HHHHH", 10, 24, 0, 8, 16) + b"\0" * 6  # 16 bytes: the table stays 8-aligned
    table_pos = size + pad + len(vtable)
    table = struct.pack("<iIQQ", len(vtable), 0, offset & ((1 << 64) - 1), length & ((1 << 64) - 1))
    return {
        "what": f"buffer {k}: data ({n} bytes at {start}) by offset {offset}, size {length}",
        "patches": [_patch(slot, table_pos - slot, 4)],
        "append": (b"\0" * pad + vtable + table).hex(),
    }


MUTATORS = {
    "bit_flip": bit_flip,
    "metadata_bit_flip": metadata_bit_flip,
    "truncate": truncate,
    "field_edge": field_edge,
    "buffer_range": buffer_range,
}


def make_mutants(model_dir: Path, count: int, seed: int, models: dict[str, float] = MODELS) -> list[dict]:
    """`count` mutants, the same list for the same seed, model files and count."""
    rng = random.Random(seed)
    mutants = []
    names = list(models)
    shares = [round(count * models[m] / sum(models.values())) for m in names]
    shares[0] += count - sum(shares)
    for name, n in zip(names, shares):
        buf = (model_dir / name).read_bytes()
        layout = ModelLayout(buf)
        for i in range(n):
            kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
            spec = {"id": f"{Path(name).stem}#{i}", "model": name, "kind": kind, "patches": [], "truncate": None}
            spec.update(MUTATORS[kind](rng, buf, layout))
            mutants.append(spec)
    return mutants


def apply(buf: bytes, spec: dict) -> bytes:
    data = bytearray(buf + bytes.fromhex(spec.get("append", "")))
    for pos, hexbytes in spec["patches"]:
        patch = bytes.fromhex(hexbytes)
        data[pos : pos + len(patch)] = patch
    return bytes(data if spec["truncate"] is None else data[: spec["truncate"]])


# The child: loads mutants one by one --------------------------------------------------------------------


_BACKEND_VAR = "EDGEPOSE_FUZZ_BACKEND"


def worker(model_dir: Path, specs: Path, scratch: Path) -> int:
    """Try each mutant in `specs` (JSON lines); print a "start" line before and a result line after each."""
    import numpy as np

    from edgepose.bindings import open_backend
    from edgepose.errors import EdgeposeError
    from edgepose.models.posenet import runnable_file

    originals: dict[str, bytes] = {}
    for line in specs.read_text().splitlines():
        spec = json.loads(line)
        print(json.dumps({"start": spec["id"]}), flush=True)
        if spec["model"] not in originals:
            originals[spec["model"]] = (model_dir / spec["model"]).read_bytes()
        path = scratch / f"mutant-{spec['id'].replace('#', '-')}.tflite"
        path.write_bytes(apply(originals[spec["model"]], spec))
        result: dict = {"done": spec["id"]}
        stage = "load"
        try:
            runnable, _ = runnable_file(path)  # the PoseNet decoder model runs through its cut copy
            backend = open_backend(runnable, os.environ.get(_BACKEND_VAR, "auto"), threads=1)
            try:
                stage = "run"
                backend.run([np.zeros(s.shape, s.dtype) for s in backend.inputs])
            finally:
                backend.close()
            result["outcome"] = "loaded"
        except EdgeposeError as e:
            message = str(e)
            by = "runtime" if " cannot " in message else "verifier" if "TFLite model" in message else "sdk"
            result.update(outcome="refused", by=by, stage=stage, error=type(e).__name__, message=message[:300])
        except Exception as e:  # anything but an EdgeposeError is a finding
            result.update(outcome="error", stage=stage, error=type(e).__name__, message=str(e)[:300])
        finally:
            path.unlink(missing_ok=True)
            shutil.rmtree(scratch / "cache", ignore_errors=True)  # PoseNet's cut copy, one per mutant
        print(json.dumps(result), flush=True)
    return 0


# The parent: runs children, names the mutant a dead child was on ----------------------------------------


def _limit_memory(gb: float) -> None:
    if gb > 0:
        import resource

        limit = int(gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(specs: list[dict], model_dir: Path, scratch: Path, memory_gb: float, tag: str) -> tuple:
    """One child over `specs` until it ends: (results, id it died on or None, return code, hung, stderr)."""
    spec_file, stderr = scratch / f"specs-{tag}.jsonl", scratch / f"stderr-{tag}.txt"
    spec_file.write_text("".join(json.dumps(s) + "\n" for s in specs))
    command = [sys.executable, __file__, "--worker", "--model-dir", str(model_dir), "--specs", str(spec_file)]
    env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "cache"), EDGEPOSE_OFFLINE="1")
    results: dict[str, dict] = {}
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [*command, "--scratch", str(scratch)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            preexec_fn=(lambda: _limit_memory(memory_gb)) if os.name == "posix" else None,
        )
        last = [time.monotonic()]
        hung = threading.Event()

        def watchdog() -> None:
            while proc.poll() is None:
                if time.monotonic() - last[0] > MUTANT_TIMEOUT_S:
                    hung.set()
                    proc.kill()
                    return
                time.sleep(0.5)

        threading.Thread(target=watchdog, daemon=True).start()
        started = None
        for line in proc.stdout:
            last[0] = time.monotonic()
            msg = json.loads(line)
            if "start" in msg:
                started = msg["start"]
            else:
                results[msg.pop("done")] = msg
                started = None
        rc = proc.wait()
    return results, started, rc, hung.is_set(), stderr.read_text(errors="replace")[-600:]


def _drive(chunk: list[dict], model_dir: Path, scratch: Path, memory_gb: float) -> dict[str, dict]:
    """Run `chunk` through as many children as it takes; a result per mutant id.

    A child that dies on a mutant is followed by that mutant alone in a fresh child: a crash that does
    not come back alone was set up by an earlier mutant of the same child (memory corrupted silently),
    and the result lists those.
    """
    results: dict[str, dict] = {}
    pending = list(chunk)
    for run in range(len(chunk) + 1):
        if not pending:
            break
        done, started, rc, hung, tail = _child(pending, model_dir, scratch, memory_gb, str(run))
        results.update(done)
        if started is not None:
            spec = next(s for s in pending if s["id"] == started)
            _, alone, _, _, _ = _child([spec], model_dir, scratch, memory_gb, f"{run}-alone")
            results[started] = {
                "outcome": "hang" if hung else "crash",
                "returncode": rc,
                "signal": _signal_name(rc),
                "alone": "again" if alone is not None else "not again: set up by an earlier mutant of the child",
                "earlier": [] if alone is not None else list(done)[-20:],
                "stderr_tail": tail,
            }
        elif rc != 0:
            # Died between mutants (at start or at exit): not one mutant's doing, but still a failure.
            key = f"child exit after {list(done)[-1] if done else 'none'}"
            results[key] = {"outcome": "crash", "returncode": rc, "signal": _signal_name(rc), "stderr_tail": tail}
            if not done:
                break  # no progress: the child cannot start at all
        pending = [s for s in pending if s["id"] not in results]
    return results


def _signal_name(rc: int) -> str | None:
    if rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return None


def run_fuzz(mutants: list[dict], model_dir: Path, jobs: int, memory_gb: float) -> dict[str, dict]:
    with tempfile.TemporaryDirectory(prefix="edgepose-fuzz-") as tmp:
        chunks = [mutants[k::jobs] for k in range(jobs)]
        scratches = [Path(tmp) / f"job{k}" for k in range(jobs)]
        for s in scratches:
            s.mkdir()
        with ThreadPoolExecutor(jobs) as pool:
            parts = list(pool.map(lambda a: _drive(a[0], model_dir, a[1], memory_gb), zip(chunks, scratches)))
    return {k: v for part in parts for k, v in part.items()}


def summarize(mutants: list[dict], results: dict[str, dict]) -> dict:
    def tally(group: list[dict]) -> dict:
        c = Counter()
        for m in group:
            r = results.get(m["id"], {"outcome": "missing"})
            c["mutants"] += 1
            c[r["outcome"]] += 1
            if r["outcome"] == "refused":
                c[f"refused_by_{r['by']}"] += 1
        return dict(sorted(c.items()))

    by = defaultdict(list)
    for m in mutants:
        by[("model", m["model"])].append(m)
        by[("kind", m["kind"])].append(m)
        if "field" in m:
            by[("field", m["field"])].append(m)
    known = {m["id"] for m in mutants}
    failures = [
        {**next((m for m in mutants if m["id"] == k), {"id": k}), **r}
        for k, r in results.items()
        if r["outcome"] in ("crash", "hang", "error")
    ]
    # What the runtime still catches after the verifier, by kind of message (numbers left out).
    runtime = Counter(
        re.sub(r"\d+", "N", r["message"].split(": ", 1)[-1])[:160] for r in results.values() if r.get("by") == "runtime"
    )
    return {
        "outcomes": tally(mutants),
        "by_model": {name: tally(g) for (what, name), g in sorted(by.items()) if what == "model"},
        "by_kind": {name: tally(g) for (what, name), g in sorted(by.items()) if what == "kind"},
        "by_field_kind": {name: tally(g) for (what, name), g in sorted(by.items()) if what == "field"},
        "failures": failures,
        "missing": sorted(known - set(results)),
        "runtime_refusals": dict(runtime.most_common(20)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000, help="mutants in all, shared among the models")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="children at once")
    ap.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit of each child (0: none)")
    ap.add_argument("--backend", default="auto", help="auto (LiteRT) or tflite-runtime (the Pi fallback)")
    ap.add_argument("--label", default="local")
    ap.add_argument("--out", default=None, help="results JSON (default benchmarks/results/fuzz_models_<label>.json)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=str(MODEL_DIR), help=argparse.SUPPRESS)
    ap.add_argument("--specs", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ[_BACKEND_VAR] = args.backend  # the children inherit it
    if args.worker:
        return worker(Path(args.model_dir), Path(args.specs), Path(args.scratch))

    model_dir = Path(args.model_dir)
    t0 = time.perf_counter()
    mutants = make_mutants(model_dir, args.count, args.seed)
    t1 = time.perf_counter()
    results = run_fuzz(mutants, model_dir, max(1, args.jobs), args.memory_gb)
    elapsed = time.perf_counter() - t0
    summary = summarize(mutants, results)

    sys.path.insert(0, str(HERE))
    from common import fingerprint, save_result

    result = {
        "benchmark": "fuzz_models",
        "label": args.label,
        "seed": args.seed,
        "backend": args.backend,
        "count": args.count,
        "jobs": args.jobs,
        "models": {
            name: {"size_bytes": (model_dir / name).stat().st_size, "share": share} for name, share in MODELS.items()
        },
        "kinds": KINDS,
        **summary,
        "crashes": sum(1 for f in summary["failures"] if f["outcome"] == "crash"),
        "mutate_s": round(t1 - t0, 2),
        "elapsed_s": round(elapsed, 1),
        "mutants_per_s": round(len(mutants) / elapsed, 1),
        "fingerprint": fingerprint(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = save_result(result, f"fuzz_models_{args.label}", args.out)
    o = summary["outcomes"]
    print(
        f"{o['mutants']} mutants (seed {args.seed}) in {elapsed:.0f} s: {o.get('loaded', 0)} loaded, "
        f"{o.get('refused', 0)} refused ({o.get('refused_by_verifier', 0)} by the verifier, "
        f"{o.get('refused_by_runtime', 0)} by the runtime), "
        f"{len(summary['failures'])} failures -> {out}"
    )
    for f in summary["failures"]:
        print(f"FAIL {f['id']} {f['outcome']} {f.get('signal') or f.get('error', '')}: {f.get('what', '')}")
    return 1 if summary["failures"] or summary["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
