"""COCO keypoint accuracy (AP, AR, mean OKS) of any pose model the runtime can run.

    from edgepose.eval.coco import evaluate
    result = evaluate(PoseEstimatorOptions(model="movenet-lightning-int8", min_pose_score=0.0),
                      Path("person_keypoints_val2017.json"), Path("val2017"))
    print(result.ap, result.mean_oks)

AP/AR come from pycocotools' COCOeval(iouType="keypoints") on the poses converted to the COCO results
format; the mean OKS is each annotated person's best match among the poses found in their image, a number
that stays meaningful on a handful of photos where AP jumps in big steps.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose import geometry
from edgepose.errors import EdgeposeError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.image import load_image
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS, BLAZEPOSE_TO_COCO17, COCO17_KEYPOINTS, COCO17_SIGMAS
from edgepose.results import Pose

SCHEMA = "edgepose-eval/1"
COMPARE_SCHEMA = "edgepose-eval-compare/1"
PERSON_CATEGORY = 1
INSTALL_HINT = "edgepose eval needs pycocotools: pip install 'edgepose[eval]'"
METRICS = ("ap", "ap50", "ap75", "ar", "mean_oks")

Progress = Callable[[int, int], None]


def require_pycocotools() -> None:
    """Raise EdgeposeError with the install line when pycocotools is missing."""
    try:
        import pycocotools.coco  # noqa: F401
        import pycocotools.cocoeval  # noqa: F401
    except ImportError as e:
        raise EdgeposeError(INSTALL_HINT) from e


# Ground truth -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class CocoKeypoints:
    """A validated COCO person-keypoints annotation file, reduced to what the evaluation reads."""

    path: Path
    images: tuple[CocoImage, ...]
    annotations: tuple[dict[str, Any], ...]  # person annotations, num_keypoints and iscrowd filled in

    @property
    def people(self) -> list[dict[str, Any]]:
        """The annotations that count for the mean OKS (the ones COCOeval does not ignore)."""
        return [a for a in self.annotations if a["num_keypoints"] > 0 and not a["iscrowd"]]

    def dataset(self) -> dict[str, Any]:
        """A fresh pycocotools dataset dict (COCOeval writes into the annotations it is given)."""
        return {
            "images": [{"id": i.id, "file_name": i.file_name} for i in self.images],
            "annotations": copy.deepcopy(list(self.annotations)),
            "categories": [{"id": PERSON_CATEGORY, "name": "person", "keypoints": list(COCO17_KEYPOINTS)}],
        }


def load_annotations(path: str | Path) -> CocoKeypoints:
    """Read and check a COCO keypoints file; anything unusable is one EdgeposeError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgeposeError(f"{path}: no such annotation file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise EdgeposeError(f"{path}: not a COCO annotation file (not UTF-8 text)") from e
    except json.JSONDecodeError as e:
        raise EdgeposeError(f"{path}: not a COCO annotation file (invalid JSON at line {e.lineno}: {e.msg})") from e
    except OSError as e:
        raise EdgeposeError(f"{path}: cannot read ({e.strerror or e})") from e

    def bad(why: str) -> EdgeposeError:
        return EdgeposeError(f"{path}: not a COCO keypoints file ({why})")

    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise bad("no 'images' list")
    if not isinstance(data.get("annotations"), list):
        raise bad("no 'annotations' list")
    images: dict[int, CocoImage] = {}
    for n, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not _is_int(img.get("id")) or not isinstance(img.get("file_name"), str):
            raise bad(f"images[{n}] needs an integer 'id' and a 'file_name'")
        if img["id"] in images:
            raise bad(f"image id {img['id']} appears twice")
        w, h = img.get("width"), img.get("height")
        images[img["id"]] = CocoImage(img["id"], img["file_name"], w if _is_int(w) else None, h if _is_int(h) else None)

    annotations = []
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise bad(f"annotations[{n}] is not an object")
        if ann.get("category_id", PERSON_CATEGORY) != PERSON_CATEGORY:
            continue  # other categories of a full COCO file: not ours to score
        where = f"annotation {ann.get('id', f'#{n}')}"
        kps = ann.get("keypoints")
        if not isinstance(kps, list) or not all(_is_number(v) for v in kps):
            raise bad(f"{where} has no 'keypoints' list")
        if len(kps) != 3 * len(COCO17_KEYPOINTS):
            raise bad(f"{where} has {len(kps)} keypoint values; COCO-17 needs {3 * len(COCO17_KEYPOINTS)}")
        if ann.get("image_id") not in images:
            raise bad(f"{where} refers to image id {ann.get('image_id')!r}, which is not in 'images'")
        if not _is_number(ann.get("area")) or ann["area"] < 0:
            raise bad(f"{where} has no 'area'")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            raise bad(f"{where} has no 'bbox' [x, y, w, h]")
        annotations.append(
            {
                "id": ann["id"] if _is_int(ann.get("id")) else n + 1,
                "image_id": ann["image_id"],
                "category_id": PERSON_CATEGORY,
                "keypoints": [float(v) for v in kps],
                # Recounted from the labels so that COCOeval's ignore flag and the mean OKS agree on who counts.
                "num_keypoints": int(sum(v > 0 for v in kps[2::3])),
                "iscrowd": int(bool(ann.get("iscrowd", 0))),
                "area": float(ann["area"]),
                "bbox": [float(v) for v in bbox],
            }
        )
    result = CocoKeypoints(path=path, images=tuple(images.values()), annotations=tuple(annotations))
    if not result.people:
        raise bad("no person annotation with labelled keypoints")
    return result


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_images(coco: CocoKeypoints, images_dir: str | Path) -> None:
    """Fail before any model runs when the folder or a listed image is missing."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise EdgeposeError(f"{images_dir}: no such image directory")
    missing = [i.file_name for i in coco.images if not (images_dir / i.file_name).is_file()]
    if missing:
        names = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise EdgeposeError(f"{images_dir}: {len(missing)} of {len(coco.images)} annotated images missing: {names}")


# Predictions ------------------------------------------------------------------------------------------


def coco17_index(keypoint_names: Sequence[str]) -> list[int]:
    """Where each COCO-17 keypoint sits among a model's keypoints; EdgeposeError if it has no such layout."""
    names = tuple(keypoint_names)
    if names == COCO17_KEYPOINTS:
        return list(range(len(COCO17_KEYPOINTS)))
    if names == BLAZEPOSE33_KEYPOINTS:
        return list(BLAZEPOSE_TO_COCO17)
    raise EdgeposeError(
        f"cannot score a model with {len(names)} keypoints ({', '.join(names[:4])}, …) against COCO: "
        "only COCO-17 and BlazePose-33 layouts map onto COCO's 17 keypoints"
    )


def coco_results(image_id: int, poses: Sequence[Pose]) -> list[dict[str, Any]]:
    """Poses in the COCO keypoint results format: 17 (x, y, score) in original-image pixels, category 1."""
    results = []
    for pose in poses:
        index = coco17_index([k.name for k in pose.keypoints])
        kps = [pose.keypoints[i] for i in index]
        flat = [float(v) for k in kps for v in (k.x, k.y, k.score)]
        results.append(
            {"image_id": image_id, "category_id": PERSON_CATEGORY, "keypoints": flat, "score": float(pose.score)}
        )
    return results


def oks(pred: np.ndarray | Sequence[float], ann: Mapping[str, Any]) -> float:
    """COCO's object keypoint similarity of one 17-keypoint prediction with one annotated person.

    `pred`: 17x2, 17x3 or 51 flat values. As COCOeval.computeOks: variance (2σ)², the annotation's
    area, mean over the labelled (v > 0) keypoints.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(len(COCO17_KEYPOINTS), -1)
    g = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
    labelled = g[:, 2] > 0
    if not labelled.any():
        raise EdgeposeError(f"annotation {ann.get('id')} has no labelled keypoints to compute OKS on")
    d2 = (p[:, 0] - g[:, 0]) ** 2 + (p[:, 1] - g[:, 1]) ** 2
    return float(geometry.oks(d2, float(ann["area"]) + np.spacing(1), COCO17_SIGMAS, labelled))


@dataclass(frozen=True)
class PersonOks:
    image_id: int
    annotation_id: int
    file_name: str
    oks: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "annotation_id": self.annotation_id,
            "file_name": self.file_name,
            "oks": self.oks,
        }


@dataclass(frozen=True)
class Scores:
    """What the ground truth says about one set of predictions."""

    ap: float
    ap50: float
    ap75: float
    ar: float
    mean_oks: float
    per_person: tuple[PersonOks, ...]
    predictions: int


def score_poses(coco: CocoKeypoints, poses: Mapping[int, Sequence[Pose]]) -> Scores:
    """Score poses per image id (images absent from `poses` had none found) against `coco`."""
    require_pycocotools()
    results = [r for image in coco.images for r in coco_results(image.id, poses.get(image.id, ()))]
    return score_results(coco, results)


def score_results(coco: CocoKeypoints, results: Sequence[Mapping[str, Any]]) -> Scores:
    """Score predictions already in the COCO keypoint results format."""
    require_pycocotools()
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    known = {i.id for i in coco.images}
    stray = {r["image_id"] for r in results} - known
    if stray:
        raise EdgeposeError(f"predictions for image ids not in {coco.path}: {sorted(stray)[:5]}")
    by_image: dict[int, list[np.ndarray]] = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(np.asarray(r["keypoints"], dtype=np.float64))
    names = {i.id: i.file_name for i in coco.images}
    per_person = tuple(
        PersonOks(
            a["image_id"],
            a["id"],
            names[a["image_id"]],
            max((oks(p, a) for p in by_image.get(a["image_id"], ())), default=0.0),
        )
        for a in coco.people
    )
    mean_oks = float(np.mean([p.oks for p in per_person]))

    if not results:
        # loadRes cannot take an empty list; nothing found is nothing precise and nothing recalled.
        return Scores(0.0, 0.0, 0.0, 0.0, mean_oks, per_person, 0)
    # pycocotools prints its progress to stdout, where `--json -` writes the document.
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco.dataset()
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy([dict(r) for r in results]))  # loadRes adds id/area/bbox in place
        ev = COCOeval(gt, dt, "keypoints")
        ev.params.imgIds = sorted(known)
        ev.params.catIds = [PERSON_CATEGORY]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [max(float(v), 0.0) for v in ev.stats]  # -1 means "no ground truth in this area range"
    return Scores(stats[0], stats[1], stats[2], stats[5], mean_oks, per_person, len(results))


# Evaluation -------------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    model: str
    mode: str
    backend: str
    annotations: str
    images_dir: str
    images: int
    people: int
    predictions: int
    ap: float
    ap50: float
    ap75: float
    ar: float
    mean_oks: float
    per_person: list[PersonOks] = field(default_factory=list)
    seconds_per_image: float = 0.0

    def metrics(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in METRICS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "mode": self.mode,
            "backend": self.backend,
            "annotations": self.annotations,
            "images_dir": self.images_dir,
            "images": self.images,
            "people": self.people,
            "predictions": self.predictions,
            **self.metrics(),
            "per_person": [p.to_dict() for p in self.per_person],
            "seconds_per_image": self.seconds_per_image,
        }


@dataclass
class CompareResult:
    model: EvalResult
    compare: EvalResult

    @property
    def delta(self) -> dict[str, float]:
        """compare minus model, per metric."""
        return {k: getattr(self.compare, k) - getattr(self.model, k) for k in METRICS}

    @property
    def mean_abs_oks_delta_per_person(self) -> float:
        a = np.array([p.oks for p in self.model.per_person])
        b = np.array([p.oks for p in self.compare.per_person])
        return float(np.abs(b - a).mean()) if len(a) else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": COMPARE_SCHEMA,
            "model": self.model.to_dict(),
            "compare": self.compare.to_dict(),
            "delta": self.delta,
            "mean_abs_oks_delta_per_person": self.mean_abs_oks_delta_per_person,
        }


Estimate = Callable[[CocoKeypoints, Path, "Progress | None"], "Estimates"]


def evaluate(
    options: PoseEstimatorOptions,
    annotations: str | Path,
    images: str | Path,
    progress: Progress | None = None,
    estimate: Estimate | None = None,
) -> EvalResult:
    """COCO keypoint AP/AR and mean OKS of one model on the images listed in `annotations`.

    `estimate`: where the poses are found, when not by this process's estimator (`eval --ray`).
    """
    coco = _prepare(annotations, images)
    with PoseEstimator.create_from_options(options) as est:
        return run_evaluation([est], coco, images, progress, estimate)[0]


def evaluate_compare(
    options: PoseEstimatorOptions,
    compare: PoseEstimatorOptions,
    annotations: str | Path,
    images: str | Path,
    progress: Progress | None = None,
    estimate: Estimate | None = None,
) -> CompareResult:
    """Two models on the same images in one run (each image decoded once, the models alternating)."""
    coco = _prepare(annotations, images)
    with PoseEstimator.create_from_options(options) as a, PoseEstimator.create_from_options(compare) as b:
        ra, rb = run_evaluation([a, b], coco, images, progress, estimate)
    return CompareResult(ra, rb)


def _prepare(annotations: str | Path | CocoKeypoints, images: str | Path) -> CocoKeypoints:
    # Everything that can be checked without a model is, so a typo fails in milliseconds.
    require_pycocotools()
    coco = annotations if isinstance(annotations, CocoKeypoints) else load_annotations(annotations)
    check_images(coco, images)
    return coco


@dataclass
class Estimates:
    """The poses each estimator found, per image id, and the seconds it spent on them."""

    found: list[dict[int, list[Pose]]]
    seconds: list[float]

    def add(self, other: Estimates) -> None:
        for mine, theirs in zip(self.found, other.found):
            mine.update(theirs)
        self.seconds = [a + b for a, b in zip(self.seconds, other.seconds)]


def estimate_images(
    estimators: Sequence[PoseEstimator],
    images: Sequence[CocoImage],
    images_dir: Path,
    annotations_name: str,
    progress: Progress | None = None,
) -> Estimates:
    """Each estimator in turn on each of `images` (one decode per image): the per-image half of an
    evaluation, which `eval --ray` runs on its workers. An unreadable image, or one of another size than
    the annotations (file `annotations_name`) say, raises EdgeposeError."""
    out = Estimates([{} for _ in estimators], [0.0] * len(estimators))
    for n, image in enumerate(images):
        path = images_dir / image.file_name
        rgb = load_image(path)
        h, w = rgb.shape[:2]
        if (image.width is not None and image.width != w) or (image.height is not None and image.height != h):
            # Predictions would land in a different pixel grid from the labels (a resized copy, say).
            raise EdgeposeError(f"{path}: image is {w}x{h} but {annotations_name} says {image.width}x{image.height}")
        for k, est in enumerate(estimators):
            t0 = time.perf_counter()
            out.found[k][image.id] = est.estimate_frame(rgb).poses
            out.seconds[k] += time.perf_counter() - t0
        if progress is not None:
            progress(n + 1, len(images))
    return out


class EstimateJob:
    """`eval --ray`'s worker: the estimators (all of them: --compare alternates models on each image, as
    locally) built once; called with (images, images dir, annotation file name), it returns their
    Estimates. The scoring stays on the driver, which alone sees every image's poses."""

    def __init__(self, options: Sequence[PoseEstimatorOptions]):
        self.estimators = [PoseEstimator.create_from_options(o) for o in options]

    def __call__(self, task: tuple[Sequence[CocoImage], Path, str]) -> Estimates:
        images, images_dir, annotations_name = task
        return estimate_images(self.estimators, images, images_dir, annotations_name)


