"""The bad-input corpus through the real CLI: one line on stderr, a non-zero exit, no traceback,
no half-written output; and the odd-but-valid images that must simply work."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from edgepose.errors import ImageError
from edgepose.images import load_image
from PIL import Image

from tests.conftest import pose_xy
from tests.test_run_cli import edgepose, lines


def _png_bomb(path: Path, side: int = 60000) -> None:
    """A valid PNG header claiming side x side pixels, with a tiny IDAT: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, one_person_photo, movenet_path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    jpeg = one_person_photo.read_bytes()
    files = {
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n",
        "random.png": np.random.default_rng(1).bytes(4096),
        "truncated.jpg": jpeg[:200],  # header only: nothing decodable
        "video.mp4": np.random.default_rng(2).bytes(8192),
        "empty.tflite": b"",
        "text.tflite": b"not a model\n",
        "truncated.tflite": movenet_path.read_bytes()[: movenet_path.stat().st_size // 2],
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    _png_bomb(d / "bomb.png")
    return {p.name: p for p in d.iterdir()}


def assert_one_line_failure(res, *fragments: str, code: int | None = None) -> None:
    assert res.returncode != 0
    if code is not None:
        assert res.returncode == code
    assert "Traceback" not in res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgepose: error: "), res.stderr
    for f in fragments:
        assert f in err[0], err[0]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("empty.jpg", "empty file"),
        ("text.jpg", "not an image"),
        ("random.png", "not an image"),
        ("truncated.jpg", "corrupt or truncated"),
        ("bomb.png", "image too large"),
        ("video.mp4", "cannot open as a video"),
    ],
)
def test_bad_inputs_fail_with_one_line(corpus, tmp_path, name, fragment):
    out = tmp_path / "out"
    res = edgepose("run", corpus[name], "-o", out / "poses.jsonl", "--draw", out / "overlay.png")
    assert_one_line_failure(res, str(corpus[name]), fragment, code=1)
    # The JSONL is written (empty: no frame succeeded) and nothing half-written is left beside it.
    assert sorted(p.name for p in out.iterdir()) == ["poses.jsonl"]
    assert (out / "poses.jsonl").read_text() == ""


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("empty.tflite", "model file is empty"),
        ("text.tflite", "is not a TFLite model"),
        ("truncated.tflite", "truncated or corrupt"),
    ],
)
def test_bad_models_fail_with_one_line(corpus, one_person_photo, model, fragment):
    res = edgepose("run", one_person_photo, "--model", corpus[model])
    assert_one_line_failure(res, fragment, code=2)
    assert res.stdout == ""


def test_edgetpu_model_without_tpu(one_person_photo):
    res = edgepose("run", one_person_photo, "--model", "movenet-lightning-int8-edgetpu")
    assert_one_line_failure(res, "compiled for the Edge TPU", "use the CPU model `movenet-lightning-int8`", code=2)


def test_multi_mode_not_available_yet(one_person_photo):
    assert_one_line_failure(edgepose("run", one_person_photo, "--mode", "multi"), "not available yet", code=2)


def test_batch_keeps_going_and_summarizes(corpus, one_person_photo, tmp_path):
    out = tmp_path / "poses.jsonl"
    res = edgepose("run", corpus["text.jpg"], one_person_photo, tmp_path / "missing.jpg", corpus["bomb.png"],
                   "-o", out)  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("edgepose: ") for line in err)
    assert err[-1].startswith("edgepose: 3 input(s) failed:")
    assert [Path(o["source"]).name for o in lines(out.read_text())] == [one_person_photo.name]


@pytest.mark.parametrize("name", ["empty.jpg", "text.jpg", "random.png", "truncated.jpg", "bomb.png"])
def test_load_image_raises_image_error(corpus, name):
    with pytest.raises(ImageError):
        load_image(corpus[name])


def test_absurd_array_sizes_are_refused():
    with pytest.raises(ImageError):
        load_image(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 5), np.uint8))


# Odd but valid images: same person, same keypoints.


def _variants(photo: Image.Image) -> dict[str, bytes]:
    def save(im: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    gray16 = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257).convert("I;16")
    rotated = photo.transpose(Image.Transpose.ROTATE_90)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with "rotate 90 CW to display": upright again after exif_transpose
    return {
        "gray.png": save(photo.convert("L"), "PNG"),
        "rgba.png": save(photo.convert("RGBA"), "PNG"),
        "palette.png": save(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "gray16.png": save(gray16, "PNG"),
        "cmyk.jpg": save(photo.convert("CMYK"), "JPEG", quality=95),
        "exif_rotated.jpg": save(rotated, "JPEG", quality=95, exif=exif),
    }


def test_odd_but_valid_images_work(tmp_path, one_person_photo, estimator):
    photo = Image.open(one_person_photo).convert("RGB")
    reference = pose_xy(estimator.estimate(photo)[0])
    diagonal = float(np.hypot(*photo.size))
    for name, data in _variants(photo).items():
        path = tmp_path / name
        path.write_bytes(data)
        result = estimator.estimate_frame(path)
        assert (result.width, result.height) == photo.size, name
        assert len(result.poses) == 1, name
        error = np.linalg.norm(pose_xy(result.poses[0]) - reference, axis=1).mean()
        assert error < 0.03 * diagonal, (name, error)
        assert Image.open(path).mode in ("L", "RGBA", "P", "I;16", "CMYK", "RGB")


def test_exif_rotated_photo_through_the_cli(tmp_path, one_person_photo):
    photo = Image.open(one_person_photo).convert("RGB")
    path = tmp_path / "exif_rotated.jpg"
    path.write_bytes(_variants(photo)["exif_rotated.jpg"])
    res = edgepose("run", path, "--draw", tmp_path / "overlay.jpg")
    assert res.returncode == 0, res.stderr
    (obj,) = lines(res.stdout)
    assert (obj["width"], obj["height"]) == (640, 425)  # upright, as the EXIF tag says
    assert Image.open(tmp_path / "overlay.jpg").size == (640, 425)
