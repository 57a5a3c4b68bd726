"""Multi-person mode on the real models and photos: accuracy per pipeline, single vs multi, IDs on video,
MoveNet MultiPose decoding, and the max-people / min-score options.

Pipelines (all through `PoseEstimator`, mode="multi", default options, 2 threads):
- top-down MoveNet: `movenet-lightning-int8` (BlazePose detector on the frame and its tiles, MoveNet per crop);
- top-down BlazePose: `blazepose-full` (33 keypoints, scored through their COCO-17 subset);
- bottom-up PoseNet: `posenet-mobilenet` (tests/test_posenet.py covers its decoder; here only the comparison).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgepose import PoseEstimator
from edgepose.eval.coco import load_annotations, score_poses
from edgepose.geometry import Roi, pose_oks
from edgepose.image import load_image
from edgepose.io.video import VideoSource
from edgepose.keypoints import BLAZEPOSE33_KEYPOINTS, BLAZEPOSE_TO_COCO17, COCO17_KEYPOINTS, to_coco17
from edgepose.models.movenet_multipose import decode_multipose, input_size_for
from edgepose.tracking.tracker import box_iou
from tests.conftest import DATA_DIR, gt_for, oks, pose_xy

COCO_PHOTOS = ("000000000785.jpg", "000000040083.jpg", "000000196141.jpg", "000000197388.jpg")
GROUP_PHOTO = "000000196141.jpg"  # four annotated people, from large to very small
MATCH_OKS = 0.5  # COCO's loosest "same person" level
PIPELINES = {
    "topdown-movenet": "movenet-lightning-int8",
    "topdown-blazepose": "blazepose-full",
    "posenet": "posenet-mobilenet",
}

# Measured best-match OKS per annotated person (num_keypoints >= 5), in annotation order:
#                      785    | 40083        | 196141                     | 197388                            | mean
#   topdown-movenet    0.951  | 0.784 0.822  | 0.834 0.885 0.935 0.797    | 0.825 0.189 0.826 0.799 0.505     | 0.763
#   topdown-blazepose  0.896  | 0.715 0.843  | 0.768 0.820 0.882 0.790    | 0.059 0.301 0.828 0.872 0.131     | 0.659
#   posenet            0.959  | 0.692 0.795  | 0.820 0.598 0.751 0.777    | 0.830 0.269 0.717 0.750 0.773     | 0.728
# PoseNet here is the estimator (min_pose_score 0.15, max_people 10). tests/test_posenet.py's 0.756 scores
# `PoseNetMultiPose.detect` with all 20 raw detections, whose low-scoring fragments (< 0.15) happen to fit
# some people better (e.g. 0.832 instead of 0.751 for the third person in 196141).
# Matched at OKS >= 0.5: top-down MoveNet 11/12, PoseNet 11/12, top-down BlazePose 9/12.
MEAN_OKS_FLOOR = {"topdown-movenet": 0.73, "topdown-blazepose": 0.62, "posenet": 0.70}
# The one person top-down MoveNet misses (OKS 0.19): small, half hidden behind the man in front of
# them, in 000000197388.jpg. PoseNet misses them too (0.27), BlazePose as well (0.30).
HALF_HIDDEN = ("000000197388.jpg", [287.17, 61.52, 74.88, 165.61])


def annotated(coco: dict, name: str) -> list[dict]:
    """The people the accuracy numbers are about: at least 5 visible keypoints."""
    return [a for a in gt_for(coco, name) if a["num_keypoints"] >= 5]


def coco17_xy(pose) -> np.ndarray:
    """Nx2 COCO-17 keypoint positions of a pose from any of the pipelines."""
    xy = pose_xy(pose)
    if len(xy) == len(BLAZEPOSE33_KEYPOINTS):
        xy = to_coco17(xy)
    assert xy.shape == (17, 2)
    return xy


def best_match(poses, ann: dict) -> tuple[int | None, float]:
    """(index of the pose with the highest OKS against `ann`, that OKS); (None, 0) without poses."""
    if not poses:
        return None, 0.0
    values = [oks(coco17_xy(p), ann) for p in poses]
    i = int(np.argmax(values))
    return i, values[i]


def make_estimator(model: str, **kwargs) -> PoseEstimator:
    return PoseEstimator.create_from_model(model, threads=2, **kwargs)


@pytest.fixture(scope="module")
def multi() -> dict[str, PoseEstimator]:
    """One multi-mode estimator per pipeline, shared by all still-image tests."""
    ests = {key: make_estimator(model, mode="multi") for key, model in PIPELINES.items()}
    yield ests
    for est in ests.values():
        est.close()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: load_image(DATA_DIR / "coco" / name) for name in COCO_PHOTOS}


@pytest.fixture(scope="module")
def still_poses(multi, photos) -> dict[str, dict[str, list]]:
    """pipeline -> photo -> poses, each computed once."""
    return {key: {name: est.estimate_frame(rgb).poses for name, rgb in photos.items()} for key, est in multi.items()}


@pytest.fixture(scope="module")
def best_oks(still_poses, coco) -> dict[str, list[tuple[str, dict, float]]]:
    """pipeline -> (photo, annotation, best-match OKS) for each of the 12 annotated people."""
    return {
        key: [(name, ann, best_match(per_photo[name], ann)[1]) for name in COCO_PHOTOS for ann in annotated(coco, name)]
        for key, per_photo in still_poses.items()
    }


# Accuracy per pipeline ----------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_mean_best_match_oks_on_coco_photos(best_oks, pipeline):
    values = [v for _, _, v in best_oks[pipeline]]
    assert len(values) == 12
    assert np.mean(values) >= MEAN_OKS_FLOOR[pipeline], np.round(values, 3)


def test_topdown_movenet_is_at_least_as_accurate_as_posenet(best_oks):
    # Measured 0.763 vs 0.728: a 0.035 margin, so the comparison is pinned (with 0.01 of slack).
    movenet = np.mean([v for _, _, v in best_oks["topdown-movenet"]])
    posenet = np.mean([v for _, _, v in best_oks["posenet"]])
    assert movenet >= posenet - 0.01, (movenet, posenet)


def test_topdown_movenet_matches_all_but_the_half_hidden_person(best_oks):
    missed = [(name, ann["bbox"], round(v, 3)) for name, ann, v in best_oks["topdown-movenet"] if v < MATCH_OKS]
    # Measured: 11 of 12 matched; the miss is HALF_HIDDEN (OKS 0.19). Finding them too would be fine.
    assert len(missed) <= 1, missed
    assert all((name, bbox) == HALF_HIDDEN for name, bbox, _ in missed), missed


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_no_two_poses_are_one_person(still_poses, pipeline, multi):
    """Duplicates across tiles, passes and decoder seeds are suppressed by OKS between the poses: no pair
    of reported poses is more alike than COCO's "same person" level, in either direction."""
    sigmas = multi[pipeline].pipeline.keypoint_layout.sigmas
    for name, poses in still_poses[pipeline].items():
        if len(poses) < 2:
            continue
        kps = np.stack([[(k.x, k.y, k.score) for k in p.keypoints] for p in poses])
        sim = pose_oks(kps, kps, sigmas, 0.2)
        np.fill_diagonal(sim, 0.0)
        assert sim.max() <= 0.5, (name, np.round(sim, 2))


