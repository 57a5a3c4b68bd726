"""A model file that changed after conversion is refused; any file can be pinned by its SHA-256.

Converted files record the SHA-256 of their own bytes (metadata JSON zeroed) in their edgepose metadata;
the official releases carry none, so `models info` shows their hash and `--model-sha256` pins it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edgepose import PoseEstimator, PoseEstimatorOptions
from edgepose.assets import integrity
from edgepose.assets.metadata import read_metadata
from edgepose.converters.metadata import embed_onnx_metadata, embed_tflite_metadata, make_metadata
from edgepose.errors import ModelError
from tests.conftest import DATA_DIR, Cli, cli_env, json_lines

PHOTO = DATA_DIR / "coco" / "000000000785.jpg"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(scope="module")
def converted(movenet_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared MoveNet as the converters leave a file: with edgepose metadata and its content hash."""
    meta = make_metadata("movenet", "single", (192, 192), "NHWC", (0, 0, 0), (1, 1, 1), movenet_path, "tflite-int8")
    out = tmp_path_factory.mktemp("converted") / "movenet.tflite"
    embed_tflite_metadata(movenet_path, out, meta)
    return out


def _flip(src: Path, dst: Path, at: int) -> Path:
    data = bytearray(src.read_bytes())
    data[at] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def test_a_converted_file_records_the_hash_of_its_own_bytes(converted):
    recorded = read_metadata(converted)["content_sha256"]
    assert len(recorded) == 64 and recorded != integrity.PLACEHOLDER
    # Recomputed independently: the file as on disk with the recorded digits back to zeros.
    data = converted.read_bytes()
    at = data.index(recorded.encode())
    assert data.count(recorded.encode()) == 1
    assert hashlib.sha256(data[:at] + b"0" * 64 + data[at + 64 :]).hexdigest() == recorded
    assert integrity.check_content(converted) is True


def test_the_official_files_record_none(movenet_path):
    assert integrity.check_content(movenet_path) is False


@pytest.mark.parametrize("where", ["a weight", "the graph", "the metadata"])
def test_a_flipped_byte_in_a_converted_file_is_refused_with_one_line(cli, converted, tmp_path, where):
    data = converted.read_bytes()
    at = {
        "a weight": len(data) // 2,  # MoveNet's int8 weights fill the middle of the file
        "the graph": 64,
        "the metadata": data.index(b'"input_size"') + 2,  # "input_size" -> "iOput_size"
    }[where]
    bad = _flip(converted, tmp_path / "flipped.tflite", at)
    with pytest.raises(ModelError, match="does not match the SHA-256 its edgepose metadata records"):
        integrity.check_content(bad)
    res = cli("run", PHOTO, "-m", bad)
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"edgepose: error: {bad}: the file does not match"), lines


def test_an_intact_converted_file_runs_like_the_original(cli, converted, movenet_path):
    ours, original = cli("run", PHOTO, "-m", converted), cli("run", PHOTO, "-m", movenet_path)
    assert ours.returncode == 0 and original.returncode == 0, ours.stderr + original.stderr
    assert json_lines(ours.stdout)[0]["poses"] == json_lines(original.stdout)[0]["poses"]


def test_a_converted_onnx_file_checks_itself_too(tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX conversion lives in the converters' extra")
    from onnx import TensorProto, helper

    weights = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [weights],
    )
    src = tmp_path / "src.onnx"
    onnx.save(helper.make_model(graph), str(src))
    meta = make_metadata("rtmpose", "single", (192, 256), "NCHW", (0, 0, 0), (1, 1, 1), src, "onnx-fp32")
    out = tmp_path / "out.onnx"
    embed_onnx_metadata(src, out, meta)
    assert integrity.check_content(out) is True
    data = out.read_bytes()
    at = data.index(bytes.fromhex("0000803f"))  # the weight 1.0
    with pytest.raises(ModelError, match="does not match"):
        integrity.check_content(_flip(out, tmp_path / "bad.onnx", at))


def test_models_info_shows_the_sha256_to_pin(cli, movenet_path, converted):
    digest = hashlib.sha256(movenet_path.read_bytes()).hexdigest()
    res = cli("models", "info", movenet_path)
    assert res.returncode == 0, res.stderr
    rows = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.startswith(("sha256", "content")))
    assert rows["sha256"].strip() == digest
    assert rows["content"].strip() == "hash     not recorded"
    info = cli("models", "info", converted)
    assert "verified" in info.stdout and "metadata.content_sha256" in info.stdout


def test_a_pinned_sha256_is_checked_before_the_model_loads(cli, movenet_path, tmp_path):
    digest = hashlib.sha256(movenet_path.read_bytes()).hexdigest()
    assert cli("run", PHOTO, "-m", movenet_path, "--model-sha256", digest[:12]).returncode == 0
    flipped = _flip(movenet_path, tmp_path / "movenet.tflite", movenet_path.stat().st_size // 2)
    res = cli("run", PHOTO, "-m", flipped, "--model-sha256", digest)
    assert res.returncode == 2
    assert res.stderr.startswith(f"edgepose: error: {flipped}: SHA-256 ") and "does not match the pinned" in res.stderr
    with pytest.raises(ModelError, match="does not match the pinned"):
        PoseEstimator.create_from_options(PoseEstimatorOptions(model=str(flipped), model_sha256=digest))
    bad = cli("run", PHOTO, "--model-sha256", "xyz")
    assert bad.returncode == 2 and "--model-sha256 must be 8 to 64 hex digits" in bad.stderr
