"""The bad-input corpus, generated into tmp dirs from the real photo and model, through the real CLI.

Every bad input must end in a non-zero exit, exactly one "edgepose: error: ..." line on stderr (a
batch: one line per failed input plus one summary line), no traceback, and nothing half-written.
Odd but valid images (grayscale, alpha, palette, 16-bit, CMYK, EXIF-rotated) must simply work and
find the same person as the plain RGB photo.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgepose.errors import ImageError
from edgepose.image import load_image
from tests.conftest import Cli, cli_env, json_lines, pose_xy

EXIF_ORIENTATION = 0x0112
ROTATE_90_CW_TO_DISPLAY = 6  # EXIF Orientation value: the stored pixels are turned 90° counter-clockwise


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Cli:
    return Cli(cli_env(model_dir, tmp_path_factory.mktemp("xdg-cache")))


def assert_one_error_line(res: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """stderr is exactly one non-empty "edgepose: error:" line holding every fragment; no traceback."""
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("edgepose: error: ") and lines[0] != "edgepose: error: ", lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def listing(folder: Path) -> list[str]:
    """Every name in `folder`, dot-files (atomic writers' temporaries) included; [] if it does not exist."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# The corpus ------------------------------------------------------------------------------------


def png_bomb(side: int = 60_000) -> bytes:
    """A well-formed PNG (correct CRCs) whose IHDR claims side x side RGB pixels, with a tiny IDAT.

    Decoding it would need side² x 3 bytes (10.8 GB for 60000); the loader must refuse from the header.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, one_person_photo: Path, movenet_path: Path) -> dict[str, Path]:
    """name -> path of every bad file; "missing.jpg" is deliberately never created."""
    d = tmp_path_factory.mktemp("corpus")
    jpeg = one_person_photo.read_bytes()
    model = movenet_path.read_bytes()
    rng = np.random.default_rng(0)
    contents = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) * 4 // 10],  # SOI and headers intact, 60% of the scan data gone
        "text.jpg": b"holiday photos, see attachment\n",
        "random.png": rng.bytes(4096),
        "bomb.png": png_bomb(),
        "random.mp4": rng.bytes(16384),
        "empty.tflite": b"",
        "bad.tflite": b"this is a text file, not a model\n",
        "truncated.tflite": model[: len(model) // 2],
    }
    for name, data in contents.items():
        (d / name).write_bytes(data)
    return {**{name: d / name for name in contents}, "missing.jpg": d / "missing.jpg"}


BAD_IMAGES = {
    # name: what the single error line must say about it
    "empty.jpg": "empty file",
    # Pillow (without LOAD_TRUNCATED_IMAGES) raises on the missing scan data rather than returning a
    # half-grey picture; the product turns that into a clean error, which is what we pin here.
    "truncated.jpg": "corrupt or truncated image",
    "text.jpg": "not an image",
    "random.png": "not an image",
    "bomb.png": "too large",
}


# Bad inputs through the CLI --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        *BAD_IMAGES.items(),
        ("random.mp4", "cannot open as a video"),
        ("missing.jpg", "no such file or directory"),
    ],
)
def test_bad_input_fails_with_one_line_and_writes_nothing_partial(cli, corpus, tmp_path, name, fragment):
    out = tmp_path / "out"
    overlay = "overlay.mp4" if name.endswith(".mp4") else "overlay.png"
    res = cli("run", corpus[name], "--output", out / "poses.jsonl", "--draw", out / overlay)
    assert res.returncode == 1, res.stderr
    assert_one_error_line(res, f"{corpus[name]}: ", fragment)
    assert res.stdout == ""
    # Nothing was produced, so no JSONL (an existing one would be left as it was), no overlay, and no
    # dot-prefixed temporary (".poses.edgepose-tmp-*.jsonl", ".overlay.edgepose-tmp-*.mp4") left behind.
    assert listing(out) == []


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("empty.tflite", "model file is empty"),
        ("bad.tflite", "is not a TFLite model"),
        ("truncated.tflite", "is a truncated or corrupt TFLite model"),
    ],
)
def test_bad_model_fails_with_one_line(cli, corpus, one_person_photo, tmp_path, name, fragment):
    out = tmp_path / "poses.jsonl"
    res = cli("run", one_person_photo, "--model", corpus[name], "--output", out)
    assert res.returncode == 2, res.stderr
    assert_one_error_line(res, name, fragment)
    assert res.stdout == ""
    assert listing(tmp_path) == []  # the model is refused before any output is opened


@pytest.mark.parametrize("how", ["registry name", "file path"])
def test_edgetpu_model_without_a_tpu_names_the_cpu_model(cli, one_person_photo, edgetpu_path, how):
    model = "movenet-lightning-int8-edgetpu" if how == "registry name" else edgetpu_path
    res = cli("run", one_person_photo, "--model", model)
    assert res.returncode == 2, res.stderr
    assert_one_error_line(res, "compiled for the Edge TPU", "movenet-lightning-int8`")
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--model", "blazepose-detector"), "is a person detector"),
        (("--mode", "multi", "--max-people", "0"), "--max-people must be an integer of at least 1"),
        (("--mode", "several"), "unknown --mode"),
    ],
)
def test_wrong_multi_person_settings_are_one_line(cli, one_person_photo, args, fragment):
    res = cli("run", one_person_photo, *args)
    assert res.returncode == 2
    assert_one_error_line(res, fragment)
    assert res.stdout == ""


def test_batch_keeps_the_good_frames_and_summarizes_the_bad(cli, corpus, one_person_photo, tmp_path):
    bad = [corpus["text.jpg"], corpus["missing.jpg"], corpus["bomb.png"]]
    out = tmp_path / "out"
    res = cli("run", bad[0], one_person_photo, bad[1], bad[2], "--output", out / "poses.jsonl", "--draw", out / "drawn")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == len(bad) + 1, res.stderr  # one line per failure, one summary line
    *errors, summary = lines
    # Each bad input has exactly one error line (the missing file is reported first, while the
    # inputs are expanded, so the order is not the command line's).
    for path in bad:
        assert sum(line.startswith(f"edgepose: error: {path}: ") for line in errors) == 1, (path, errors)
    assert summary.startswith("edgepose: 3 input(s) failed: "), summary
    assert all(str(path) in summary for path in bad), summary
    # The good photo still produced its JSON line and its overlay; nothing else, no temporaries.
    assert [f["source"] for f in json_lines((out / "poses.jsonl").read_text())] == [str(one_person_photo)]
    assert listing(out) == ["drawn", "poses.jsonl"]
    assert listing(out / "drawn") == [one_person_photo.name]


# load_image, directly ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fragment"), [*BAD_IMAGES.items(), ("missing.jpg", "no such file")])
def test_load_image_raises_image_error(corpus, name, fragment):
    with pytest.raises(ImageError, match=fragment) as info:
        load_image(corpus[name])
    assert str(info.value).startswith(f"{corpus[name]}: ")
    assert "\n" not in str(info.value)


# Odd but valid images ---------------------------------------------------------------------------


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def rgba_with_transparent_border(photo: Image.Image, border: int = 12) -> Image.Image:
    """Opaque photo, fully transparent frame: exercises the alpha compositing, away from the person."""
    alpha = np.zeros((photo.height, photo.width), np.uint8)
    alpha[border:-border, border:-border] = 255
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def exif_rotated_jpeg(photo: Image.Image) -> bytes:
    """The photo stored sideways, with the EXIF tag that tells viewers to turn it upright again."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW_TO_DISPLAY
    return encode(photo.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif)


def variant_files(photo: Image.Image) -> dict[str, tuple[bytes, str, tuple[int, int]]]:
    """name -> (file bytes, the mode Pillow must open it in, its stored size)."""
    gray16 = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)  # full 16-bit range
    upright, sideways = photo.size, photo.size[::-1]
    return {
        "gray.png": (encode(photo.convert("L"), "PNG"), "L", upright),
        "rgba.png": (encode(rgba_with_transparent_border(photo), "PNG"), "RGBA", upright),
        "palette.png": (encode(photo.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "P", upright),
        "gray16.png": (encode(gray16, "PNG"), "I;16", upright),
        "cmyk.jpg": (encode(photo.convert("CMYK"), "JPEG", quality=95), "CMYK", upright),
        "exif_rotated.jpg": (exif_rotated_jpeg(photo), "RGB", sideways),
    }


@pytest.fixture(scope="module")
def photo(one_person_photo: Path) -> Image.Image:
    with Image.open(one_person_photo) as im:
        return im.convert("RGB")


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory, photo: Image.Image) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("variants")
    paths = {}
    for name, (data, mode, size) in variant_files(photo).items():
        path = d / name
        path.write_bytes(data)
        with Image.open(path) as im:  # the file really is the kind of image the test claims
            assert (im.mode, im.size) == (mode, size), name
        paths[name] = path
    return paths