def test_default_model_ap_with_no_more_predictions_than_people_plus_one(still_poses, coco):
    """COCO AP of the default model in multi mode on the shared photos (pycocotools): duplicates and
    fragments no longer outrank whole people. Measured AP 0.652, AP50 0.911, 12 predictions for 12
    people (before: AP 0.569 with OpenCV / 0.53 without, 13 predictions)."""
    ann = load_annotations(DATA_DIR / "coco" / "test_coco.json")
    ids = {i.file_name: i.id for i in ann.images}
    scores = score_poses(ann, {ids[name]: poses for name, poses in still_poses["topdown-movenet"].items()})
    assert scores.predictions <= len(scores.per_person) + 1
    assert scores.ap >= 0.60, scores.ap


def test_refined_pose_replaces_a_poor_first_pass_at_the_frame_edge(best_oks):
    """The skier cut by the left edge of 000000197388.jpg: the first pass on the detector's loose crop
    gives a poor pose (OKS 0.35), the torso crop a good one (0.86) that moved too far to pass as the
    same person; it wins on its higher score (before: the poor pose was kept)."""
    (v,) = [v for name, ann, v in best_oks["topdown-movenet"] if name == "000000197388.jpg" and ann["bbox"][0] < 1]
    assert v >= 0.8, v


