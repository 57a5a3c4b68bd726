"""The family table is the one place a family is described: every row runs, and a new family is one
model module plus one row."""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import numpy as np
import pytest

from edgepose import PoseEstimator
from edgepose.bindings import open_backend
from edgepose.converters.metadata import embed_tflite_metadata, make_metadata
from edgepose.image import load_image
from edgepose.models import families
from edgepose.models.families import FAMILIES, Family, Task
from edgepose.models.movenet import MoveNetSinglePose

MODELS = {
    ("movenet", "single"): "movenet_singlepose_lightning_int8.tflite",
    ("blazepose", "single"): "blazepose_landmark_full.tflite",
    ("person-detector", "detector"): "blazepose_detector.tflite",
}


@pytest.mark.parametrize(("family", "task"), list(MODELS))
def test_rows_build_their_model_on_the_real_file(model_dir, family, task):
    row = FAMILIES[family]
    model = row.model_class(task)(open_backend(model_dir / MODELS[family, task], "litert", threads=1))
    assert callable(model.preprocess) and callable(model.decode)
    if task != "detector":
        assert model.keypoint_layout == row.layout and model.keypoint_names == row.layout.keypoints


def test_every_row_names_an_importable_class_and_known_pipelines():
    for row in FAMILIES.values():
        for task, t in row.tasks.items():
            assert isinstance(row.model_class(task), type)
            assert set(t.pipelines) <= set(families.MODES) and set(t.pipelines.values()) <= set(families.PIPELINES)


class MirroredMoveNet(MoveNetSinglePose):
    """A 'new family' for the test: MoveNet's weights run on the mirrored crop, keypoints mirrored back."""

    def preprocess(self, rgb, rois):
        (x,) = super().preprocess(rgb, rois)
        return [np.ascontiguousarray(x[:, :, ::-1])]

    def decode(self, outputs, rois, width, height):
        out = self._out_index
        mirrored = [np.array(o) for o in outputs]
        kps = mirrored[out].reshape(len(rois), 17, 3)
        kps[:, :, 1] = 1.0 - kps[:, :, 1]  # x (normalized) back into the unmirrored crop
        swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]  # left <-> right
        mirrored[out] = kps[:, swap].reshape(outputs[out].shape)
        return super().decode(mirrored, rois, width, height)


def test_a_new_family_is_one_module_and_one_row(monkeypatch, tmp_path, model_dir, one_person_photo):
    module = types.ModuleType("edgepose.models.mirrored_movenet")
    module.MirroredMoveNet = MirroredMoveNet
    monkeypatch.setitem(sys.modules, "edgepose.models.mirrored_movenet", module)
    row = Family("mirrored-movenet", "single", {"single": Task("mirrored_movenet:MirroredMoveNet",
                 {"single": "single-crop", "multi": "top-down"})}, FAMILIES["movenet"].normalization,
                 FAMILIES["movenet"].layout)  # fmt: skip
    monkeypatch.setitem(FAMILIES, row.name, row)

    # A converted file says its family in its metadata; nothing else tells the runtime what it is.
    path = tmp_path / "mirrored.tflite"
    src = model_dir / MODELS["movenet", "single"]
    meta = make_metadata("mirrored-movenet", "single", (192, 192), "NHWC", (0, 0, 0), (1, 1, 1), src, "tflite-int8")
    embed_tflite_metadata(src, path, meta)
    rgb = load_image(one_person_photo)
    for mode in ("single", "multi"):
        with PoseEstimator.create_from_model(str(path), mode=mode, threads=2) as new, \
             PoseEstimator.create_from_model("movenet-lightning-int8", mode=mode, threads=2) as ref:  # fmt: skip
            assert isinstance(new.pipeline.model, MirroredMoveNet)
            (a,), (b,) = new.estimate(rgb), ref.estimate(rgb)
            # Mirrored input is another image for the network: the same person, a few pixels apart.
            ka = np.array([(k.x, k.y, k.score) for k in a.keypoints])
            kb = np.array([(k.x, k.y, k.score) for k in b.keypoints])
            both = (ka[:, 2] > 0.3) & (kb[:, 2] > 0.3)
            assert both.sum() >= 10 and np.median(np.hypot(*(ka[both, :2] - kb[both, :2]).T)) < 8, mode
    assert replace(row) == FAMILIES["mirrored-movenet"]
