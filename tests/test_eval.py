"""`edgepose eval` (sdk/eval/coco.py, sdk/cli/eval.py) on the real models and the shared COCO photos.

OKS and AP are checked against computations written out here, independently of the library: an explicit
OKS loop, and pycocotools driven directly on results built by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgepose.errors import EdgeposeError
from edgepose.estimator import PoseEstimator, PoseEstimatorOptions
from edgepose.eval.coco import (
    COMPARE_SCHEMA,
    SCHEMA,
    CompareResult,
    EvalResult,
    evaluate_compare,
    load_annotations,
    run_evaluation,
    score_poses,
)
from edgepose.image import load_image
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS, BLAZEPOSE_TO_COCO17, COCO17_KEYPOINTS
from edgepose.results import Keypoint, Pose
from tests.conftest import DATA_DIR

COCO_DIR = DATA_DIR / "coco"
ANNOTATIONS = COCO_DIR / "test_coco.json"
ONE_PERSON = "000000000785.jpg"
ONE_PERSON_ANN = 442619  # the only annotated person in 000000000785.jpg
# COCO's per-keypoint constants, written out again so the check does not lean on the SDK's copy.
SIGMAS = [
    0.026,
    0.025,
    0.025,
    0.035,
    0.035,
    0.079,
    0.079,
    0.072,
    0.072,
    0.062,
    0.062,
    0.107,
    0.107,
    0.087,
    0.087,
    0.089,
    0.089,
]
EVAL_KEYS = [
    "schema",
    "model",
    "mode",
    "backend",
    "annotations",
    "images_dir",
    "images",
    "people",
    "predictions",
    "ap",
    "ap50",
    "ap75",
    "ar",
    "mean_oks",
    "per_person",
    "seconds_per_image",
]
METRIC_KEYS = ["ap", "ap50", "ap75", "ar", "mean_oks"]


def options(model: str, mode: str = "single") -> PoseEstimatorOptions:
    # The CLI's defaults (cli_eval.DEFAULT_MIN_SCORE, DEFAULT_MAX_PEOPLE).
    return PoseEstimatorOptions(model=model, mode=mode, threads=2, smoothing=False, min_pose_score=0.05, max_people=20)


@pytest.fixture(scope="module")
def movenet() -> PoseEstimator:
    with PoseEstimator.create_from_options(options("movenet-lightning-int8")) as est:
        yield est


@pytest.fixture(scope="module")
def movenet_result(movenet: PoseEstimator) -> EvalResult:
    return run_evaluation([movenet], ANNOTATIONS, COCO_DIR)[0]


@pytest.fixture(scope="module")
def gt() -> dict:
    return json.loads(ANNOTATIONS.read_text())


def hand_oks(pose: Pose, ann: dict) -> float:
    """OKS written out keypoint by keypoint: mean over labelled keypoints of exp(-d²/(2·area·(2σ)²))."""
    terms = []
    for i, sigma in enumerate(SIGMAS):
        gx, gy, v = ann["keypoints"][3 * i : 3 * i + 3]
        if v > 0:
            k = pose.keypoints[i]
            d2 = (k.x - gx) ** 2 + (k.y - gy) ** 2
            terms.append(math.exp(-d2 / (2 * ann["area"] * (2 * sigma) ** 2)))
    return sum(terms) / len(terms)


def people(gt: dict) -> list[dict]:
    return [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a.get("iscrowd", 0)]


# OKS and AP against independent computations -----------------------------------------------------------


def test_oks_of_one_person_and_mean_oks_match_a_hand_computation(movenet, movenet_result, gt):
    names = {i["id"]: i["file_name"] for i in gt["images"]}
    poses = {i: movenet.estimate_frame(load_image(COCO_DIR / f)).poses for i, f in names.items()}
    ann = next(a for a in gt["annotations"] if a["id"] == ONE_PERSON_ANN)
    assert names[ann["image_id"]] == ONE_PERSON and len(poses[ann["image_id"]]) == 1

    expected = hand_oks(poses[ann["image_id"]][0], ann)
    got = next(p for p in movenet_result.per_person if p.annotation_id == ONE_PERSON_ANN)
    assert got.file_name == ONE_PERSON and got.image_id == ann["image_id"]
    assert got.oks == pytest.approx(expected, abs=1e-9)
    assert expected > 0.9  # one clearly visible person: a sanity bar far below the measured 0.98

    best = [max((hand_oks(p, a) for p in poses[a["image_id"]]), default=0.0) for a in people(gt)]
    assert movenet_result.people == len(best) == 12
    assert [p.annotation_id for p in movenet_result.per_person] == [a["id"] for a in people(gt)]
    assert movenet_result.mean_oks == pytest.approx(sum(best) / len(best), abs=1e-9)


def test_ap_equals_pycocotools_on_results_built_by_hand(movenet, movenet_result, gt):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results = []
    for image in gt["images"]:
        for pose in movenet.estimate_frame(load_image(COCO_DIR / image["file_name"])).poses:
            kps = [v for k in pose.keypoints for v in (k.x, k.y, k.score)]
            results.append({"image_id": image["id"], "category_id": 1, "keypoints": kps, "score": pose.score})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(ANNOTATIONS))
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    r = movenet_result
    assert r.predictions == len(results)
    assert [r.ap, r.ap50, r.ap75, r.ar] == pytest.approx([ev.stats[i] for i in (0, 1, 2, 5)], abs=1e-12)
    for v in (r.ap, r.ap50, r.ap75, r.ar, r.mean_oks):
        assert 0.0 <= v <= 1.0
    assert r.ap > 0.0 and r.images == 4 and r.seconds_per_image > 0


def _pose_from_gt(ann: dict, layout: tuple[str, ...], to_coco: list[int]) -> Pose:
    """The annotation's keypoints as a model in `layout` would report them; the other slots far off."""
    kps = [Keypoint(name, -1000.0, -1000.0, 0.1) for name in layout]
    for coco_i, model_i in enumerate(to_coco):
        x, y, _ = ann["keypoints"][3 * coco_i : 3 * coco_i + 3]
        kps[model_i] = Keypoint(layout[model_i], float(x), float(y), 0.9)
    return Pose(keypoints=tuple(kps), score=0.9, bbox=(0.0, 0.0, 1.0, 1.0))