@pytest.mark.parametrize("name", ["000000000785.jpg", "000000040083.jpg", "000000196141.jpg"])
def test_one_pose_per_person_no_phantoms(still_poses, coco, name):
    # No duplicate from overlapping tiles, no body-part detection (a head found as a small second
    # person, which BlazePose's landmark model would dress in a whole skeleton), no decoder duplicates.
    # 000000197388.jpg (a tight group of 5) is left out: one extra low-scoring pose there is tolerated.
    for key, per_photo in still_poses.items():
        assert len(per_photo[name]) == len(annotated(coco, name)), (key, [round(p.score, 2) for p in per_photo[name]])


def test_poses_are_well_formed_and_best_first(still_poses, photos):
    for key, per_photo in still_poses.items():
        n_kps = 33 if key == "topdown-blazepose" else 17
        for name, poses in per_photo.items():
            h, w = photos[name].shape[:2]
            assert [p.score for p in poses] == sorted((p.score for p in poses), reverse=True), (key, name)
            for p in poses:
                assert len(p.keypoints) == n_kps
                xy = pose_xy(p)
                assert ((xy >= 0) & (xy <= [w - 1, h - 1])).all(), (key, name)
                assert 0.15 <= p.score <= 1.0  # the default min_pose_score


# Single vs multi ------------------------------------------------------------------------------------


def test_single_mode_locks_onto_one_person_multi_mode_finds_all_four(multi, photos, coco):
    anns = annotated(coco, GROUP_PHOTO)
    assert len(anns) == 4
    with make_estimator("movenet-lightning-int8", mode="single") as single:
        (pose,) = single.estimate_frame(photos[GROUP_PHOTO]).poses
    # It is a good pose of exactly one of them (measured: the first annotation at 0.876, the others 0.0).
    values = sorted(oks(pose_xy(pose), a) for a in anns)
    assert values[-1] >= 0.8 and values[-2] < 0.1, values

    poses = multi["topdown-movenet"].estimate_frame(photos[GROUP_PHOTO]).poses
    matches = [best_match(poses, a) for a in anns]
    # Measured 0.834, 0.885, 0.935, 0.797 (the last is about 25 px wide in a 640 px photo).
    assert all(v >= MATCH_OKS for _, v in matches), matches
    assert len({i for i, _ in matches}) == 4  # four different poses, not one matched four times


def test_blazepose_single_mode_on_one_person(photos, coco):
    name = "000000000785.jpg"
    with make_estimator("blazepose-full", mode="single") as est:
        (pose,) = est.estimate_frame(photos[name]).poses
    assert [k.name for k in pose.keypoints] == list(BLAZEPOSE33_KEYPOINTS)
    assert len(BLAZEPOSE33_KEYPOINTS) == 33 and BLAZEPOSE33_KEYPOINTS[0] == "nose"
    assert BLAZEPOSE33_KEYPOINTS[32] == "right_foot_index"
    # The COCO-17 subset carries COCO's names, so the mapping lines up with the ground truth's order.
    assert [BLAZEPOSE33_KEYPOINTS[i] for i in BLAZEPOSE_TO_COCO17] == list(COCO17_KEYPOINTS)
    (ann,) = annotated(coco, name)
    assert oks(coco17_xy(pose), ann) >= 0.85  # measured 0.896
    assert pose.score >= 0.5  # presence probability (measured 1.0)


# IDs ---------------------------------------------------------------------------------------------------


def moving_sequence(n: int = 12) -> list[tuple[np.ndarray, float, float, int, int]]:
    """GROUP_PHOTO shrinking from 1.0 to 0.9 while moving 4 px right and 2 px down per frame, on a black
    canvas of the photo's size: (frame, sx, sy, dx, dy) with image x' = (x + 0.5) * sx - 0.5 + dx."""
    img = Image.open(DATA_DIR / "coco" / GROUP_PHOTO).convert("RGB")
    w0, h0 = img.size
    frames = []
    for i in range(n):
        s = 1.0 - 0.1 * i / (n - 1)
        w, h = round(w0 * s), round(h0 * s)
        dx, dy = 4 * i, 2 * i
        canvas = Image.new("RGB", (w0, h0))
        canvas.paste(img.resize((w, h), Image.Resampling.BILINEAR), (dx, dy))
        frames.append((np.asarray(canvas), w / w0, h / h0, dx, dy))
    return frames


def moved(ann: dict, sx: float, sy: float, dx: int, dy: int) -> dict:
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
    kps[:, 0] = (kps[:, 0] + 0.5) * sx - 0.5 + dx
    kps[:, 1] = (kps[:, 1] + 0.5) * sy - 0.5 + dy
    return dict(ann, keypoints=kps.ravel().tolist(), area=ann["area"] * sx * sy)


