"""RTMPose in the runtime: crops, SimCC decoding back to image pixels, output matching by shape, and
`edgepose run --model rtmpose.onnx` end to end with a synthetic model (no trained weights needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from edgepose.assets.metadata import ModelMetadata, Normalization
from edgepose.assets.registry import ResolvedModel, resolve_model
from edgepose.bindings import Backend, TensorSpec, dequantize, open_backend, to_input_dtype
from edgepose.errors import ModelError
from edgepose.geometry import Roi
from edgepose.image import load_image
from edgepose.keypoints import COCO17_KEYPOINTS
from edgepose.models.base import PersonDetection
from edgepose.models.families import recognise as _guess_family
from edgepose.models.person_detector import BlazePoseDetector
from edgepose.models.rtmpose import DEFAULT_NORMALIZATION, RTMPose, box_roi, decode_simcc, find_simcc_outputs
from edgepose.pipelines.build import model_family
from edgepose.pipelines.topdown import PersonFinder, TopDownParams
from edgepose.results import Timings
from tests.conftest import Cli, cli_env, json_lines

W, H, SPLIT, K = 192, 256, 2.0, 17
F32 = np.dtype(np.float32)


class FakeBackend(Backend):
    """Tensor specs without a model: for the code that only looks at shapes."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], path: Path | None = None):
        self.name, self.threads, self.path = "fake", 1, path
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)

    def run(self, inputs):
        raise AssertionError("not for running")


def image_input(layout: str, dtype=F32, scale: float = 0.0, zero_point: int = 0) -> TensorSpec:
    shape = (1, 3, H, W) if layout == "NCHW" else (1, H, W, 3)
    return TensorSpec("input", shape, np.dtype(dtype), scale, zero_point)


def simcc_specs(dtype=F32, scale: float = 0.0, zero_point: int = 0, split: float = SPLIT) -> list[TensorSpec]:
    return [
        TensorSpec("simcc_x", (1, K, int(W * split)), np.dtype(dtype), scale, zero_point),
        TensorSpec("simcc_y", (1, K, int(H * split)), np.dtype(dtype), scale, zero_point),
    ]


def peaks(bins: np.ndarray, length: int, height: float = 0.8, sigma: float = 4.0) -> np.ndarray:
    """NxKxlength Gaussians with their maximum exactly at `bins` (NxK)."""
    grid = np.arange(length, dtype=np.float32)
    return (height * np.exp(-((grid - bins[..., None]) ** 2) / (2 * sigma**2))).astype(np.float32)


# --- SimCC decoding ---------------------------------------------------------------------------------


def test_decode_follows_mmpose_get_simcc_maximum():
    x = np.zeros((1, 3, 8), np.float32)
    y = np.zeros((1, 3, 10), np.float32)
    x[0, 0, 5], y[0, 0, 7] = 0.9, 0.4  # score: the smaller maximum, not the larger
    x[0, 1, 2], y[0, 1, 3] = 0.3, 0.6
    x[0, 2] -= 1.0  # every value negative: the keypoint is put at -1 before the split division
    y[0, 2, 4] = 0.5
    locs, scores = decode_simcc(x, y, 2.0)
    assert locs[0].tolist() == [[2.5, 3.5], [1.0, 1.5], [-0.5, -0.5]]
    assert scores[0].tolist() == pytest.approx([0.4, 0.3, -1.0])


def test_box_roi_pads_then_fixes_the_aspect_like_mmpose():
    wide = box_roi(10, 20, 110, 60, aspect=0.75)  # 100x40 -> 125x50 -> height grows to 125/0.75
    assert (wide.cx, wide.cy, wide.width) == (60, 40, 125)
    assert wide.height == pytest.approx(125 / 0.75)
    tall = box_roi(0, 0, 30, 200, aspect=0.75)  # 30x200 -> 37.5x250 -> width grows to 187.5
    assert (tall.width, tall.height, tall.rotation) == (187.5, 250, 0.0)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("quantized", [False, True])