def run_evaluation(
    estimators: Sequence[PoseEstimator],
    annotations: str | Path | CocoKeypoints,
    images: str | Path,
    progress: Progress | None = None,
    estimate: Estimate | None = None,
) -> list[EvalResult]:
    """Evaluate already-open estimators, in turn on each image; one EvalResult per estimator.

    Any unreadable image fails the whole run: AP over the images that happened to load would be a
    different, silently smaller benchmark. `estimate(coco, images_dir, progress)` finds the poses
    elsewhere (workers holding the same models); the scoring is always here.
    """
    coco = _prepare(annotations, images)
    images = Path(images)
    for est in estimators:
        coco17_index(est.keypoint_names)  # refuse a non-COCO layout before the first invoke
    if estimate is None:
        found = estimate_images(estimators, coco.images, images, coco.path.name, progress)
    else:
        found = estimate(coco, images, progress)
    return score_estimates(estimators, coco, images, found)


def score_estimates(
    estimators: Sequence[PoseEstimator], coco: CocoKeypoints, images: Path, found: Estimates
) -> list[EvalResult]:
    """One EvalResult per estimator from the poses it found on every image of `coco`."""
    out = []
    for k, est in enumerate(estimators):
        s = score_poses(coco, found.found[k])
        out.append(
            EvalResult(
                model=est.model_name,
                mode=est.options.mode,
                backend=getattr(est.backend, "name", est.options.backend),
                annotations=str(coco.path),
                images_dir=str(images),
                images=len(coco.images),
                people=len(s.per_person),
                predictions=s.predictions,
                ap=s.ap,
                ap50=s.ap50,
                ap75=s.ap75,
                ar=s.ar,
                mean_oks=s.mean_oks,
                per_person=list(s.per_person),
                seconds_per_image=found.seconds[k] / max(len(coco.images), 1),
            )
        )
    return out