def test_ids_follow_each_person_through_a_moving_shrinking_photo(coco):
    anns = annotated(coco, GROUP_PHOTO)
    ids_per_person: list[list[int]] = [[] for _ in anns]
    with make_estimator("movenet-lightning-int8", mode="multi") as est:
        for i, (rgb, sx, sy, dx, dy) in enumerate(moving_sequence()):
            poses = est.estimate_video_frame(rgb, 33.0 * i).poses
            ids = [p.id for p in poses]
            assert all(isinstance(x, int) for x in ids), ids
            assert len(set(ids)) == len(ids), (i, ids)
            # Frame 10 runs the detector again (redetect_every=10): the people it finds are already
            # tracked and must not come back as extra poses.
            assert len(poses) == 4, (i, [(p.id, p.bbox) for p in poses])
            for k, ann in enumerate(anns):
                j, value = best_match(poses, moved(ann, sx, sy, dx, dy))
                assert value >= MATCH_OKS, (i, k, value)  # measured >= 0.60 (the smallest person)
                ids_per_person[k].append(poses[j].id)
    assert all(len(set(ids)) == 1 for ids in ids_per_person), ids_per_person
    assert len({ids[0] for ids in ids_per_person}) == 4, ids_per_person


def test_ids_on_the_demo_video(demo_video):
    per_frame = []
    with make_estimator("movenet-lightning-int8", mode="multi") as est:
        for _, t_ms, rgb in VideoSource.open_file(demo_video).frames():
            per_frame.append(est.estimate_video_frame(rgb, t_ms).poses)
    assert len(per_frame) == 5
    for poses in per_frame:
        ids = [p.id for p in poses]
        assert all(isinstance(x, int) for x in ids) and len(set(ids)) == len(ids), ids
    for i in range(1, 5):
        for p in per_frame[i]:
            prev = max(per_frame[i - 1], key=lambda q: box_iou(p.bbox, q.bbox), default=None)
            if prev is not None and box_iou(p.bbox, prev.bbox) >= 0.5:
                assert p.id == prev.id, (i, p.id, prev.id, p.bbox, prev.bbox)
    # Measured: three people (ids 1, 2, 3) in all five frames, frame-to-frame box IoU 0.50-0.96.
    everywhere = set.intersection(*({p.id for p in poses} for poses in per_frame))
    assert len(everywhere) >= 3, [[p.id for p in poses] for poses in per_frame]


def test_stills_have_no_ids_video_frames_do(still_poses, photos):
    for per_photo in still_poses.values():
        for poses in per_photo.values():
            assert all(p.id is None for p in poses)
    with make_estimator("movenet-lightning-int8", mode="multi") as est:
        rgb = photos[GROUP_PHOTO]
        still = est.estimate_frame(rgb).poses
        first = est.estimate_video_frame(rgb, 0.0).poses
        second = est.estimate_video_frame(rgb, 33.0).poses
        assert [p.id for p in est.estimate_frame(rgb).poses] == [None] * len(still)  # a still between frames
    assert len(still) == len(first) == 4
    assert sorted(p.id for p in first) == [1, 2, 3, 4]
    assert sorted(p.id for p in second) == [1, 2, 3, 4]  # the same frame again: the same people


# MoveNet MultiPose decoding (synthetic) ---------------------------------------------------------------


def test_multipose_input_size_rounds_to_multiples_of_32():
    # 640x425: scale 256/640 = 0.4 -> 256 x 170; 170/32 = 5.31 -> 5 * 32 = 160.
    assert input_size_for(640, 425) == (256, 160)
    # Portrait 480x640: scale 0.4 -> 192 x 256, both already multiples of 32.
    assert input_size_for(480, 640) == (192, 256)
    # 1000x600: scale 0.256 -> 256 x 153.6; 153.6/32 = 4.8 -> 160.
    assert input_size_for(1000, 600) == (256, 160)
    # 4000x100: 256 x 6.4 -> 6.4/32 = 0.2 rounds to 0, floored at one multiple.
    assert input_size_for(4000, 100) == (256, 32)


