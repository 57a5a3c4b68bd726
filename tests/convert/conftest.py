"""Converter test fixtures: conversions are slow (10-60 s), so each one runs once per session and the
tests read its output and parity report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgepose.converters.convert import ConversionResult, ConvertOptions, convert

MODEL_DIR = Path(os.environ.get("EDGEPOSE_MODEL_DIR", "../shared/models")).resolve()
os.environ["EDGEPOSE_MODEL_DIR"] = str(MODEL_DIR)  # absolute, for the CLI subprocesses (they run elsewhere)
SHARED = MODEL_DIR.parent
CALIB = SHARED / "data"
MOVENET_INT8 = MODEL_DIR / "movenet_singlepose_lightning_int8.tflite"
BLAZEPOSE_FULL = MODEL_DIR / "blazepose_landmark_full.tflite"
BLAZEPOSE_DETECTOR = MODEL_DIR / "blazepose_detector.tflite"
POSENET = MODEL_DIR / "posenet_mobilenet_v1_075_481_641_quant_decoder.tflite"
RTMPOSE_DIR = SHARED / "rtmpose"


class Conversions:
    """Runs each (source, format, options) conversion once, into a session temp folder."""

    def __init__(self, root: Path):
        self.root = root
        self._done: dict[tuple, ConversionResult] = {}

    def __call__(self, source: Path, to: str, **kwargs) -> ConversionResult:
        key = (str(source), to, tuple(sorted(kwargs.items())))
        if key not in self._done:
            suffix = ".onnx" if to.startswith("onnx") else ".tflite"
            out = self.root / f"{source.stem}-{to}-{len(self._done)}{suffix}"
            opts = ConvertOptions(
                source=source,
                to=to,
                output=out,
                calib=CALIB,
                report=out.with_suffix(".json"),
                progress=lambda m: None,
                **kwargs,
            )
            self._done[key] = convert(opts)
        return self._done[key]


@pytest.fixture(scope="session")
def conversions(tmp_path_factory: pytest.TempPathFactory) -> Conversions:
    for path in (MOVENET_INT8, BLAZEPOSE_FULL, BLAZEPOSE_DETECTOR, POSENET, CALIB, RTMPOSE_DIR):
        assert path.exists(), f"converter tests need {path} (../shared beside the repo)"
    return Conversions(tmp_path_factory.mktemp("converted"))