def test_peaks_map_back_to_the_image_points_they_came_from(layout, quantized):
    """A dot drawn in the image is found in the crop; a SimCC peak at that crop pixel decodes onto the
    dot (within the crop's resolution), for a non-square box off the image centre."""
    in_spec = image_input(layout, np.int8, 0.0186, -3) if quantized else image_input(layout)
    out_specs = simcc_specs(np.int8, 1 / 127, 0) if quantized else simcc_specs()
    model = RTMPose(FakeBackend([in_spec], out_specs[::-1]))  # y before x: matched by shape
    roi = box_roi(333.0, 41.0, 401.0, 215.0, model.aspect)  # 68x174 px near the top right of 480x300
    assert roi.width / roi.height == pytest.approx(0.75) and roi.width != roi.height
    rng = np.random.default_rng(3)
    dots = np.stack([rng.uniform(roi.cx - 30, roi.cx + 30, K), rng.uniform(25, 230, K)], axis=1).astype(int)
    bins = np.zeros((2, K), np.float32)
    for k, (px, py) in enumerate(dots):
        rgb = np.zeros((300, 480, 3), np.uint8)
        rgb[py, px] = 255
        (x,) = model.preprocess(rgb, [roi])
        plane = (x[0, 0] if layout == "NCHW" else x[0, ..., 0]).astype(np.float32)
        assert plane.shape == (H, W)
        cy, cx = np.unravel_index(plane.argmax(), plane.shape)
        bins[:, k] = cx * SPLIT, cy * SPLIT
    simcc_x, simcc_y = peaks(bins[0][None], int(W * SPLIT)), peaks(bins[1][None], int(H * SPLIT))
    outputs = [simcc_y, simcc_x]
    if quantized:
        outputs = [to_input_dtype(o, s) for o, s in zip(outputs, out_specs[::-1])]
    ((kps, score, _, _),) = model.decode(outputs, [roi], 480, 300)
    # The dot's centre is at pixel + 0.5; a crop pixel spans roi.height / H = 0.85 image pixels.
    err = np.abs(kps[:, :2] - (dots + 0.5))
    assert err.max() <= 0.5 * roi.height / H + 0.05, err.max()
    assert kps[:, 2] == pytest.approx(0.8, abs=0.01) and score == pytest.approx(0.8, abs=0.01)


def test_crop_normalizes_with_metadata_or_rtmpose_default_and_quantizes():
    rgb = np.full((40, 30, 3), (200, 100, 50), np.uint8)
    roi = Roi(15, 20, 30, 40)
    default = RTMPose(FakeBackend([image_input("NHWC")], simcc_specs()))
    (x,) = default.preprocess(rgb, [roi])
    expected = (np.array([200, 100, 50]) - DEFAULT_NORMALIZATION.mean) / DEFAULT_NORMALIZATION.std
    assert x.dtype == np.float32 and x.shape == (1, H, W, 3)
    assert x[0, 128, 96] == pytest.approx(expected, abs=1e-5)
    meta = ModelMetadata(normalization=Normalization((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)))
    q_spec = image_input("NCHW", np.int8, 1 / 255, -128)
    quant = RTMPose(FakeBackend([q_spec], simcc_specs()), meta)
    (q,) = quant.preprocess(rgb, [roi, roi])
    assert q.dtype == np.int8 and q.shape == (2, 3, H, W)
    assert dequantize(q, q_spec)[1, :, 128, 96] == pytest.approx([200 / 255, 100 / 255, 50 / 255], abs=1 / 255)


def test_outputs_are_found_by_shape_with_the_split_derived_or_given():
    extra = TensorSpec("heatmap", (1, K, 64, 48), F32)
    x, y = simcc_specs(split=3.0)
    assert find_simcc_outputs((extra, y, x), W, H) == (2, 1, 3.0)
    assert find_simcc_outputs((x, y), W, H, 3.0) == (0, 1, 3.0)
    with pytest.raises(ModelError, match="no SimCC outputs"):
        find_simcc_outputs((x, y), W, H, 2.0)  # the metadata's split must fit the shapes
    # A square input gives both axes one shape: the names decide, else mmpose's order (x first).
    sx, sy = TensorSpec("out/simcc_x", (1, K, 512), F32), TensorSpec("out/simcc_y", (1, K, 512), F32)
    assert find_simcc_outputs((sy, sx), 256, 256)[:2] == (1, 0)
    a, b = TensorSpec("a", (1, K, 512), F32), TensorSpec("b", (1, K, 512), F32)
    assert find_simcc_outputs((a, b), 256, 256)[:2] == (0, 1)


def test_model_facts_from_metadata():
    names = tuple(f"k{i}" for i in range(K))
    meta = ModelMetadata(keypoint_names=names, simcc_split_ratio=2.0, input_layout="NCHW")
    assert RTMPose(FakeBackend([image_input("NCHW")], simcc_specs()), meta).keypoint_names == names
    plain = RTMPose(FakeBackend([image_input("NHWC")], simcc_specs()))
    assert plain.keypoint_names == COCO17_KEYPOINTS and plain.layout == "NHWC" and plain.split == 2.0
    with pytest.raises(ModelError, match="not an RTMPose model"):
        RTMPose(FakeBackend([TensorSpec("input", (1, 256, 192), F32)], simcc_specs()))


