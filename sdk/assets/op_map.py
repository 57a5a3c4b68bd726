"""What runs where in a model compiled for the Edge TPU, read from its flatbuffer.

edgetpu_compiler folds the operators it can map into one (or a few) `edgetpu-custom-op`s and leaves the
rest as ordinary TFLite operators, which the Pi's CPU then runs between the TPU calls: the Coral user's
main surprise is that part of a "TPU" model is CPU work. The compiled code hides which operators went
in, so their number is taken by difference with the CPU model it was compiled from (the registry's
`cpu_equivalent`, or a file of the same name without `_edgetpu` beside it), when that is at hand.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgepose.assets.registry import REGISTRY, ResolvedModel, find_local
from edgepose.bindings.tflite_file import EDGETPU_CUSTOM_OP, verify_model
from edgepose.errors import EdgeposeError


@dataclass(frozen=True)
class OperatorMap:
    operators: int  # in the main graph
    edgetpu_ops: int  # edgetpu-custom-op calls
    edgetpu_code_bytes: int  # their compiled code, all together
    cpu_ops: dict[str, int]  # operator name -> count, for those the CPU runs
    cpu_model: Path | None  # the CPU model it was compiled from, when found
    cpu_model_operators: int | None
    # Operators of the CPU model the compiler mapped into the TPU (its count minus the ones left on the
    # CPU); None without the CPU model.
    mapped_to_tpu: int | None

    @property
    def cpu_op_count(self) -> int:
        return sum(self.cpu_ops.values())

    def to_dict(self) -> dict:
        return {
            "operators": self.operators,
            "edgetpu_custom_ops": self.edgetpu_ops,
            "edgetpu_code_bytes": self.edgetpu_code_bytes,
            "cpu_operators": self.cpu_op_count,
            "cpu_operator_types": dict(sorted(self.cpu_ops.items(), key=lambda kv: (-kv[1], kv[0]))),
            "cpu_model": None if self.cpu_model is None else self.cpu_model.name,
            "cpu_model_operators": self.cpu_model_operators,
            "mapped_to_tpu": self.mapped_to_tpu,
        }


def operator_map(resolved: ResolvedModel) -> OperatorMap | None:
    """The operator map of a .tflite model (None for other formats). Raises ModelError for a bad file."""
    if resolved.path.suffix.lower() != ".tflite":
        return None
    info = verify_model(resolved.path)
    ops = info.main_operators
    cpu = Counter(op for op in ops if op != EDGETPU_CUSTOM_OP)
    twin = _cpu_model(resolved) if info.is_edgetpu else None
    twin_ops = None
    if twin is not None:
        try:
            twin_ops = len(verify_model(twin).main_operators)
        except EdgeposeError:  # a damaged CPU model only loses the comparison, not this file's map
            twin = None
    return OperatorMap(
        operators=len(ops),
        edgetpu_ops=len(ops) - sum(cpu.values()),
        edgetpu_code_bytes=sum(info.edgetpu_code_bytes),
        cpu_ops=dict(cpu),
        cpu_model=twin,
        cpu_model_operators=twin_ops,
        mapped_to_tpu=None if twin_ops is None else twin_ops - sum(cpu.values()),
    )


def describe(m: OperatorMap) -> list[tuple[str, str]]:
    """(label, text) rows for `edgepose models info`."""
    common = ", ".join(f"{name} {n}" for name, n in sorted(m.cpu_ops.items(), key=lambda kv: (-kv[1], kv[0])))
    if not m.edgetpu_ops:
        return [("operators", f"{m.operators} in the main graph, all on the CPU: {common}")]
    tpu = f"{m.edgetpu_ops} Edge TPU custom op(s), {m.edgetpu_code_bytes / 1e6:.1f} MB of compiled code"
    if m.mapped_to_tpu is not None:
        tpu += f", running {m.mapped_to_tpu} of the {m.cpu_model_operators} operators of {m.cpu_model.name}"
    rows = [("operators", f"{m.operators} in the main graph"), ("on the Edge TPU", tpu)]
    rows.append(("on the CPU", f"{m.cpu_op_count}: {common}" if m.cpu_op_count else "none"))
    return rows


def _cpu_model(resolved: ResolvedModel) -> Path | None:
    spec = resolved.spec
    if spec is not None and spec.cpu_equivalent in REGISTRY:
        try:
            local = find_local(REGISTRY[spec.cpu_equivalent])
        except EdgeposeError:  # present but not the pinned file: no comparison
            local = None
        if local is not None:
            return local
    stem = resolved.path.stem
    if "_edgetpu" in stem:
        sibling = resolved.path.with_name(stem.replace("_edgetpu", "") + resolved.path.suffix)
        if sibling.is_file():
            return sibling
    return None
