"""Images in: whatever the user passes (path, PIL image, numpy array) becomes an HxWx3 uint8 RGB array,
safely; and the per-channel normalization that turns pixels into a model's input (`resampling` makes
the pixels)."""

from __future__ import annotations

import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from edgepose.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image

# Pillow is imported where a file is decoded or a PIL image handled, not on import: a video run whose
# crops are all axis-aligned never needs it (~12 ms of start-up).
ImageInput = Union[str, os.PathLike, "Image.Image", np.ndarray]

# Larger images are refused before their pixels are decoded (decompression bombs). 100 MP covers
# every phone camera; edge pipelines resize far below this anyway.
MAX_PIXELS = 100_000_000
MAX_SIDE = 30_000

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


def load_image(image: ImageInput) -> np.ndarray:
    """Return an HxWx3 uint8 RGB array, EXIF orientation applied. Raises ImageError on anything else."""
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if is_pil_image(image):
        return _from_pil(image, name="image")
    if not isinstance(image, (str, os.PathLike)):
        raise ImageError(
            f"cannot read an image from a {type(image).__name__}: give a file path, an HxWx3 uint8 RGB array "
            "or a PIL image"
        )
    from PIL import Image, UnidentifiedImageError

    path = Path(image)
    if check_input_file(path, ImageError).st_size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_size(im.size, str(path))
                return _from_pil(im, name=str(path))
    except ImageError:
        raise
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not an image (or a format Pillow cannot read)") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: image too large to decode safely") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageError(f"{path}: corrupt or truncated image ({e})") from e


def is_pil_image(obj: object) -> bool:
    """Whether `obj` is a PIL image, without importing Pillow (an object can only be one once it is)."""
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def check_input_file(path: Path, error: type[Exception]) -> os.stat_result:
    """One line for an input that is missing, not a regular file (a FIFO, a device) or unreadable; else
    its stat."""
    try:
        info = path.stat()
        mode = info.st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a directory")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: cannot read: permission denied")
    return info


def _check_size(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise ImageError(f"{name}: image too large ({w}x{h}; the limit is {MAX_PIXELS} pixels)")


def _from_pil(im: Image.Image, name: str) -> np.ndarray:
    from PIL import Image, ImageOps

    _check_size(im.size, name)
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit/float data: scale the actual range to 8 bits rather than clipping to white.
        arr = np.asarray(im, dtype=np.float32)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else 255.0)
        gray = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        # Transparent pixels become black, the same as the letterbox padding the model sees.
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"array image must be HxWx3 RGB (got shape {arr.shape})")
    _check_size((arr.shape[1], arr.shape[0]), "array image")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(f"array image must be uint8 (got {arr.dtype})")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return arr


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class Normalization:
    """Model input = (RGB pixel 0..255 - mean) / std, per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """float32 model input from ...x3 uint8 RGB pixels."""
        # As a multiply and an add, in float32: for mean 0 this gives exactly pixels * (1/std), the
        # numbers the hand-written preprocessing of the MediaPipe models always produced.
        scale = (1.0 / np.asarray(self.std, np.float64)).astype(np.float32)
        offset = (-np.asarray(self.mean, np.float64) / np.asarray(self.std, np.float64)).astype(np.float32)
        x = pixels.astype(np.float32)
        x *= scale
        x += offset
        return x
