"""Calibration and parity inputs: the exact tensors the runtime feeds a model on real images.

The source model runs through the real edgepose pipeline (single-person and multi-person top-down, so
whole-frame, torso and per-person crops all appear) while a listener on its backend records every input. int8
calibration then sees the same crop, size and normalization the device will, by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgepose.bindings import open_backend
from edgepose.errors import ImageError, ModelError
from edgepose.image import is_image_file, load_image
from edgepose.models.families import FAMILIES
from edgepose.results import Timings

MAX_INPUTS = 200
MAX_IMAGES = 200  # a spread of a bigger folder: calibration saturates long before


class Recorder:
    """Keeps a copy of every input a backend is given (one record per image), each distinct input once."""

    def __init__(self) -> None:
        self.records: list[list[np.ndarray]] = []
        self._seen: set[bytes] = set()

    def __call__(self, inputs: Sequence[np.ndarray]) -> None:
        # Single- and multi-person mode feed the same crop for a lone person: keep each input once.
        for i in range(inputs[0].shape[0]):
            record = [np.array(x[i : i + 1]) for x in inputs]
            key = hashlib.sha1(b"".join(x.tobytes() for x in record)).digest()
            if key not in self._seen:
                self._seen.add(key)
                self.records.append(record)


def image_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise ImageError(f"no images in {folder} (calibration needs real photos: .jpg, .png, ...)")
    return files


def load_images(folder: Path) -> list[np.ndarray]:
    """Every readable image in `folder` (unreadable ones are skipped; none readable is an error)."""
    files = image_files(folder)
    if len(files) > MAX_IMAGES:
        files = [files[i] for i in np.linspace(0, len(files) - 1, MAX_IMAGES).round().astype(int)]
    images = []
    for path in files:
        try:
            images.append(load_image(path))
        except ImageError:
            continue
    if not images:
        raise ImageError(f"none of the images in {folder} could be read")
    return images


def runtime_inputs(
    model: Path, family: str, images: list[np.ndarray], limit: int = MAX_INPUTS
) -> list[list[np.ndarray]]:
    """The inputs the runtime feeds `model` (a file it can run) on `images`, in feeding order."""
    recorder = Recorder()
    if FAMILIES[family].default_task == "detector":
        _run_detector(recorder, model, images)
    else:
        _run_pose_pipelines(recorder, model, images)
    if not recorder.records:
        raise ModelError(f"the runtime fed {model.name} nothing on these images")
    return _spread(recorder.records, limit)


def _run_detector(recorder: Recorder, model: Path, images: list[np.ndarray]) -> None:
    from edgepose.pipelines.topdown import PersonFinder, TopDownParams

    params = TopDownParams()
    backend = open_backend(model)
    try:
        detector = FAMILIES["person-detector"].model_class("detector")(backend)
        finder = PersonFinder(detector, params.tile_fraction, params.detection_score)
        with backend.listening(recorder):
            for rgb in images:
                finder.find(rgb, Timings())
    finally:
        backend.close()


def _run_pose_pipelines(recorder: Recorder, model: Path, images: list[np.ndarray]) -> None:
    from edgepose.estimator import PoseEstimator, PoseEstimatorOptions

    for mode in ("single", "multi"):
        options = PoseEstimatorOptions(model=str(model), mode=mode, smoothing=False)
        with PoseEstimator.create_from_options(options) as estimator, estimator.backend.listening(recorder):
            for rgb in images:
                estimator.estimate(rgb)


def _spread(records: list[list[np.ndarray]], limit: int) -> list[list[np.ndarray]]:
    if len(records) <= limit:
        return records
    keep = np.linspace(0, len(records) - 1, limit).round().astype(int)
    return [records[i] for i in keep]
