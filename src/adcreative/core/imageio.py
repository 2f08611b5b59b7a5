"""Image I/O with checks: every bad file gets an error that names it and says what is wrong."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from adcreative.core.durable import UMASK, file_in_the_way, fsync_dir
from adcreative.core.errors import InputError

# Cutouts larger than this are refused before decoding (a 20000×20000 RGBA image is 1.6 GB in memory).
MAX_PIXELS = 6000 * 6000
MIN_SIDE = 32
ImageFile.LOAD_TRUNCATED_IMAGES = False


def open_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image file, refusing missing, non-image, truncated and huge files."""
    p = Path(path)
    if not p.exists():
        raise InputError("file does not exist", source=p)
    if not p.is_file():
        raise InputError("not a file", source=p)
    try:
        with Image.open(p) as im:
            w, h = im.size  # header only: no decode yet
            if w * h > max_pixels:
                raise InputError(f"image is {w}×{h} pixels, over the limit of {max_pixels} pixels", source=p)
            if min(w, h) < MIN_SIDE:
                raise InputError(f"image is {w}×{h} pixels, under the minimum side of {MIN_SIDE}", source=p)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise InputError(f"animated image ({frames} frames): export the frame you want as a still image",
                                 source=p)
            im.load()
            # What a viewer shows: the camera's EXIF rotation applied (a phone's portrait JPEG is stored sideways).
            out = ImageOps.exif_transpose(im)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError("not an image file (cannot identify the format)", source=p) from None
    except Image.DecompressionBombError as e:
        raise InputError(f"image too large: {e}", source=p) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"corrupt or truncated image ({e})", source=p) from None
    return _eight_bit(out)


def _eight_bit(im: Image.Image) -> Image.Image:
    """16- and 32-bit greyscale scaled to 8 bits (PIL's own conversion clips everything over 255 to white)."""
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() <= 65535 else float(a.max())
        return Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    return im


def load_cutout(path: str | Path, mask_path: str | Path | None = None) -> Image.Image:
    """Load a product as RGBA: an RGBA cutout, or an image plus a separate mask file."""
    im = open_image(path)
    if mask_path is not None:
        mask = open_image(mask_path).convert("L")
        if mask.size != im.size:
            raise InputError(f"mask is {mask.size[0]}×{mask.size[1]} but image is {im.size[0]}×{im.size[1]}",
                             source=mask_path)
        im = im.convert("RGB")
        im.putalpha(mask)
    elif im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
    else:
        raise InputError(f"image mode {im.mode} has no alpha channel and no mask was given "
                         "(give an RGBA cutout or an image + mask pair)", source=path)
    alpha = np.asarray(im.getchannel("A"))
    cover = float((alpha > 127).mean())
    if cover < 0.01:
        raise InputError("the mask is empty (under 1% of pixels are product)", source=mask_path or path)
    if cover > 0.995:
        raise InputError("the mask covers the whole image: no background was cut out", source=mask_path or path)
    return im


def png_bytes(im: Image.Image) -> bytes:
    """Deterministic PNG encoding (no timestamps, fixed compression) so equal pixels give equal bytes."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_folder_path(folder: str | Path, *, what: str | None = None) -> None:
    """Refuse a folder to write into when it, or the nearest existing folder above it, is a file (mkdir's
    FileExistsError or NotADirectoryError would name neither the path given nor the culprit)."""
    in_the_way = file_in_the_way(folder)
    if in_the_way is not None:
        raise InputError(f"cannot write {what or folder}: {in_the_way} is a file, not a folder")


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the whole new content, never a part."""
    p = Path(path)
    if p.is_dir():  # else the rename fails naming the temporary file, not the path the user gave
        raise InputError(f"{p} is a folder: give a file name to write")
    if p.exists() and not p.is_file():  # a device or a pipe: the rename would replace it with a plain file
        raise InputError(f"{p} is not a regular file: give a file name to write")
    check_folder_path(p.parent, what=str(p))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600 files; a report or model should be readable like any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        fsync_dir(p.parent)  # the rename itself must survive a power cut, not only the bytes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def save_png(path: str | Path, im: Image.Image) -> str:
    """Atomically save ``im`` as PNG; returns the sha256 of the bytes written."""
    data = png_bytes(im)
    atomic_write(path, data)
    return sha256(data)
