"""edgepose metadata in converted files: embedded by the converters, read back by hand in the runtime,
never a crash on bad files; and converted models' outputs matched by shape, not position."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgepose.assets.integrity import check_content
from edgepose.assets.metadata import ModelMetadata, Normalization, load_metadata, read_metadata
from edgepose.assets.registry import REGISTRY
from edgepose.bindings import Backend, TensorSpec, open_backend
from edgepose.converters import metadata as converter
from edgepose.converters.metadata import embed_metadata, embed_onnx_metadata, embed_tflite_metadata, make_metadata
from edgepose.errors import ModelError
from edgepose.geometry import Roi, SquareRoi
from edgepose.image import load_image
from edgepose.models.blazepose import BlazePoseLandmark
from edgepose.models.movenet import MoveNetSinglePose
from edgepose.models.person_detector import BlazePoseDetector
from tests.test_bad_input import assert_one_error_line
from tests.test_cli import Cli, cli_env, json_lines

F32 = np.dtype(np.float32)


@pytest.fixture(scope="module")
def landmark_path(model_dir: Path) -> Path:
    return model_dir / REGISTRY["blazepose-full"].filename


@pytest.fixture(scope="module")
def detector_path(model_dir: Path) -> Path:
    return model_dir / REGISTRY["blazepose-detector"].filename


def write_raw_metadata(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> None:
    """Make the converter embed `payload` as is (no validation, no content hash), as another tool might."""
    monkeypatch.setattr(converter, "_with_hash_placeholder", lambda meta: payload)
    monkeypatch.setattr(converter.integrity, "stamp", lambda buf, path: buf)


def stored(path: Path) -> dict:
    """The metadata read back, less the content hash every writer adds (checked here: it matches)."""
    raw = dict(read_metadata(path))
    assert check_content(path) is True and len(raw.pop("content_sha256")) == 64
    return raw


def landmark_meta(source: Path) -> dict:
    return make_metadata(
        "blazepose",
        "single",
        (256, 256),
        "NHWC",
        (0.0, 0.0, 0.0),
        (255.0, 255.0, 255.0),
        source,
        "tflite-fp16",
        keypoint_names=["nose", "left_eye_inner"],
    )


def cast_onnx(path: Path) -> None:
    """A tiny valid ONNX model (uint8 -> float)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
        "cast",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    model.metadata_props.add(key="author", value="someone")  # other entries must survive
    onnx.save(model, path)


def run_tflite(path: Path, x: np.ndarray) -> list[np.ndarray]:
    backend = open_backend(path, "litert", threads=1)
    return backend.run([x])


# --- Round trips ---------------------------------------------------------------------------------


def test_tflite_round_trip_keeps_the_model_and_its_outputs(tmp_path, landmark_path):
    path = tmp_path / "landmarks_meta.tflite"
    meta = landmark_meta(landmark_path)
    embed_tflite_metadata(landmark_path, path, meta)
    assert stored(path) == meta
    typed = load_metadata(path)
    assert typed.family == "blazepose" and typed.input_size == (256, 256) and typed.input_layout == "NHWC"
    assert typed.normalization == Normalization((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))
    assert typed.source == landmark_path.name and typed.source_sha256 == REGISTRY["blazepose-full"].sha256
    assert typed.converter.startswith("edgepose ")
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    for a, b in zip(run_tflite(landmark_path, x), run_tflite(path, x), strict=True):
        assert np.array_equal(a, b)
    assert read_metadata(landmark_path) is None  # the source file was only read


def test_tflite_re_embedding_replaces_the_entry_and_keeps_the_others(tmp_path, landmark_path):
    from ai_edge_litert import schema_py_generated as schema

    path = tmp_path / "twice.tflite"
    embed_tflite_metadata(landmark_path, path, landmark_meta(landmark_path))
    second = dict(landmark_meta(landmark_path), format="tflite-int8", extra_field={"ignored": True})
    embed_tflite_metadata(path, path, second)  # in place
    assert stored(path) == second
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert names.count("edgepose") == 1 and "min_runtime_version" in names
    # Weights stay on 16-byte boundaries, as the TFLite converter lays them out.
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    starts = [b._tab.Vector(b._tab.Offset(4)) for b in buffers if b.DataLength()]
    assert starts and all(s % 16 == 0 for s in starts)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left behind


