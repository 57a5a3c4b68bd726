"""Model resolution: explicit path, EDGEPOSE_MODEL_DIR, cache, verified download, offline errors."""

from __future__ import annotations

import io
import urllib.request

import pytest

from edgepose.assets import registry
from edgepose.assets.registry import REGISTRY, resolve_model, sha256_of
from edgepose.errors import ModelError


def test_registry_has_the_required_names():
    for name in (
        "movenet-lightning-int8",
        "movenet-lightning-int8-edgetpu",
        "movenet-lightning-fp16",
        "movenet-thunder-int8",
        "movenet-thunder-fp16",
        "movenet-multipose-lightning",
    ):
        spec = REGISTRY[name]
        assert spec.url.startswith("https://") and spec.filename.endswith(".tflite")
        assert spec.family == "movenet" and len(spec.keypoints) == 17
        # every download is verified against a pinned hash
        assert spec.sha256 is not None and len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
    assert REGISTRY["movenet-lightning-int8-edgetpu"].cpu_equivalent == "movenet-lightning-int8"


def test_pinned_hashes_match_the_real_files(model_dir):
    for name in ("movenet-lightning-int8", "movenet-lightning-int8-edgetpu"):
        assert sha256_of(model_dir / REGISTRY[name].filename) == REGISTRY[name].sha256


def test_resolves_from_model_dir(movenet_path):
    resolved = resolve_model("movenet-lightning-int8")
    assert resolved.path == movenet_path and resolved.spec is REGISTRY["movenet-lightning-int8"]


def test_explicit_path_keeps_the_registry_layout(movenet_path):
    resolved = resolve_model(str(movenet_path))
    assert resolved.name == str(movenet_path) and resolved.spec.name == "movenet-lightning-int8"


def test_sha256_mismatch_is_refused(tmp_path, monkeypatch, movenet_path):
    tampered = bytearray(movenet_path.read_bytes())
    tampered[-1] ^= 0xFF
    (tmp_path / REGISTRY["movenet-lightning-int8"].filename).write_bytes(bytes(tampered))
    monkeypatch.setenv("EDGEPOSE_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelError, match="does not match the pinned SHA-256"):
        resolve_model("movenet-lightning-int8")


def test_offline_error_names_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("EDGEPOSE_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        resolve_model("movenet-thunder-int8")
    msg = str(err.value)
    assert f"put movenet_singlepose_thunder_int8.tflite in {tmp_path}" in msg
    assert "tfhub.dev" in msg


def test_unknown_name_and_missing_path():
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("movenet-gigantic")
    with pytest.raises(ModelError, match="model file not found"):
        resolve_model("/nowhere/model.tflite")


def _serve(monkeypatch, payload: bytes) -> None:
    def fake_urlopen(url, timeout):
        assert url == REGISTRY["movenet-lightning-int8"].url
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)


def test_download_is_verified_and_cached(tmp_path, monkeypatch, movenet_path):
    monkeypatch.setenv("EDGEPOSE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(registry, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "nothing-bundled")
    _serve(monkeypatch, movenet_path.read_bytes())
    resolved = resolve_model("movenet-lightning-int8", download=True)
    assert resolved.path == tmp_path / "cache" / movenet_path.name
    assert sha256_of(resolved.path) == REGISTRY["movenet-lightning-int8"].sha256
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [movenet_path.name]


def test_download_with_wrong_bytes_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEPOSE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(registry, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "nothing-bundled")
    _serve(monkeypatch, b"<html>not the model</html>")
    with pytest.raises(ModelError, match="does not match the pinned SHA-256"):
        resolve_model("movenet-lightning-int8", download=True)
    assert list((tmp_path / "cache").iterdir()) == []