@pytest.fixture(scope="module")
def reference_xy(estimator, one_person_photo: Path) -> np.ndarray:
    """Keypoints of the plain RGB photo, the yardstick for every variant."""
    (pose,) = estimator.estimate_frame(one_person_photo).poses
    return pose_xy(pose)


def assert_same_person(xy: np.ndarray, reference_xy: np.ndarray, size: tuple[int, int], name: str) -> None:
    """Mean keypoint distance under 3% of the image diagonal: the same pose, allowing for colour loss."""
    error = float(np.linalg.norm(xy - reference_xy, axis=1).mean())
    assert error < 0.03 * float(np.hypot(*size)), (name, error)


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "palette.png", "gray16.png", "cmyk.jpg", "exif_rotated.jpg"])
def test_odd_but_valid_image_finds_the_same_pose(estimator, variants, reference_xy, photo, name):
    result = estimator.estimate_frame(variants[name])
    assert (result.width, result.height) == photo.size  # upright size, EXIF applied
    assert len(result.poses) == 1
    assert_same_person(pose_xy(result.poses[0]), reference_xy, photo.size, name)


def test_sixteen_bit_png_keeps_its_full_range(variants, photo):
    """I;16 data scaled x257 must come back as the 8-bit grayscale, not clipped to white."""
    expected = np.asarray(photo.convert("L"))
    assert np.array_equal(load_image(variants["gray16.png"]), np.repeat(expected[:, :, None], 3, axis=2))


def test_exif_rotation_is_applied_to_the_pixels(variants, photo):
    """After exif_transpose the sideways JPEG is the upright photo again (up to JPEG loss)."""
    upright = load_image(variants["exif_rotated.jpg"]).astype(int)
    assert upright.shape == (photo.height, photo.width, 3)
    assert np.abs(upright - np.asarray(photo).astype(int)).mean() < 4


@pytest.mark.parametrize("name", ["rgba.png", "exif_rotated.jpg"])
def test_odd_but_valid_image_through_the_cli(cli, variants, reference_xy, photo, tmp_path, name):
    src = tmp_path / name
    shutil.copy(variants[name], src)
    overlay = tmp_path / f"overlay{src.suffix}"
    res = cli("run", src, "--draw", overlay)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    (frame,) = json_lines(res.stdout)
    assert (frame["width"], frame["height"]) == photo.size  # the upright size, not the stored one
    (pose,) = frame["poses"]
    assert_same_person(np.array(pose["keypoints"])[:, :2], reference_xy, photo.size, name)
    with Image.open(overlay) as im:
        assert im.size == photo.size  # the overlay is drawn on the upright picture
    assert listing(tmp_path) == sorted([name, overlay.name])