@pytest.mark.parametrize(
    "layout,to_coco",
    [(COCO17_KEYPOINTS, list(range(17))), (BLAZEPOSE33_KEYPOINTS, list(BLAZEPOSE_TO_COCO17))],
    ids=["coco17", "blazepose33"],
)
def test_ground_truth_fed_through_the_conversion_scores_perfectly(gt, layout, to_coco):
    coco = load_annotations(ANNOTATIONS)
    poses: dict[int, list[Pose]] = {}
    for ann in people(gt):
        poses.setdefault(ann["image_id"], []).append(_pose_from_gt(ann, layout, to_coco))
    s = score_poses(coco, poses)
    assert (s.ap, s.ap50, s.ap75, s.ar, s.mean_oks) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert s.predictions == 12


def test_no_predictions_score_zero_and_other_layouts_are_refused():
    coco = load_annotations(ANNOTATIONS)
    s = score_poses(coco, {})
    assert (s.ap, s.ar, s.mean_oks, s.predictions) == (0.0, 0.0, 0.0, 0)
    hand21 = Pose(keypoints=tuple(Keypoint(f"k{i}", 1.0, 1.0, 1.0) for i in range(21)), score=1.0, bbox=(0, 0, 1, 1))
    with pytest.raises(EdgeposeError, match="21 keypoints"):
        score_poses(coco, {785: [hand21]})


# --compare and the JSON documents -----------------------------------------------------------------------


def test_compare_with_itself_has_zero_delta_and_the_documented_keys():
    result = evaluate_compare(
        options("movenet-lightning-int8"), options("movenet-lightning-int8"), ANNOTATIONS, COCO_DIR
    )
    assert isinstance(result, CompareResult)
    assert result.delta == {k: 0.0 for k in METRIC_KEYS}
    assert result.mean_abs_oks_delta_per_person == 0.0
    doc = json.loads(json.dumps(result.to_dict()))
    assert list(doc) == ["schema", "model", "compare", "delta", "mean_abs_oks_delta_per_person"]
    assert doc["schema"] == COMPARE_SCHEMA
    assert list(doc["delta"]) == METRIC_KEYS
    for side in ("model", "compare"):
        assert list(doc[side]) == EVAL_KEYS and doc[side]["schema"] == SCHEMA
        assert list(doc[side]["per_person"][0]) == ["image_id", "annotation_id", "file_name", "oks"]


# Other models and modes -------------------------------------------------------------------------------------


def test_blazepose_33_keypoints_are_mapped_to_coco17():
    with (
        PoseEstimator.create_from_options(options("blazepose-full")) as single,
        PoseEstimator.create_from_options(options("blazepose-full", "multi")) as multi,
    ):
        r_single, r_multi = run_evaluation([single, multi], ANNOTATIONS, COCO_DIR)
    # Measured: 0.90 on the one-person photo (single), mean OKS 0.66 over the 12 people (multi). A wrong
    # mapping (say the first 17 of the 33) would land near 0.
    assert next(p.oks for p in r_single.per_person if p.annotation_id == ONE_PERSON_ANN) > 0.8
    assert r_multi.mean_oks > 0.55
    assert r_multi.mode == "multi" and r_multi.predictions >= 10


