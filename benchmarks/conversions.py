"""Every conversion the shared files allow, with its parity report and conversion time.

Runs in the workstation venv (pip install ".[convert]" torch==2.13.0); calibration and parity on the
7 shared photos.

    EDGEPOSE_MODEL_DIR=../shared/models python benchmarks/conversions.py --label my-workstation
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED_DATA, fingerprint, save_result  # noqa: E402

MODELS = Path(os.environ.get("EDGEPOSE_MODEL_DIR", SHARED_DATA.parent / "models"))
RTMPOSE = SHARED_DATA.parent / "rtmpose" / "rtmpose_t_seed7_state_dict.npz"
MATRIX = [
    ("movenet_singlepose_lightning_int8.tflite", ["onnx", "onnx-int8", "tflite-fp32", "tflite-fp16", "tflite-int8"]),
    ("blazepose_landmark_full.tflite", ["onnx", "tflite-fp32", "tflite-fp16", "tflite-int8", "onnx-int8"]),
    ("blazepose_detector.tflite", ["onnx", "tflite-fp32", "tflite-int8"]),
    ("posenet_mobilenet_v1_075_481_641_quant_decoder.tflite", ["tflite-int8"]),
    (RTMPOSE, ["onnx", "tflite-fp32", "tflite-fp16", "tflite-int8"]),
]
# Seeded random weights: int8 parity of an untrained RTMPose says little, so no mixed-precision search.
NO_SEARCH = {"rtmpose_t_seed7_state_dict"}


def main() -> None:
    from edgepose.converters.convert import ConvertOptions, convert
    from edgepose.errors import EdgeposeError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="local", help="machine label for the results file name")
    parser.add_argument("--only", default=None, help="run only sources whose name contains this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, formats in MATRIX:
            source = MODELS / source if isinstance(source, str) else source
            if args.only and args.only not in source.name:
                continue
            for fmt in formats:
                out = Path(tmp) / f"{source.stem}-{fmt}{'.onnx' if fmt.startswith('onnx') else '.tflite'}"
                opts = ConvertOptions(
                    source=source,
                    to=fmt,
                    output=out,
                    calib=SHARED_DATA,
                    progress=lambda m: None,
                    mixed_precision=source.stem not in NO_SEARCH,
                )
                try:
                    report = convert(opts).report.to_json()
                except EdgeposeError as e:
                    report = {"source": str(source), "format": fmt, "error": str(e)}
                rows.append(report)
                print(
                    json.dumps(
                        {
                            k: report.get(k)
                            for k in (
                                "source",
                                "format",
                                "mean_px_err",
                                "max_px_err",
                                "mean_oks",
                                "presence_flips",
                                "size_bytes",
                                "invoke_ms",
                                "passed",
                                "error",
                            )
                        }
                        | {
                            "s": report.get("extra", {}).get("conversion_s"),
                            "float_layers": len(report.get("extra", {}).get("float_layers", []) or []),
                        }
                    ),
                    flush=True,
                )
    result = {"machine": fingerprint(), "calibration": str(SHARED_DATA), "conversions": rows}
    out = save_result(result, f"conversions_{args.label}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
