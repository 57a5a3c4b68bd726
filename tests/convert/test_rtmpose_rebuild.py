"""The plain-PyTorch RTMPose rebuild against mmpose's own numbers, its weight loaders, and its ONNX export.

Reference files (../shared/rtmpose) were produced by mmpose 1.3.2 with seeded random weights; they are
required: a missing file fails the run, nothing is skipped.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from edgepose.converters import sdk_zip
from edgepose.converters.rtmpose_export import export_rtmpose_onnx
from edgepose.converters.rtmpose_torch import VARIANTS, build_rtmpose
from edgepose.converters.rtmpose_weights import (
    extract_sdk_zip,
    infer_variant,
    load_rtmpose_state_dict,
    load_rtmpose_weights,
    rtmpose_from_checkpoint,
)
from edgepose.errors import ModelError

RTMPOSE_DIR = Path(os.environ.get("EDGEPOSE_MODEL_DIR", "../shared/models")).resolve().parent / "rtmpose"
KEYS_TXT = RTMPOSE_DIR / "rtmpose_t_keys.txt"
STATE_NPZ = RTMPOSE_DIR / "rtmpose_t_seed7_state_dict.npz"
IO_NPZ = RTMPOSE_DIR / "rtmpose_t_seed7_io.npz"
TOL = 1e-4


def _require(path: Path) -> Path:
    assert path.is_file(), f"missing RTMPose reference file {path} (expected beside EDGEPOSE_MODEL_DIR, in ../rtmpose)"
    return path


@pytest.fixture(scope="module")
def reference_io() -> dict[str, np.ndarray]:
    with np.load(_require(IO_NPZ)) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def seeded_state() -> dict[str, torch.Tensor]:
    return load_rtmpose_state_dict(_require(STATE_NPZ))


@pytest.fixture(scope="module")
def seeded_model(seeded_state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = build_rtmpose("t")
    load_rtmpose_weights(model, seeded_state)
    return model.eval()


def _max_abs(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else a
    b = b.numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


# --- (1) module structure == mmpose checkpoint format ------------------------------------------------


def test_t_state_dict_matches_official_keys_shapes_dtypes() -> None:
    expected = []
    for line in _require(KEYS_TXT).read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split("\t")
            expected.append((key, shape, dtype))
    got = [
        (k, str(tuple(v.shape)), str(v.dtype).removeprefix("torch."))
        for k, v in build_rtmpose("t").state_dict().items()
    ]
    missing = sorted({e[0] for e in expected} - {g[0] for g in got})
    extra = sorted({g[0] for g in got} - {e[0] for e in expected})
    assert not missing and not extra, f"missing keys {missing[:5]}, unexpected keys {extra[:5]}"
    differing = [(e, g) for e, g in zip(expected, got) if e != g]
    assert not differing, f"key order, shape or dtype differs from mmpose's, first: {differing[:3]}"
    assert len(got) == len(expected) == 218


# --- (2) numbers == mmpose's -------------------------------------------------------------------------


def test_t_reproduces_mmpose_outputs(seeded_model: torch.nn.Module, reference_io: dict[str, np.ndarray]) -> None:
    x = torch.from_numpy(reference_io["input"])
    assert tuple(x.shape) == (2, 3, 256, 192)
    with torch.no_grad():
        simcc_x, simcc_y = seeded_model(x)
    err_x = _max_abs(simcc_x, reference_io["simcc_x"])
    err_y = _max_abs(simcc_y, reference_io["simcc_y"])
    assert err_x < TOL and err_y < TOL, f"max abs error vs mmpose: simcc_x {err_x:.3g}, simcc_y {err_y:.3g} (tol {TOL})"


# --- (3) the larger variants ------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "channels"), [("t", 384), ("s", 512), ("m", 768)])
def test_variants_build_with_right_widths_and_outputs(variant: str, channels: int) -> None:
    model = build_rtmpose(variant).eval()
    assert VARIANTS[variant].out_channels == channels
    state = model.state_dict()
    assert state["backbone.stage4.0.conv.weight"].shape[0] == channels
    assert state["head.final_layer.weight"].shape == (17, channels, 7, 7)
    assert infer_variant(state) == variant
    with torch.no_grad():
        simcc_x, simcc_y = model(torch.zeros(1, 3, 256, 192))
    assert tuple(simcc_x.shape) == (1, 17, 384)
    assert tuple(simcc_y.shape) == (1, 17, 512)


def test_block_counts_follow_deepen_factor() -> None:
    # round(3 * 0.33) = 1, round(6 * 0.33) = 2; round(3 * 0.67) = 2, round(6 * 0.67) = 4.
    for variant, counts in {"t": (1, 1, 1, 1), "s": (1, 2, 2, 1), "m": (2, 4, 4, 2)}.items():
        model = build_rtmpose(variant)
        got = tuple(len(getattr(model.backbone, f"stage{i}")[-1].blocks) for i in range(1, 5))
        assert got == counts, f"{variant}: CSP block counts {got}, want {counts}"


# --- (4) checkpoint files ---------------------------------------------------------------------------


class _NotATensor:
    """Stands in for an mmengine object in a training checkpoint's meta."""


