"""RTMPose without the mm* stack: seeded mmpose weights (.npz) -> end2end-style ONNX -> TFLite, checked
against the PyTorch rebuild, and run by the runtime through the metadata."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from edgepose.assets.metadata import load_metadata
from edgepose.bindings import open_backend
from edgepose.converters.rtmpose_weights import rtmpose_from_checkpoint
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions

from .conftest import RTMPOSE_DIR

WEIGHTS = RTMPOSE_DIR / "rtmpose_t_seed7_state_dict.npz"


def _torch_reference() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    io = np.load(RTMPOSE_DIR / "rtmpose_t_seed7_io.npz")
    x = io["input"][:1].astype(np.float32)
    with torch.no_grad():
        sx, sy = rtmpose_from_checkpoint(WEIGHTS)(torch.from_numpy(x))
    return x, sx.numpy(), sy.numpy()


def test_onnx_export_has_the_end2end_contract_and_matches_torch(conversions):
    r = conversions(WEIGHTS, "onnx")
    session = ort.InferenceSession(str(r.output), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape, inp.type) == ("input", [1, 3, 256, 192], "tensor(float)")
    assert {o.name: o.shape for o in session.get_outputs()} == {"simcc_x": [1, 17, 384], "simcc_y": [1, 17, 512]}
    x, sx, sy = _torch_reference()
    ox, oy = session.run(["simcc_x", "simcc_y"], {"input": x})
    assert np.abs(ox - sx).max() < 1e-4 and np.abs(oy - sy).max() < 1e-4
    meta = load_metadata(r.output)
    assert meta.family == "rtmpose" and meta.input_layout == "NCHW" and meta.simcc_split_ratio == 2.0
    assert r.report.passed and r.report.mean_px_err == 0.0


def test_tflite_fp32_matches_torch(conversions):
    r = conversions(WEIGHTS, "tflite-fp32")
    backend = open_backend(r.output)
    assert backend.inputs[0].shape == (1, 256, 192, 3)  # onnx2tf's NHWC
    x, sx, sy = _torch_reference()
    outs = backend.run([x.transpose(0, 2, 3, 1)])
    by_len = {o.shape[-1]: o for o in outs}
    err = max(np.abs(by_len[384] - sx).max(), np.abs(by_len[512] - sy).max())
    assert err < 1e-3, err
    assert r.report.passed and r.report.mean_oks == 1.0, r.report
    assert load_metadata(r.output).input_layout == "NHWC"


def test_converted_rtmpose_runs_with_no_other_flag(conversions, one_person_photo):
    path = conversions(WEIGHTS, "tflite-fp32").output
    with PoseEstimator.create_from_options(PoseEstimatorOptions(model=str(path))) as est:
        poses = est.estimate(one_person_photo)
    # Random weights: where the keypoints land means nothing, but they are COCO-17 inside the person's crop.
    assert len(poses) == 1 and len(poses[0].keypoints) == 17
    assert [k.name for k in poses[0].keypoints][:3] == ["nose", "left_eye", "right_eye"]


def test_openmmlab_sdk_zip_source(conversions, tmp_path):
    """An SDK zip (end2end.onnx + json files in one folder, as OpenMMLab publishes them) converts too."""
    import zipfile

    from edgepose.converters.convert import ConvertOptions, convert

    from .conftest import CALIB

    sdk = tmp_path / "rtmpose-t-sdk.zip"
    with zipfile.ZipFile(sdk, "w") as z:
        z.write(conversions(WEIGHTS, "onnx").output, "rtmpose-ort/end2end.onnx")
        for name in ("pipeline.json", "deploy.json", "detail.json"):
            z.writestr(f"rtmpose-ort/{name}", "{}")
    out = tmp_path / "from_sdk.onnx"
    r = convert(ConvertOptions(source=sdk, to="onnx", output=out, calib=CALIB, progress=lambda m: None))
    assert r.report.passed and r.report.mean_px_err == 0.0 and load_metadata(out).family == "rtmpose"
    x, sx, _ = _torch_reference()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["simcc_x"], {"input": x})[0]
    assert np.abs(got - sx).max() < 1e-4