def test_detection_and_tracking_rois_are_upright_3_to_4_person_boxes():
    model = RTMPose(FakeBackend([image_input("NCHW")], simcc_specs()))
    person = PersonDetection(0.9, (0, 0, 1, 1), np.array([[100.0, 200.0], [130.0, 160.0], [0, 0], [0, 0]]))
    roi = model.roi_for_detection(person)  # body circle radius 50 -> a 100 px square person box
    assert (roi.cx, roi.cy, roi.rotation) == (100.0, 200.0, 0.0)
    assert (roi.width, roi.height) == pytest.approx((125.0, 125.0 / 0.75))
    xy = np.array([[50.0, 20.0], [90.0, 220.0], [70.0, 100.0], [60.0, 150.0], [400.0, 400.0]])
    scores = np.array([0.9, 0.8, 0.5, 0.4, 0.1])  # the last one is too weak to count
    nxt = model.tracking_roi(xy, scores)
    assert (nxt.cx, nxt.cy) == (70.0, 120.0)
    assert nxt.height == pytest.approx(200 * 1.25 * 1.25) and nxt.width == pytest.approx(nxt.height * 0.75)
    assert model.tracking_roi(xy, np.array([0.9, 0.8, 0.5, 0.1, 0.1])) is None  # three keypoints: lost


# --- Recognising RTMPose files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "outputs", "expected"),
    [
        ([image_input("NCHW")], simcc_specs(), ("rtmpose", "single")),
        ([image_input("NHWC", np.int8, 0.02, 0)], simcc_specs(np.int8, 0.01, 0)[::-1], ("rtmpose", "single")),
        (
            [TensorSpec("i", (1, 224, 224, 3), F32)],
            [TensorSpec("s", (1, 2254, 1), F32), TensorSpec("r", (1, 2254, 12), F32)],
            ("person-detector", "detector"),
        ),
        (
            [TensorSpec("i", (1, 256, 256, 3), F32)],
            [TensorSpec("p", (1, 1), F32), TensorSpec("l", (1, 195), F32)],
            ("blazepose", "single"),
        ),
        (
            [TensorSpec("i", (1, 481, 641, 3), F32)],
            [TensorSpec(n, (1, 31, 41, c), F32) for n, c in (("m", 64), ("h", 17), ("s", 34))],
            ("posenet", "multi"),
        ),
        ([TensorSpec("i", (1, 192, 192, 3), F32)], [TensorSpec("o", (1, 1, 17, 3), F32)], ("movenet", "single")),
    ],
)
def test_guess_family_without_metadata(inputs, outputs, expected):
    assert _guess_family(FakeBackend(inputs, outputs)) == expected


def _file_family(path, backend):
    return model_family(ResolvedModel(path, str(path), None), backend)


def test_metadata_family_comes_before_the_tensors(tmp_path):
    from edgepose.converters.metadata import embed_onnx_metadata, make_metadata

    path = tmp_path / "looks_like_movenet.onnx"
    _simcc_onnx(path, np.zeros((2, K)))
    backend = FakeBackend([TensorSpec("i", (1, 192, 192, 3), F32)], [TensorSpec("o", (1, 1, 17, 3), F32)], path)
    assert _file_family(path, backend) == _guess_family(backend) == ("movenet", "single")
    embed_onnx_metadata(
        path,
        path,
        make_metadata(
            "rtmpose", "single", (W, H), "NCHW", (0, 0, 0), (1, 1, 1), "x.pth", "onnx-fp32", COCO17_KEYPOINTS, 2.0
        ),
    )
    assert _file_family(path, backend) == ("rtmpose", "single")
    embed_onnx_metadata(
        path,
        path,
        make_metadata(
            "blazepose-detector", "detector", (224, 224), "NHWC", (127.5,) * 3, (127.5,) * 3, "d.tflite", "onnx-fp32"
        ),
    )
    # The family's old name, as earlier converters wrote it, reads as today's.
    assert _file_family(path, backend) == ("person-detector", "detector")


# --- End to end: `edgepose run --model rtmpose.onnx` ------------------------------------------------

# Keypoint peaks (x bins of 384, y bins of 512) in a standing-person layout whose box spans the middle
# 64% of the crop (1 / 1.25^2): the next crop made from these keypoints is the crop itself, so the
# still-image refinement pass lands on the same pixels as the detector's crop.
LAYOUT_U = [0.50, 0.53, 0.47, 0.56, 0.44, 0.62, 0.38, 0.72, 0.28, 0.82, 0.18, 0.58, 0.42, 0.60, 0.40, 0.61, 0.39]
LAYOUT_V = [0.21, 0.18, 0.18, 0.20, 0.20, 0.32, 0.32, 0.45, 0.45, 0.55, 0.55, 0.55, 0.55, 0.69, 0.69, 0.82, 0.82]


def layout_bins() -> np.ndarray:
    """2x17 peak bins: the crop pixel c = bin / 2 is sampled at (c + 0.5) / size of the crop."""
    u, v = np.array(LAYOUT_U), np.array(LAYOUT_V)
    return np.round(np.stack([(u * W - 0.5) * SPLIT, (v * H - 0.5) * SPLIT])).astype(np.float32)