def test_decode_multipose_undoes_the_letterbox_and_sorts_by_score():
    width, height = 640, 425
    size = input_size_for(width, height)
    assert size == (256, 160)
    roi = Roi.letterbox_to(width, height, *size)
    # Letterbox scale max(640/256, 425/160) = 2.65625: the input covers 680x425 image pixels, 20 px of
    # black padding left and right. So x = 680 * nx - 20 and y = 425 * ny.
    k = np.arange(17)
    nx, ny = (4 + k) / 64, (8 + 2 * k) / 64  # exact in float32
    out = np.zeros((1, 6, 56), np.float32)
    out[0, 1, :51] = np.stack([ny, nx, 0.5 + k / 64], axis=1).ravel()  # (y, x, score) per keypoint
    out[0, 1, 51:55] = [0.125, 0.0625, 0.5, 0.375]
    out[0, 1, 55] = 0.75
    out[0, 3, :51] = np.stack([np.full(17, 0.5), np.full(17, 0.0), np.full(17, 0.25)], axis=1).ravel()
    out[0, 3, 55] = 0.25  # a weaker person at the left edge: in the padding, so clipped to x = 0
    people = decode_multipose(out, roi, width, height)

    assert len(people) == 6
    assert [p.score for p in people] == [0.75, 0.25, 0.0, 0.0, 0.0, 0.0]
    kps = people[0].keypoints
    np.testing.assert_array_equal(kps[:, 0], 680 * (4 + k) / 64 - 20)  # 22.5, 33.125, ... not 640 * nx
    np.testing.assert_array_equal(kps[:, 1], 425 * (8 + 2 * k) / 64)
    np.testing.assert_allclose(kps[:, 2], 0.5 + k / 64)
    assert kps[0, :2].tolist() == [22.5, 53.125]
    weak = people[1].keypoints
    np.testing.assert_array_equal(weak[:, :2], np.tile([0.0, 212.5], (17, 1)))
    # Empty rows decode to the padding corner (-20, 0), clipped into the frame.
    np.testing.assert_array_equal(people[2][0][:, :2], np.zeros((17, 2)))


# Options: max_people and min_pose_score --------------------------------------------------------------


def scores_and_boxes(poses) -> list[tuple[float, tuple[float, ...]]]:
    return [(round(p.score, 6), tuple(round(v, 3) for v in p.bbox)) for p in poses]


@pytest.mark.parametrize("pipeline", ["topdown-movenet", "posenet"])
def test_max_people_caps_the_number_of_poses(multi, photos, pipeline):
    everyone = multi[pipeline].estimate_frame(photos[GROUP_PHOTO]).poses
    assert len(everyone) >= 4  # measured 4 (top-down) and 7 (PoseNet: three low-scoring fragments)
    with make_estimator(PIPELINES[pipeline], mode="multi", max_people=2) as est:
        two = est.estimate_frame(photos[GROUP_PHOTO]).poses
    assert len(two) == 2
    assert two[0].score >= two[1].score
    assert two[0].score == max(p.score for p in everyone)  # measured: the best one is always kept
    # Each of the two is one of the people found without the cap, unchanged.
    assert set(scores_and_boxes(two)) <= set(scores_and_boxes(everyone))


@pytest.mark.parametrize("pipeline", ["topdown-movenet", "posenet"])
def test_max_people_keeps_the_best_scoring_poses(multi, photos, pipeline):
    everyone = multi[pipeline].estimate_frame(photos[GROUP_PHOTO]).poses
    with make_estimator(PIPELINES[pipeline], mode="multi", max_people=2) as est:
        two = est.estimate_frame(photos[GROUP_PHOTO]).poses
    assert scores_and_boxes(two) == scores_and_boxes(everyone[:2])


def test_min_score_drops_the_weaker_poses(multi, photos):
    everyone = multi["topdown-movenet"].estimate_frame(photos[GROUP_PHOTO]).poses
    # Measured scores 0.537, 0.492, 0.477, 0.410: a 0.45 floor drops only the last.
    assert sum(p.score < 0.45 for p in everyone) == 1
    with make_estimator("movenet-lightning-int8", mode="multi", min_pose_score=0.45) as est:
        kept = est.estimate_frame(photos[GROUP_PHOTO]).poses
    assert len(kept) == 3 and all(p.score >= 0.45 for p in kept)
    assert scores_and_boxes(kept) == scores_and_boxes([p for p in everyone if p.score >= 0.45])

    posenet = multi["posenet"].estimate_frame(photos[GROUP_PHOTO]).poses
    with make_estimator("posenet-mobilenet", mode="multi", min_pose_score=0.5) as est:
        strong = est.estimate_frame(photos[GROUP_PHOTO]).poses
    assert len(strong) == 4  # measured 0.931, 0.883, 0.716, 0.581; the 0.21 and lower fragments go
    assert scores_and_boxes(strong) == scores_and_boxes([p for p in posenet if p.score >= 0.5])