def test_pth_round_trip(tmp_path: Path, seeded_state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "rtmpose-t.pth"
    # Official checkpoints carry numpy arrays in meta.dataset_meta; those must not block loading.
    meta = {"dataset_meta": {"sigmas": np.linspace(0.025, 0.1, 17, dtype=np.float32), "flip_indices": [0, 2, 1]}}
    torch.save({"meta": meta, "state_dict": seeded_state}, path)
    loaded = load_rtmpose_state_dict(path)
    assert list(loaded) == list(seeded_state)
    for key, value in seeded_state.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key

    # DataParallel-style "module." prefixes are stripped.
    ddp = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in seeded_state.items()}}, ddp)
    assert list(load_rtmpose_state_dict(ddp)) == list(seeded_state)

    model = rtmpose_from_checkpoint(path)
    assert model.variant == "t" and not model.training


def test_bad_checkpoint_files_raise_model_error(tmp_path: Path, seeded_state: dict[str, torch.Tensor]) -> None:
    good = tmp_path / "good.pth"
    torch.save({"meta": {}, "state_dict": seeded_state}, good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_rtmpose_state_dict(truncated)

    text = tmp_path / "notes.pth"
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(ModelError):
        load_rtmpose_state_dict(text)

    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ModelError):
        load_rtmpose_state_dict(empty)

    bad_npz = tmp_path / "bad.npz"
    bad_npz.write_bytes(STATE_NPZ.read_bytes()[:4096])
    with pytest.raises(ModelError):
        load_rtmpose_state_dict(bad_npz)

    with pytest.raises(ModelError, match="not found"):
        load_rtmpose_state_dict(tmp_path / "absent.pth")

    unsafe = tmp_path / "unsafe.pth"
    torch.save({"meta": {"hub": _NotATensor()}, "state_dict": seeded_state}, unsafe)
    with pytest.raises(ModelError, match="unsafe"):
        load_rtmpose_state_dict(unsafe)

    for err in (truncated, text, empty, unsafe):
        try:
            load_rtmpose_state_dict(err)
        except ModelError as exc:
            assert "\n" not in str(exc), f"multi-line error for {err.name}: {exc!s}"


