"""ONNX -> TF SavedModel + TFLite fp32/fp16, with onnx2tf (flags and offline workarounds built in).

- A NHWC input (MoveNet, BlazePose) must be named with -kt, or onnx2tf reads it as NCHW and transposes.
- With -kt on a 3-channel 4-D input, onnx2tf wants a calibration sample it would download; it is made
  here from the user's real calibration images and put in onnx2tf's working directory.
- -coion keeps the ONNX input/output names in the TFLite file (the runtime still matches by shape).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from edgepose.converters.onnx_tidy import INPUT_NAME, onnx_io
from edgepose.converters.toolchain import missing_extra, run_tool
from edgepose.errors import ModelError

# The file name onnx2tf looks for before downloading its own sample.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_onnx2tf_sample(images: list[np.ndarray], folder: Path) -> None:
    """20x128x128x3 float32 in [0, 1] from real RGB images (repeated if there are fewer than 20)."""
    from PIL import Image

    sample = np.zeros((20, 128, 128, 3), dtype=np.float32)
    for i in range(20):
        rgb = images[i % len(images)]
        sample[i] = np.asarray(Image.fromarray(rgb).resize((128, 128), Image.BILINEAR), dtype=np.float32) / 255.0
    np.save(folder / ONNX2TF_SAMPLE, sample)


def onnx_to_tflite(onnx_path: Path, work: Path, images: list[np.ndarray]) -> dict[str, Path]:
    """Run onnx2tf; returns {"saved_model": dir, "tflite-fp32": file, "tflite-fp16": file}."""
    if importlib.util.find_spec("onnx2tf") is None:
        raise missing_extra("onnx2tf")
    out = work / "onnx2tf"
    inputs, _ = onnx_io(onnx_path)
    shape = inputs[0][1]
    nhwc = len(shape) == 4 and shape[-1] in (1, 3) and shape[1] not in (1, 3)
    write_onnx2tf_sample(images, work)
    args = ["-m", "onnx2tf", "-i", str(onnx_path), "-o", str(out), "-osd", "-coion", "-n"]
    if nhwc:
        args += ["-kt", INPUT_NAME]
    run_tool(args, work / "onnx2tf.log", "onnx2tf", cwd=work)
    stem = onnx_path.stem
    files = {
        "saved_model": out,
        "tflite-fp32": out / f"{stem}_float32.tflite",
        "tflite-fp16": out / f"{stem}_float16.tflite",
    }
    for key, path in files.items():
        if not path.exists():
            raise ModelError(f"onnx2tf finished without writing {path.name} ({key})")
    return files