def _simcc_onnx(path: Path, bins: np.ndarray, layout: str = "NCHW") -> None:
    """An RTMPose-shaped ONNX model (symbolic batch) whose SimCC outputs are fixed Gaussians at `bins`."""
    import onnx
    from onnx import TensorProto, helper

    sx, sy = peaks(bins[0][None], int(W * SPLIT)), peaks(bins[1][None], int(H * SPLIT))
    in_shape = ["N", 3, H, W] if layout == "NCHW" else ["N", H, W, 3]
    nodes = [  # zero times the input, so each output has the input's batch size
        helper.make_node("ReduceSum", ["input", "axes"], ["total"], keepdims=1),
        helper.make_node("Reshape", ["total", "col"], ["per_image"]),
        helper.make_node("Mul", ["per_image", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "px"], ["simcc_x"]),
        helper.make_node("Add", ["nothing", "py"], ["simcc_y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_rtmpose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [
            helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["N", K, int(W * SPLIT)]),
            helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["N", K, int(H * SPLIT)]),
        ],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3]),
            helper.make_tensor("col", TensorProto.INT64, [3], [-1, 1, 1]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("px", TensorProto.FLOAT, sx.shape, sx.ravel().tolist()),
            helper.make_tensor("py", TensorProto.FLOAT, sy.shape, sy.ravel().tolist()),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def expected_keypoints(model_path: Path, photo: Path) -> list[np.ndarray]:
    """Where the layout lands in each detected person's crop, found with the API's own pieces."""
    rgb = load_image(photo)
    params = TopDownParams()
    detector = BlazePoseDetector(open_backend(resolve_model("blazepose-detector").path, threads=1))
    people = PersonFinder(detector, params.tile_fraction, params.detection_score).find(rgb, Timings())
    model = RTMPose(open_backend(model_path, threads=1))
    # mmpose's crop ("corners" sampling): crop pixel c is the ROI point c / size.
    u, v = (layout_bins() / SPLIT) / np.array([[W], [H]])
    h, w = rgb.shape[:2]
    found = []
    for person in people:
        x, y = model.roi_for_detection(person).to_image(u, v)
        found.append(np.stack([np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)], axis=1))
    return found


@pytest.mark.parametrize(("layout", "with_metadata"), [("NCHW", True), ("NHWC", True), ("NCHW", False)])
def test_edgepose_run_with_an_rtmpose_onnx_needs_no_other_flag(
    cli, tmp_path, one_person_photo, coco, layout, with_metadata
):
    from edgepose.converters.metadata import RTMPOSE_MEAN, RTMPOSE_STD, embed_onnx_metadata, make_metadata
    from tests.conftest import gt_for

    path = tmp_path / "rtmpose_synthetic.onnx"
    _simcc_onnx(path, layout_bins(), layout)
    if with_metadata:
        meta = make_metadata(
            "rtmpose",
            "single",
            (W, H),
            layout,
            RTMPOSE_MEAN,
            RTMPOSE_STD,
            "rtmpose-t.pth",
            "onnx-fp32",
            COCO17_KEYPOINTS,
            SPLIT,
        )
        embed_onnx_metadata(path, path, meta)
    res = cli("run", one_person_photo, "--model", path)
    assert res.returncode == 0, res.stderr
    (frame,) = json_lines(res.stdout)
    (pose,) = frame["poses"]
    kps = np.array(pose["keypoints"])
    assert kps.shape == (17, 3) and kps[:, 2] == pytest.approx(0.8, abs=1e-3)
    # The keypoints sit where the peaks put them in the crop of the detected person (the real one).
    errors = [np.abs(kps[:, :2] - e).max() for e in expected_keypoints(path, one_person_photo)]
    best = int(np.argmin(errors))
    # Measured 1.24 px (0.17 with "half-pixel" sampling): the still's second pass crops again around the
    # decoded layout, and with mmpose's "corners" sampling that crop sits half a crop pixel further off.
    assert errors[best] < 2.0, errors
    x0, y0, bw, bh = gt_for(coco, one_person_photo.name)[0]["bbox"]
    assert x0 < kps[:, 0].mean() < x0 + bw and y0 < kps[:, 1].mean() < y0 + bh


def test_edgepose_run_multi_mode_with_rtmpose(cli, tmp_path, one_person_photo):
    path = tmp_path / "rtmpose_multi.onnx"
    _simcc_onnx(path, layout_bins())
    res = cli("run", one_person_photo, "--model", path, "--mode", "multi")
    assert res.returncode == 0, res.stderr
    (frame,) = json_lines(res.stdout)
    assert len(frame["poses"]) >= 1 and all(len(p["keypoints"]) == 17 for p in frame["poses"])
