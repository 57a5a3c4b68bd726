"""Shared fixtures: the real weights and photos in ../shared, found through EDGEPOSE_MODEL_DIR.

A missing file fails the run loudly; nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from edgepose.assets.registry import REGISTRY
from edgepose.eval.coco import oks  # noqa: F401  (COCO's OKS, re-exported for the tests)

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("EDGEPOSE_DATA_DIR", REPO.parent / "shared" / "data"))
REQUIRED_MODELS = (
    "movenet-lightning-int8",
    "movenet-lightning-int8-edgetpu",
    "blazepose-detector",
    "blazepose-full",
    "posenet-mobilenet",
    "posenet-mobilenet-edgetpu",
)


# The converter tests need the workstation extra (TensorFlow, onnx2tf, torch). Without it they are not
# collected, and the header says so; .ci/run runs them in their own venv with EDGEPOSE_REQUIRE_CONVERT=1,
# where missing deps are an error.
CONVERT_DEPS = ("torch", "tensorflow", "onnx2tf", "tf2onnx", "onnx", "onnxruntime")
_missing_convert = [m for m in CONVERT_DEPS if importlib.util.find_spec(m) is None]
collect_ignore = ["convert"] if _missing_convert else []


def pytest_report_header(config: pytest.Config) -> str | None:
    if _missing_convert:
        return f"converter tests (tests/convert) not collected: {', '.join(_missing_convert)} missing, see .ci/run"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    if _missing_convert and os.environ.get("EDGEPOSE_REQUIRE_CONVERT") == "1":
        raise pytest.UsageError(f"EDGEPOSE_REQUIRE_CONVERT=1 but {', '.join(_missing_convert)} missing")
    model_dir = os.environ.get("EDGEPOSE_MODEL_DIR")
    if not model_dir:
        raise pytest.UsageError("set EDGEPOSE_MODEL_DIR to the folder with the real model files (../shared/models)")
    missing = [REGISTRY[n].filename for n in REQUIRED_MODELS if not (Path(model_dir) / REGISTRY[n].filename).is_file()]
    if missing:
        raise pytest.UsageError(f"missing model files in EDGEPOSE_MODEL_DIR={model_dir}: {', '.join(missing)}")
    if not (DATA_DIR / "coco" / "test_coco.json").is_file():
        raise pytest.UsageError(f"missing test data: {DATA_DIR}/coco/test_coco.json (set EDGEPOSE_DATA_DIR)")


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return Path(os.environ["EDGEPOSE_MODEL_DIR"])


@pytest.fixture(scope="session")
def movenet_path(model_dir: Path) -> Path:
    return model_dir / REGISTRY["movenet-lightning-int8"].filename


@pytest.fixture(scope="session")
def edgetpu_path(model_dir: Path) -> Path:
    return model_dir / REGISTRY["movenet-lightning-int8-edgetpu"].filename


@pytest.fixture(scope="session")
def coco() -> dict:
    return json.loads((DATA_DIR / "coco" / "test_coco.json").read_text())


@pytest.fixture(scope="session")
def one_person_photo() -> Path:
    return DATA_DIR / "coco" / "000000000785.jpg"


@pytest.fixture(scope="session")
def demo_video() -> Path:
    return DATA_DIR / "video" / "demo.mp4"


@pytest.fixture(scope="session")
def estimator():
    from edgepose import PoseEstimator

    with PoseEstimator.create_from_model("movenet-lightning-int8", threads=2) as est:
        yield est


def gt_for(coco: dict, file_name: str) -> list[dict]:
    image_id = next(i["id"] for i in coco["images"] if i["file_name"] == file_name)
    return [a for a in coco["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]


def pose_xy(pose) -> np.ndarray:
    return np.array([(k.x, k.y) for k in pose.keypoints])


# The CLI as a user runs it: a real subprocess (shared by test_cli, test_bad_input, test_bundled, ...).
def cli_env(model_dir: Path, cache_home: Path) -> dict[str, str]:
    """The environment of every CLI subprocess.

    The model dir is the real one; the user cache is an empty folder of our own, so `models list`
    and model resolution see exactly what is in model_dir; offline, so a missing model never
    downloads. COLUMNS/LINES are dropped: stderr is then a pipe with Rich's default width, as when a
    user redirects it to a log, which is where a wrapped "one line" error would break parsing.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(EDGEPOSE_MODEL_DIR=str(model_dir), XDG_CACHE_HOME=str(cache_home), EDGEPOSE_OFFLINE="1")
    return env


@dataclass(frozen=True)
class Cli:
    """Runs `python -m edgepose.cli ARGS` with a fixed environment."""

    env: dict[str, str] = field(repr=False)  # keep the whole environment out of failure reports

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgepose.cli", *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]
