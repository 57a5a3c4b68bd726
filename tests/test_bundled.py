"""The product's offline defaults: the default model and the person detector inside the package.

The end-to-end case runs `edgepose run` as a new user on a fresh offline machine would: HOME an empty
folder, no EDGEPOSE_MODEL_DIR, EDGEPOSE_OFFLINE=1. .ci/run also runs this file in its `pip install .`
venv (no extras), where the bundled files are in site-packages.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgepose import PoseEstimator
from edgepose.assets import registry
from edgepose.assets.registry import BUNDLED_DIR, REGISTRY, resolve_model, sha256_of
from tests.conftest import DATA_DIR, Cli

BUNDLED = ("movenet-lightning-int8", "blazepose-detector")


def fresh_user_env(home: Path) -> dict[str, str]:
    drop = ("EDGEPOSE_MODEL_DIR", "XDG_CACHE_HOME", "XDG_DATA_HOME", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(HOME=str(home), EDGEPOSE_OFFLINE="1")
    return env


def test_bundled_files_are_the_pinned_ones():
    for name in BUNDLED:
        spec = REGISTRY[name]
        assert sha256_of(BUNDLED_DIR / spec.filename) == spec.sha256, name
    assert sorted(p.name for p in BUNDLED_DIR.iterdir()) == sorted(REGISTRY[n].filename for n in BUNDLED)


def test_resolution_order_model_dir_then_bundled_then_cache(monkeypatch, tmp_path, model_dir):
    monkeypatch.setattr(registry, "cache_dir", lambda: tmp_path / "cache")
    assert resolve_model("movenet-lightning-int8").path == model_dir / REGISTRY["movenet-lightning-int8"].filename
    monkeypatch.delenv("EDGEPOSE_MODEL_DIR")
    for name in BUNDLED:
        assert resolve_model(name).path == BUNDLED_DIR / REGISTRY[name].filename
    # Not bundled: the cache, and offline the error names the folder to put the file in.
    with pytest.raises(Exception, match=f"put {REGISTRY['blazepose-full'].filename} in {tmp_path / 'cache'}"):
        resolve_model("blazepose-full", download=False)


def test_fresh_offline_user_gets_todays_keypoints(tmp_path, one_person_photo):
    env = fresh_user_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    single = Cli(env)("run", one_person_photo)
    assert single.returncode == 0, single.stderr
    (frame,) = [json.loads(line) for line in single.stdout.splitlines()]
    # The same keypoints as the same file from EDGEPOSE_MODEL_DIR (the shared copy), in this process.
    with PoseEstimator.create_from_model("movenet-lightning-int8", threads=2) as est:
        expected = [p.to_dict() for p in est.estimate(one_person_photo)]
    assert frame["poses"] == expected
    # ... which are the person's: the nose of 000000000785.jpg at about (367, 83).
    nose = np.array(frame["poses"][0]["keypoints"][0][:2])
    assert np.hypot(*(nose - (367, 83))) < 15, nose

    multi = Cli(env)("run", DATA_DIR / "coco" / "000000196141.jpg", "--mode", "multi")
    assert multi.returncode == 0, multi.stderr
    assert len(json.loads(multi.stdout)["poses"]) >= 3  # the bundled detector found the group
    assert not any((tmp_path / "home").rglob("*.tflite"))  # nothing downloaded or copied


def test_models_list_shows_bundled(tmp_path):
    env = fresh_user_env(tmp_path)
    res = Cli(env)("models", "list")
    assert res.returncode == 0, res.stderr
    rows = {
        c[0]: c for c in ([x.strip() for x in line.split("│")[1:-1]] for line in res.stdout.splitlines()) if len(c) == 6
    }
    assert {name for name, row in rows.items() if row[4] == "bundled"} == set(BUNDLED)
    assert f"searched (bundled): {BUNDLED_DIR}" in res.stdout