def test_onnx_round_trip_agrees_with_onnxruntime(tmp_path):
    import onnx
    import onnxruntime as ort

    src, path = tmp_path / "cast.onnx", tmp_path / "cast_meta.onnx"
    cast_onnx(src)
    assert read_metadata(src) is None
    meta = make_metadata(
        "rtmpose",
        "single",
        (192, 256),
        "NCHW",
        converter.RTMPOSE_MEAN,
        converter.RTMPOSE_STD,
        src,
        "onnx-fp32",
        keypoint_names=["nose"],
        simcc_split_ratio=2.0,
    )
    embed_onnx_metadata(src, path, meta)
    embed_metadata(path, path, dict(meta, format="onnx-int8"))  # replaces, in place
    assert stored(path) == dict(meta, format="onnx-int8")
    assert load_metadata(path).simcc_split_ratio == 2.0
    props = [(p.key, p.value) for p in onnx.load(str(path)).metadata_props]
    assert [k for k, _ in props] == ["author", "edgepose"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert json.loads(sess.get_modelmeta().custom_metadata_map["edgepose"]) == read_metadata(path)
    assert sess.run(None, {"x": np.array([[1, 2, 3, 4]], np.uint8)})[0].tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_shared_models_have_no_edgepose_metadata(model_dir):
    for spec in REGISTRY.values():
        if (model_dir / spec.filename).is_file():
            assert read_metadata(model_dir / spec.filename) is None, spec.name


# --- Bad files and bad metadata -------------------------------------------------------------------


def _read_or_model_error(path: Path):
    try:
        return read_metadata(path)
    except ModelError:
        return "ModelError"


def test_truncated_and_garbage_files_give_none(tmp_path, landmark_path):
    meta = landmark_meta(landmark_path)
    full = tmp_path / "full.tflite"
    embed_tflite_metadata(landmark_path, full, meta)
    onnx_full = tmp_path / "full.onnx"
    cast_onnx(tmp_path / "cast.onnx")
    embed_onnx_metadata(tmp_path / "cast.onnx", onnx_full, dict(meta, family="rtmpose"))
    for src in (full, onnx_full):
        data = src.read_bytes()
        for cut in sorted({1, 4, 8, 12, 64, len(data) // 2, len(data) - 300, len(data) - 40, len(data) - 1}):
            part = tmp_path / f"cut{src.suffix}"
            part.write_bytes(data[:cut])
            assert _read_or_model_error(part) in (None, read_metadata(src)), (src.name, cut)
    rng = np.random.default_rng(1)
    for name, content in [
        ("empty.tflite", b""),
        ("empty.onnx", b""),
        ("text.onnx", b"not a model at all\n" * 50),
        ("random.tflite", rng.bytes(5000)),
        ("random.onnx", rng.bytes(5000)),
        ("header.tflite", b"\x10\x00\x00\x00TFL3" + rng.bytes(200)),
        ("huge_offsets.tflite", b"\xff\xff\xff\x7fTFL3" + b"\xff" * 64),
        ("photo.jpg", b"\xff\xd8\xff" + rng.bytes(100)),
    ]:
        (tmp_path / name).write_bytes(content)
        assert read_metadata(tmp_path / name) is None, name
    with pytest.raises(ModelError, match="cannot read model file"):
        read_metadata(tmp_path / "missing.tflite")


@pytest.mark.parametrize("payload", [b'{"family": "rtmpose",', b"[1, 2, 3]", b"\xff\xfe\x00", b"", b'"text"', b"1e999"])
def test_malformed_json_counts_as_no_metadata(tmp_path, landmark_path, monkeypatch, payload):
    write_raw_metadata(monkeypatch, payload)
    path = tmp_path / "bad.tflite"
    embed_tflite_metadata(landmark_path, path, {})
    assert read_metadata(path) is None and load_metadata(path) is None


def test_fields_are_parsed_leniently_and_written_strictly():
    meta = ModelMetadata.from_json(
        json.dumps(
            {
                "family": "yolo",
                "task": "single",
                "input_size": [192, 0],
                "input_layout": "NCHW",
                "normalization": {"mean": [0, 0, 0], "std": [1, 0, 1]},
                "simcc_split_ratio": True,
                "keypoint_names": ["a", 3],
                "future_field": [1, 2],
                "source": "m.pth",
            }
        )
    )
    assert meta == ModelMetadata(task="single", input_layout="NCHW", source="m.pth")
    assert ModelMetadata.from_json("{}") == ModelMetadata()
    assert ModelMetadata.from_json("{broken") is None and ModelMetadata.from_json(b"[]") is None
    good = make_metadata("movenet", "single", (192, 192), "NHWC", (0, 0, 0), (1, 1, 1), "x.tflite", "tflite-fp16")
    assert "keypoint_names" not in good and "source_sha256" not in good  # none given, no such file
    for bad in [
        dict(good, family="yolo"),
        dict(good, normalization={"mean": [0, 0, 0], "std": [1, 0, 1]}),
        dict(good, input_size=[192]),
        {k: v for k, v in good.items() if k != "task"},
    ]:
        with pytest.raises(ValueError, match="edgepose metadata"):
            converter.metadata_json(bad)


def test_embedding_refuses_files_that_are_not_models(tmp_path, landmark_path):
    (tmp_path / "x.tflite").write_bytes(b"garbage garbage")
    with pytest.raises(ModelError, match="not a TFLite model"):
        embed_tflite_metadata(tmp_path / "x.tflite", tmp_path / "y.tflite", landmark_meta(landmark_path))
    (tmp_path / "x.onnx").write_bytes(b"\x08\x08\x12garbage")
    with pytest.raises(ModelError, match="onnx cannot load"):
        embed_onnx_metadata(tmp_path / "x.onnx", tmp_path / "y.onnx", landmark_meta(landmark_path))
    with pytest.raises(ModelError, match="cannot read model file"):
        embed_metadata(tmp_path / "missing.tflite", tmp_path / "y.tflite", landmark_meta(landmark_path))
    assert not (tmp_path / "y.tflite").exists() and not (tmp_path / "y.onnx").exists()


# --- Metadata in use: normalization, family, shape-matched outputs ----------------------------------


class FakeBackend(Backend):
    def __init__(self, inputs, outputs, path=None):
        self.name, self.threads, self.path = "fake", 1, path
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)

    def run(self, inputs):
        raise AssertionError("not for running")


class Reordered(Backend):
    """A real backend whose outputs come back in another order, with an extra one where `order` has
    None (as an int8 conversion may give them)."""

    def __init__(self, inner: Backend, order: list[int | None]):
        self.inner, self.order = inner, order
        self.name, self.threads, self.path = inner.name, inner.threads, inner.path

    @property
    def inputs(self):
        return self.inner.inputs

    @property
    def outputs(self):
        extra = TensorSpec("extra", (1, 7), F32)
        return tuple(extra if i is None else self.inner.outputs[i] for i in self.order)

    def _reorder(self, outs: list[np.ndarray]) -> list[np.ndarray]:
        n = outs[0].shape[0]
        return [np.zeros((n, 7), np.float32) if i is None else outs[i] for i in self.order]

    def run(self, inputs):
        return self._reorder(self.inner.run(inputs))

    def run_batch(self, inputs):
        return self._reorder(self.inner.run_batch(inputs))


def test_landmark_outputs_are_found_by_shape(landmark_path, one_person_photo):
    rgb = load_image(one_person_photo)
    roi = Roi(330.0, 230.0, 400.0, 400.0, 0.1)
    results = []
    for order in (None, [4, 3, None, 1, 2, 0]):
        backend = open_backend(landmark_path, "litert", threads=1)
        model = BlazePoseLandmark(backend if order is None else Reordered(backend, order))
        outputs = model.backend.run_batch(model.preprocess(rgb, [roi, roi]))
        results.append(model.decode(outputs, [roi, roi], rgb.shape[1], rgb.shape[0]))
    for (ka, sa, ra, wa), (kb, sb, rb, wb) in zip(*results, strict=True):
        assert np.array_equal(ka, kb) and sa == sb and ra == rb
        assert wa is not None and np.array_equal(wa, wb)  # the world landmarks too (117 values, 2-D)
    assert results[0][0][1] > 0.9  # the person is there: the comparison is not between two empty crops


def test_detector_and_movenet_outputs_are_found_by_shape(detector_path, movenet_path, one_person_photo):
    rgb = load_image(one_person_photo)
    plain = BlazePoseDetector(open_backend(detector_path, "litert", threads=1))
    swapped = BlazePoseDetector(Reordered(open_backend(detector_path, "litert", threads=1), [1, 0]))
    roi = Roi.letterbox_to(rgb.shape[1], rgb.shape[0], 1, 1)
    a = plain.decode(plain.backend.run(plain.preprocess(rgb, [roi])), [roi])
    b = swapped.decode(swapped.backend.run(swapped.preprocess(rgb, [roi])), [roi])
    assert len(a) >= 1 and [p.score for p in a] == [p.score for p in b]
    assert all(np.array_equal(p.keypoints, q.keypoints) for p, q in zip(a, b))
    movenet = MoveNetSinglePose(Reordered(open_backend(movenet_path, "litert", threads=1), [None, 0]))
    square = SquareRoi.letterbox(rgb.shape[1], rgb.shape[0])
    outputs = movenet.backend.run(movenet.preprocess(rgb, [square]))
    kps = movenet.decode(outputs, [square], rgb.shape[1], rgb.shape[0])[0].keypoints
    reference = MoveNetSinglePose(open_backend(movenet_path, "litert", threads=1))
    outputs = reference.backend.run(reference.preprocess(rgb, [square]))
    expected = reference.decode(outputs, [square], rgb.shape[1], rgb.shape[0])[0].keypoints
    assert np.array_equal(kps, expected)


def test_normalization_comes_from_metadata_and_defaults_are_unchanged(tmp_path, landmark_path):
    rgb = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    roi = Roi(40.0, 30.0, 80.0, 80.0)
    float_in = TensorSpec("input", (1, 192, 192, 3), F32)
    movenet = MoveNetSinglePose(FakeBackend([float_in], [TensorSpec("o", (1, 1, 17, 3), F32)]))
    (raw,) = movenet.preprocess(rgb, [roi])
    pixels = movenet._crops._batch[:1]
    assert np.array_equal(raw, pixels.astype(np.float32))  # float MoveNet: pixels as they are
    half = ModelMetadata(normalization=Normalization((127.5,) * 3, (127.5,) * 3))
    movenet = MoveNetSinglePose(FakeBackend([float_in], [TensorSpec("o", (1, 1, 17, 3), F32)]), metadata=half)
    (x,) = movenet.preprocess(rgb, [roi])
    assert x == pytest.approx((pixels.astype(np.float64) - 127.5) / 127.5, abs=1e-6)

    # BlazePose: the default is bit-identical to the hand-written pixels / 255 it replaced.
    landmarks = BlazePoseLandmark(open_backend(landmark_path, "litert", threads=1))
    (x,) = landmarks.preprocess(rgb, [roi])
    assert np.array_equal(x, landmarks._crops._batch[:1].astype(np.float32) * (1.0 / 255.0))
    # ... and a converted file's metadata is read from the file itself.
    path = tmp_path / "landmarks_unit_range.tflite"
    embed_tflite_metadata(
        landmark_path, path, dict(landmark_meta(landmark_path), normalization={"mean": [0, 0, 0], "std": [1, 1, 1]})
    )
    landmarks = BlazePoseLandmark(open_backend(path, "litert", threads=1))
    (x,) = landmarks.preprocess(rgb, [roi])
    assert np.array_equal(x, landmarks._crops._batch[:1].astype(np.float32))


def test_detector_default_normalization_is_unchanged(detector_path):
    rgb = np.random.default_rng(3).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    rois = [Roi.letterbox_to(120, 90, 1, 1), Roi(30.0, 30.0, 50.0, 50.0)]
    detector = BlazePoseDetector(open_backend(detector_path, "litert", threads=1))
    (x,) = detector.preprocess(rgb, rois)
    assert np.array_equal(x, detector._crops._batch[:2].astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0))
    unit = ModelMetadata(normalization=Normalization((0.0,) * 3, (255.0,) * 3))
    other = BlazePoseDetector(open_backend(detector_path, "litert", threads=1), metadata=unit)
    (y,) = other.preprocess(rgb, rois)
    assert y == pytest.approx(detector._crops._batch[:2] / 255.0, abs=1e-6)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def test_cli_recognises_converted_files_by_metadata_or_tensors(
    cli, tmp_path, landmark_path, detector_path, one_person_photo, monkeypatch
):
    # A detector outside the registry: refused as a detector, by its metadata or by its tensors alone.
    tagged = tmp_path / "my_detector.tflite"
    half = (127.5, 127.5, 127.5)
    meta = make_metadata("blazepose-detector", "detector", (224, 224), "NHWC", half, half, detector_path, "tflite-fp16")
    embed_tflite_metadata(detector_path, tagged, meta)
    untagged = tmp_path / "other_detector.tflite"
    shutil.copy(detector_path, untagged)
    for path in (tagged, untagged):
        res = cli("run", one_person_photo, "--model", path)
        assert res.returncode == 2 and res.stdout == ""
        assert_one_error_line(res, path.name, "is a person detector, not a pose model")
    # Landmarks whose metadata is broken JSON still run: recognised by their tensors.
    write_raw_metadata(monkeypatch, b'{"family": "blazepose", "task"')
    broken = tmp_path / "landmarks_broken_meta.tflite"
    embed_tflite_metadata(landmark_path, broken, {})
    res = cli("run", one_person_photo, "--model", broken)
    assert res.returncode == 0, res.stderr
    (frame,) = json_lines(res.stdout)
    assert len(frame["poses"]) == 1 and len(frame["poses"][0]["keypoints"]) == 33
