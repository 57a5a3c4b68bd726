"""Models by name: file name, SHA-256, official URL, family, input size and keypoint layout.

Resolution order for `resolve_model(x)`:
1. `x` is a path to an existing file -> used as is (no hash to check against).
2. `$EDGEPOSE_MODEL_DIR/<file>`
3. bundled inside the package (`edgepose/assets/models/`: the default model and the person detector,
   so single and multi mode work offline out of the box)
4. `<user cache dir>/models/<file>`
5. download from the official URL into the cache, verified by SHA-256, written atomically.
A file found in 2-4 whose SHA-256 differs from the pinned one is refused.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgepose.assets import cache_dir, sha256_of
from edgepose.errors import ModelError
from edgepose.io.atomic import atomic_path

DEFAULT_MODEL = "movenet-lightning-int8"
_TFHUB = "https://tfhub.dev/google/lite-model/movenet"
_CORAL = "https://raw.githubusercontent.com/google-coral/test_data/master"
# MediaPipe publishes these files only inside its wheels and its GCS bucket; the hashes are those of
# the mediapipe 0.10.14 wheel's copies in ../shared/models.
_MEDIAPIPE = "https://storage.googleapis.com/mediapipe-assets"
_OPENMMLAB = "https://download.openmmlab.com/mmpose/v1/projects"
# The two int8 Lightning hashes are those of the files in ../shared/models. The fp16, Thunder and
# MultiPose files are not available offline here: their hashes are the ones public projects pin for
# the same TF Hub URLs (several independent pins each, with matching byte sizes), not hashed by us.


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    url: str
    sha256: str | None  # None: no hash to check a download against
    family: str  # a row of edgepose.models.families: "movenet", "blazepose", "posenet", "rtmpose", "person-detector"
    task: str  # "single" (one person per input), "multi" (bottom-up) or "detector" (person boxes)
    input_size: tuple[int, int]  # width, height
    precision: str
    source: str
    license: str = "Apache-2.0"
    edgetpu: bool = False
    cpu_equivalent: str | None = None  # for Edge TPU builds: the model to use without a TPU
    # OpenMMLab files carry only the first 8 hex digits of their SHA-256 in their names.
    sha256_prefix: str | None = None

    @property
    def keypoints(self) -> tuple[str, ...]:
        """Keypoint names in output order, as the family table has them."""
        from edgepose.models.families import family

        return family(self.family).layout.keypoints


# One entry a model; the layout reads best aligned, one line per kind of fact.
# fmt: off
REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            name="movenet-lightning-int8",
            filename="movenet_singlepose_lightning_int8.tflite",
            url=f"{_CORAL}/movenet_single_pose_lightning_ptq.tflite",
            sha256="cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105",
            family="movenet", task="single", input_size=(192, 192), precision="int8",
            source="MoveNet SinglePose Lightning v4 int8 (TF Hub; google-coral/test_data)",
        ),
        ModelSpec(
            name="movenet-lightning-int8-edgetpu",
            filename="movenet_singlepose_lightning_int8_edgetpu.tflite",
            url=f"{_CORAL}/movenet_single_pose_lightning_ptq_edgetpu.tflite",
            sha256="25c88b77586f65c5c80d868c0555fb194f2b38c0b55aa491f4a93b7d7da58e78",
            family="movenet", task="single", input_size=(192, 192), precision="int8",
            source="MoveNet SinglePose Lightning v4 int8, Edge TPU build (google-coral/test_data)",
            edgetpu=True, cpu_equivalent="movenet-lightning-int8",
        ),
        ModelSpec(
            name="movenet-lightning-fp16",
            filename="movenet_singlepose_lightning_fp16.tflite",
            url=f"{_TFHUB}/singlepose/lightning/tflite/float16/4?lite-format=tflite",
            sha256="0fac2226112d0371903ca86e3853cec24ef603a0b2f96f589b180f0ebdd135ab",
            family="movenet", task="single", input_size=(192, 192), precision="fp16",
            source="MoveNet SinglePose Lightning v4 float16 (TF Hub / Kaggle google/movenet)",
        ),
        ModelSpec(
            name="movenet-thunder-int8",
            filename="movenet_singlepose_thunder_int8.tflite",
            url=f"{_TFHUB}/singlepose/thunder/tflite/int8/4?lite-format=tflite",
            sha256="b72fed22707cd6fb94b5a248b9bddb9c062b9f445471b4fa263407cf6d222011",
            family="movenet", task="single", input_size=(256, 256), precision="int8",
            source="MoveNet SinglePose Thunder v4 int8 (TF Hub / Kaggle google/movenet)",
        ),
        ModelSpec(
            name="movenet-thunder-fp16",
            filename="movenet_singlepose_thunder_fp16.tflite",
            url=f"{_TFHUB}/singlepose/thunder/tflite/float16/4?lite-format=tflite",
            sha256="41641538679ec79b07d4101e591dda47d098c09af29607674b2a40b8a3798dd3",
            family="movenet", task="single", input_size=(256, 256), precision="fp16",
            source="MoveNet SinglePose Thunder v4 float16 (TF Hub / Kaggle google/movenet)",
        ),
        ModelSpec(
            name="movenet-multipose-lightning",
            filename="movenet_multipose_lightning_fp16.tflite",
            url=f"{_TFHUB}/multipose/lightning/tflite/float16/1?lite-format=tflite",
            sha256="d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd",
            family="movenet", task="multi", input_size=(256, 256), precision="fp16",
            source="MoveNet MultiPose Lightning v1 float16 (TF Hub / Kaggle google/movenet)",
        ),
        ModelSpec(
            name="blazepose-detector",
            filename="blazepose_detector.tflite",
            url=f"{_MEDIAPIPE}/pose_detection.tflite",
            sha256="9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            family="person-detector", task="detector", input_size=(224, 224), precision="fp16",
            source="MediaPipe BlazePose person detector (mediapipe 0.10.14 pose_detection.tflite)",
        ),
        ModelSpec(
            name="blazepose-full",
            filename="blazepose_landmark_full.tflite",
            url=f"{_MEDIAPIPE}/pose_landmark_full.tflite",
            sha256="e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            family="blazepose", task="single", input_size=(256, 256), precision="fp16",
            source="MediaPipe BlazePose GHUM full landmarks, 33 keypoints (mediapipe 0.10.14)",
        ),
        ModelSpec(
            name="posenet-mobilenet",
            filename="posenet_mobilenet_v1_075_481_641_quant_decoder.tflite",
            url=f"{_CORAL}/posenet/posenet_mobilenet_v1_075_481_641_16_quant_decoder.tflite",
            sha256="904b7ebe503c3df88ba5324e62fb4d33c23ee38bff5f2cabe89da27e3fc8296a",
            family="posenet", task="multi", input_size=(641, 481), precision="uint8",
            source="PoseNet MobileNet v1 0.75 multi-person, uint8 (google-coral/test_data); decoder run in numpy",
        ),
        ModelSpec(
            name="posenet-mobilenet-edgetpu",
            filename="posenet_mobilenet_v1_075_481_641_quant_decoder_edgetpu.tflite",
            url=f"{_CORAL}/posenet/posenet_mobilenet_v1_075_481_641_16_quant_decoder_edgetpu.tflite",
            sha256="7df42a2e3cb0e931128d609c02b5b092b25ec90efc213214c349f7f8b3701a9f",
            family="posenet", task="multi", input_size=(641, 481), precision="uint8",
            source="PoseNet MobileNet v1 0.75, Edge TPU build with its decoder op (google-coral/test_data)",
            edgetpu=True, cpu_equivalent="posenet-mobilenet",
        ),
        ModelSpec(
            name="yolox-nano-person",
            filename="yolox_nano_8xb8-300e_humanart-40f6f0d0.zip",
            url=f"{_OPENMMLAB}/rtmposev1/onnx_sdk/yolox_nano_8xb8-300e_humanart-40f6f0d0.zip",
            sha256=None, sha256_prefix="40f6f0d0",
            family="person-detector", task="detector", input_size=(416, 416), precision="fp32",
            source="YOLOX-nano person detector for RTMPose, OpenMMLab ONNX SDK zip (end2end.onnx inside)",
        ),
        ModelSpec(
            name="rtmdet-nano-person",
            filename="rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth",
            url=f"{_OPENMMLAB}/rtmpose/rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth",
            sha256=None, sha256_prefix="05d8511e",
            family="person-detector", task="detector", input_size=(320, 320), precision="fp32",
            source="RTMDet-nano person detector for RTMPose, mmdet checkpoint (for the converters)",
        ),
    )
}
# fmt: on


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    name: str  # registry name, or the path as given
    spec: ModelSpec | None


BUNDLED_DIR = Path(__file__).resolve().parent / "models"


def model_dirs() -> list[tuple[str, Path]]:
    """Where models are looked for, in order, with a label for messages."""
    dirs = []
    env = os.environ.get("EDGEPOSE_MODEL_DIR")
    if env:
        dirs.append(("EDGEPOSE_MODEL_DIR", Path(env).expanduser()))
    dirs.append(("bundled", BUNDLED_DIR))
    dirs.append(("cache", cache_dir()))
    return dirs


def download_dir() -> Path:
    """Where a missing model should go: EDGEPOSE_MODEL_DIR when set, else the user cache."""
    return next(d for label, d in model_dirs() if label != "bundled")


def where(path: Path) -> str:
    """The label of the model folder `path` is in ("bundled", "cache", ...), or "path"."""
    for label, d in model_dirs():
        if path.parent == d:
            return label
    return "path"


def find_local(spec: ModelSpec) -> Path | None:
    """The first copy of `spec` on disk, verified. Raises ModelError on a hash mismatch."""
    for _, d in model_dirs():
        p = d / spec.filename
        if p.is_file():
            verify(p, spec)
            return p
    return None


def verify(path: Path, spec: ModelSpec) -> None:
    if spec.sha256 is None and spec.sha256_prefix is None:
        return
    digest = sha256_of(path)
    pinned = spec.sha256 or spec.sha256_prefix or ""
    if not digest.startswith(pinned):
        raise ModelError(
            f"{path} does not match the pinned SHA-256 of {spec.name} "
            f"(got {digest[:12]}…, expected {pinned[:12]}…); delete it or replace it with the official file"
        )


def resolve_model(model: str | os.PathLike[str], download: bool | None = None) -> ResolvedModel:
    """Find a model by registry name or path, downloading it into the cache if allowed."""
    text = str(model)
    spec = REGISTRY.get(text)
    if spec is None:
        path = Path(text).expanduser()
        if path.is_file():
            return ResolvedModel(path=path, name=text, spec=_spec_for_file(path))
        if path.suffix.lower() in (".tflite", ".onnx") or os.sep in text:
            raise ModelError(f"model file not found: {path}")
        raise ModelError(f"unknown model {text!r}; `edgepose models list` shows the names")

    local = find_local(spec)
    if local is not None:
        return ResolvedModel(path=local, name=spec.name, spec=spec)
    if download is None:
        download = os.environ.get("EDGEPOSE_OFFLINE", "") not in ("1", "true", "yes")
    target_dir = download_dir()
    if not download:
        raise ModelError(_missing_message(spec, target_dir, "offline mode (EDGEPOSE_OFFLINE)"))
    return ResolvedModel(path=_download(spec), name=spec.name, spec=spec)


def _missing_message(spec: ModelSpec, target_dir: Path, why: str) -> str:
    return f"model {spec.name} not available ({why}): put {spec.filename} in {target_dir} (from {spec.url})"


def _download(spec: ModelSpec) -> Path:
    target = cache_dir() / spec.filename
    try:
        # Imported here: urllib.request pulls in http.client and email (~25 ms) that only a download needs.
        import urllib.request

        with urllib.request.urlopen(spec.url, timeout=30) as resp, atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                shutil.copyfileobj(resp, f, 1 << 20)
            verify(tmp, spec)
    except ModelError:
        raise
    except OSError as e:  # URLError, timeouts and disk errors are all OSErrors
        reason = getattr(e, "reason", None) or e
        raise ModelError(_missing_message(spec, download_dir(), f"download failed: {reason}")) from e
    return target


def _spec_for_file(path: Path) -> ModelSpec | None:
    """A registry entry whose file name matches `path`, so a local copy keeps its family and layout."""
    for spec in REGISTRY.values():
        if spec.filename == path.name:
            return spec
    return None


def is_present(spec: ModelSpec) -> Path | None:
    """Like find_local, but reports a hash mismatch as absent instead of raising."""
    try:
        return find_local(spec)
    except ModelError:
        return None