def test_wrong_keys_and_widths_raise_model_error(seeded_state: dict[str, torch.Tensor]) -> None:
    model = build_rtmpose("t")
    partial = {k: v for k, v in seeded_state.items() if not k.startswith("head.gau.")}
    partial["head.extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError, match=r"missing \(head\.gau\..*unexpected \(head\.extra\.weight"):
        load_rtmpose_weights(model, partial)
    resized = dict(seeded_state, **{"head.cls_x.weight": torch.zeros(288, 256)})  # a 144-wide input's bins
    with pytest.raises(ModelError, match=r"shape mismatch at head\.cls_x\.weight \(288, 256\) vs \(384, 256\)"):
        load_rtmpose_weights(model, resized)
    with pytest.raises(ModelError, match="missing"):
        load_rtmpose_weights(build_rtmpose("s"), seeded_state)
    with pytest.raises(ModelError, match="1024 channels"):
        infer_variant({"backbone.stage4.0.conv.weight": torch.zeros(1024, 512, 3, 3)})
    with pytest.raises(ModelError, match="not an RTMPose"):
        infer_variant({"head.cls_x.weight": torch.zeros(384, 256)})


# --- (5) ONNX export ---------------------------------------------------------------------------------


def test_onnx_export_matches_torch_and_contract(
    tmp_path: Path, seeded_model: torch.nn.Module, reference_io: dict[str, np.ndarray]
) -> None:
    out = export_rtmpose_onnx(seeded_model, tmp_path / "end2end.onnx")
    assert out == tmp_path / "end2end.onnx" and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["end2end.onnx"], "temporary export file left behind"
    assert not seeded_model.training

    proto = onnx.load(str(out))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    assert [(i.name, i.shape, i.type) for i in inputs] == [("input", [1, 3, 256, 192], "tensor(float)")]
    assert [(o.name, o.shape, o.type) for o in outputs] == [
        ("simcc_x", [1, 17, 384], "tensor(float)"),
        ("simcc_y", [1, 17, 512], "tensor(float)"),
    ]

    errors = []
    for b in range(reference_io["input"].shape[0]):
        x = reference_io["input"][b : b + 1]
        onnx_x, onnx_y = session.run(["simcc_x", "simcc_y"], {"input": x})
        with torch.no_grad():
            torch_x, torch_y = seeded_model(torch.from_numpy(x))
        errors.append((_max_abs(onnx_x, torch_x), _max_abs(onnx_y, torch_y)))
    worst = max(max(e) for e in errors)
    assert worst < TOL, f"onnxruntime vs torch max abs error per sample (simcc_x, simcc_y): {errors}"


# --- (6) SDK zips ------------------------------------------------------------------------------------


def _tiny_onnx_bytes() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["simcc_x"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 3])],
    )
    # IR 9 keeps the file loadable by older onnxruntime builds (onnx 1.19 defaults to IR 12).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extract_sdk_zip_accepts_official_layouts(tmp_path: Path) -> None:
    tiny = _tiny_onnx_bytes()
    sdk = {"end2end.onnx": tiny, "pipeline.json": b"{}", "deploy.json": b"{}", "detail.json": b"{}"}

    nested = _zip(tmp_path / "nested.zip", {f"rtmpose-t/{k}": v for k, v in sdk.items()})
    onnx_path = extract_sdk_zip(nested, tmp_path / "out1")
    assert onnx_path == (tmp_path / "out1" / "rtmpose-t" / "end2end.onnx").resolve()
    assert onnx_path.read_bytes() == tiny
    assert (onnx_path.parent / "pipeline.json").is_file()
    ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    flat = _zip(tmp_path / "flat.zip", sdk)
    assert extract_sdk_zip(flat, tmp_path / "out2") == (tmp_path / "out2" / "end2end.onnx").resolve()


def test_extract_sdk_zip_refuses_hostile_or_wrong_zips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = _tiny_onnx_bytes()
    dest = tmp_path / "dest"

    escaping = _zip(tmp_path / "escape.zip", {"end2end.onnx": tiny, "../evil": b"x"})
    with pytest.raises(ModelError, match="escapes"):
        extract_sdk_zip(escaping, dest)
    assert not (tmp_path / "evil").exists()

    absolute = _zip(tmp_path / "abs.zip", {"end2end.onnx": tiny, "/tmp/edgepose-evil": b"x"})
    with pytest.raises(ModelError, match="absolute"):
        extract_sdk_zip(absolute, dest)

    drive = _zip(tmp_path / "drive.zip", {"end2end.onnx": tiny, "C:/evil": b"x"})
    with pytest.raises(ModelError, match="absolute"):
        extract_sdk_zip(drive, dest)

    no_model = _zip(tmp_path / "nomodel.zip", {"pipeline.json": b"{}", "deep/er/end2end.onnx": tiny})
    with pytest.raises(ModelError, match="no end2end.onnx"):
        extract_sdk_zip(no_model, dest)

    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        zf.writestr("end2end.onnx", tiny)
        info = zipfile.ZipInfo("pipeline.json")
        info.external_attr = 0o120777 << 16  # a symlink entry, as `zip -y` writes
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ModelError, match="symbolic link"):
        extract_sdk_zip(link, dest)

    not_zip = tmp_path / "model.zip"
    not_zip.write_bytes(b"definitely not a zip")
    with pytest.raises(ModelError, match="not a zip"):
        extract_sdk_zip(not_zip, dest)

    # Zip bomb: the cap is 1 GiB; shrink it rather than write a GiB.
    monkeypatch.setattr(sdk_zip, "SDK_ZIP_MAX_TOTAL_BYTES", 10_000)
    bomb = _zip(tmp_path / "bomb.zip", {"end2end.onnx": tiny, "padding.bin": bytes(50_000)})
    with pytest.raises(ModelError, match="over the 10000 bytes limit"):
        extract_sdk_zip(bomb, tmp_path / "bomb")
    assert not (tmp_path / "bomb").exists(), "a zip over the size cap must be refused before writing anything"

    # Nothing refused above was written anywhere.
    assert not dest.exists() or not any(dest.rglob("*evil*"))