def test_posenet_multi_person():
    with PoseEstimator.create_from_options(options("posenet-mobilenet", "multi")) as est:
        r = run_evaluation([est], ANNOTATIONS, COCO_DIR)[0]
    # Measured: AP 0.47, AP50 0.91, mean OKS 0.71, 13 poses.
    assert r.predictions >= 10
    assert r.ap > 0.3 and r.ap50 > 0.7
    assert r.mean_oks > 0.6


# Bad input: one clear error ---------------------------------------------------------------------------------


@pytest.fixture
def coco_copy(tmp_path: Path) -> Path:
    d = tmp_path / "coco"
    shutil.copytree(COCO_DIR, d)
    return d


def test_bad_annotations_are_one_clear_error(tmp_path: Path):
    with pytest.raises(EdgeposeError, match="no such annotation file"):
        load_annotations(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(EdgeposeError, match="invalid JSON"):
        load_annotations(tmp_path / "broken.json")
    # COCO detection annotations (boxes, no keypoints).
    data = json.loads(ANNOTATIONS.read_text())
    for a in data["annotations"]:
        del a["keypoints"]
    (tmp_path / "boxes.json").write_text(json.dumps(data))
    with pytest.raises(EdgeposeError, match="not a COCO keypoints file"):
        load_annotations(tmp_path / "boxes.json")


def test_a_corrupt_image_fails_the_whole_evaluation(movenet, coco_copy: Path):
    jpg = coco_copy / "000000040083.jpg"
    jpg.write_bytes(jpg.read_bytes()[:2000])
    with pytest.raises(EdgeposeError, match="000000040083.jpg"):
        run_evaluation([movenet], coco_copy / "test_coco.json", coco_copy)


# The command -----------------------------------------------------------------------------------------------

# The command as the main app will register it; typer needs no more than this to run it.
APP = (
    "import sys, typer\n"
    "if sys.argv[1] == '--no-pycocotools': sys.modules['pycocotools'] = None; del sys.argv[1]\n"
    "from edgepose.cli.eval import eval_command\n"
    "app = typer.Typer(add_completion=False); app.command()(eval_command); app()\n"
)


def eval_cli(*args: str | Path, no_pycocotools: bool = False) -> subprocess.CompletedProcess[str]:
    # No COLUMNS/LINES: stderr is a pipe of Rich's default width, where a wrapped "one line" would show.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["EDGEPOSE_OFFLINE"] = "1"
    flag = ["--no-pycocotools"] if no_pycocotools else []
    return subprocess.run(
        [sys.executable, "-c", APP, *flag, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_json_to_stdout_is_the_only_stdout():
    p = eval_cli("--annotations", ANNOTATIONS, "--images", COCO_DIR, "--threads", "2", "--json", "-")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert list(doc) == EVAL_KEYS and doc["model"] == "movenet-lightning-int8" and doc["people"] == 12
    assert "Traceback" not in p.stderr


def test_cli_compare_writes_the_json_file(tmp_path: Path):
    out = tmp_path / "eval.json"
    p = eval_cli(
        "--annotations",
        ANNOTATIONS,
        "--images",
        COCO_DIR,
        "--compare",
        "movenet-lightning-int8",
        "--threads",
        "2",
        "--json",
        out,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == COMPARE_SCHEMA and doc["delta"] == {k: 0.0 for k in METRIC_KEYS}
    assert "AP50" in p.stdout and "delta" in p.stdout  # the table
    assert sorted(f.name for f in tmp_path.iterdir()) == ["eval.json"]  # no temporary left behind


def _one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgepose: error: "), p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    for n in needles:
        assert n in lines[0]


def test_cli_missing_image_dir(tmp_path: Path):
    _one_line_error(eval_cli("--annotations", ANNOTATIONS, "--images", tmp_path / "nope"), "nope")


def test_cli_missing_image_file(coco_copy: Path):
    (coco_copy / "000000197388.jpg").unlink()
    _one_line_error(eval_cli("--annotations", coco_copy / "test_coco.json", "--images", coco_copy), "000000197388.jpg")


def test_cli_corrupt_image(coco_copy: Path):
    (coco_copy / "000000196141.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _one_line_error(eval_cli("--annotations", coco_copy / "test_coco.json", "--images", coco_copy), "000000196141.jpg")


@pytest.mark.parametrize("content", ["not json at all", '{"images": [], "annotations": []}', "[1, 2]"])
def test_cli_bad_annotations(tmp_path: Path, content: str):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    _one_line_error(eval_cli("--annotations", bad, "--images", COCO_DIR), "bad.json")


def test_cli_without_pycocotools_names_the_extra():
    p = eval_cli("--annotations", ANNOTATIONS, "--images", COCO_DIR, no_pycocotools=True)
    _one_line_error(p, "pip install 'edgepose[eval]'")
