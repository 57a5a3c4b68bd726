"""From a resolved model and the options to a running pipeline, through the family table.

The model's (family, task) comes from the registry, else the file's edgepose metadata (written by the
converters), else its tensors; the table then says which model class runs it and which pipeline each
mode uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgepose.assets import sha256_of
from edgepose.assets.integrity import check_content
from edgepose.assets.metadata import ModelMetadata, load_metadata
from edgepose.assets.registry import ResolvedModel, resolve_model
from edgepose.bindings import Backend, open_backend
from edgepose.errors import EdgeposeError, ModelError
from edgepose.models.families import family, pipeline_kind, recognise, recognise_file
from edgepose.pipelines.base import Pipeline
from edgepose.pipelines.bottomup import BottomUp
from edgepose.pipelines.single_crop import SingleCrop
from edgepose.pipelines.topdown import PersonFinder, TopDown, TopDownParams

if TYPE_CHECKING:
    from edgepose.options import PoseEstimatorOptions

NEVER = 1 << 30
DETECTOR_MODEL = "blazepose-detector"
# Options only some pipelines have a use for (all default to True): switched off elsewhere, they are
# refused with one line, never ignored.
PIPELINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "roi_tracking": ("single-crop", "top-down"),
    "refine_stills": ("single-crop", "top-down"),
}


def open_model(
    resolved: ResolvedModel, backend_name: str, threads: int | None, sha256: str | None = None
) -> tuple[Backend, dict]:
    """The backend for a pose model file, and what its model class needs besides it. A family may first
    turn the file into one a stock runtime runs (Coral's PoseNet: its decoder op cut, in a cached copy).

    Before any runtime sees the file: its SHA-256 is checked against `sha256` (the user's pin, full or a
    prefix) and against the content hash its edgepose metadata records (a converted file)."""
    spec = resolved.spec
    path, extra = resolved.path, {}
    check_pin(path, sha256)
    check_content(path)
    fam = spec.family if spec is not None else recognise_file(path)
    if fam is not None:
        path, extra = family(fam).runnable(path)
    backend = open_backend(path, backend_name, threads, cpu_model=spec.cpu_equivalent if spec else None)
    return backend, extra


def model_family(resolved: ResolvedModel, backend: Backend) -> tuple[str, str]:
    """(family, task): the registry's, else the file's metadata, else recognised by its tensors."""
    spec = resolved.spec
    if spec is not None:
        return spec.family, spec.task
    meta = _metadata(resolved.path)
    if meta is not None and meta.family is not None:
        fam = family(meta.family)
        return fam.name, meta.task if meta.task in fam.tasks else fam.default_task
    return recognise(backend)


def build_pipeline(
    resolved: ResolvedModel, backend: Backend, options: PoseEstimatorOptions, extra: dict | None = None
) -> Pipeline:
    """The pipeline for this model and the options' mode (options not valid for it are refused)."""
    fam_name, task = model_family(resolved, backend)
    kind = pipeline_kind(fam_name, task, options.mode, resolved.name)
    check_options(options, kind, resolved.name)
    fam = family(fam_name)
    model = fam.model_class(task)(backend, **(extra or {}))
    people = 1 if options.mode == "single" else options.max_people
    if kind == "single-crop":
        return SingleCrop(model, options.min_pose_score, options.refine_stills, options.roi_tracking)
    if kind == "bottom-up":
        return BottomUp(model, people, options.min_pose_score)
    params = TopDownParams(
        max_people=people,
        min_pose_score=options.min_pose_score,
        refine_stills=options.refine_stills,
        carry_crops=options.roi_tracking,
    )
    if options.mode == "single":
        params.redetect_every = NEVER  # MediaPipe's tracking mode: the detector only when lost
    detector = open_detector(options.backend, options.threads)
    return TopDown(PersonFinder(detector, params.tile_fraction, params.detection_score), model, params)


def check_pin(path: Path, pinned: str | None) -> None:
    if pinned is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(pinned.lower()):
        raise ModelError(f"{path}: SHA-256 {digest[:16]}… does not match the pinned {pinned[:16]}…")


def check_options(options: PoseEstimatorOptions, pipeline: str, model: str) -> None:
    """Refuse an option switched off for a pipeline that has nothing to switch off."""
    for name, pipelines in PIPELINE_OPTIONS.items():
        if pipeline not in pipelines and not getattr(options, name):
            raise EdgeposeError(
                f"{name} applies to {' and '.join(pipelines)} pipelines; {model} in {options.mode} mode runs {pipeline}"
            )


def open_detector(backend_name: str, threads: int | None):
    """The person detector of top-down pipelines: a CPU TFLite model whatever runs the pose model
    (ONNX Runtime, an Edge TPU)."""
    runtime = backend_name if backend_name in ("litert", "tflite-runtime") else "auto"
    resolved = resolve_model(DETECTOR_MODEL)
    backend = open_backend(resolved.path, runtime, threads)
    try:
        return family(resolved.spec.family).model_class("detector")(backend)
    except BaseException:
        backend.close()
        raise


def _metadata(path: Path) -> ModelMetadata | None:
    try:
        return load_metadata(path)
    except ModelError:
        return None  # unreadable now: open_backend read it a moment ago, so let the model code say why
