"""Image I/O: atomic writes, and bad image files refused with the file and the problem named."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write, load_cutout, open_image, png_bytes


def _cutout(size: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    a = np.zeros((size, size, 4), np.uint8)
    a[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (*colour, 255)
    return Image.fromarray(a, "RGBA")


def test_atomic_write_leaves_old_content_on_failure(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    atomic_write(p, b"old")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        atomic_write(p, 123)  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def _png_with_size(path: Path, w: int, h: int) -> None:
    """A PNG whose header claims w×h (the data is tiny): tests the size check without 1.6 GB of pixels."""
    data = png_bytes(Image.new("RGBA", (40, 40)))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    path.write_bytes(data[:16] + ihdr + crc + data[33:])


def test_image_checks_name_the_file_and_problem(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match=r"notes\.png.*not an image"):
        open_image(tmp_path / "notes.png")
    good = png_bytes(_cutout(128))
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"trunc\.png.*(corrupt|truncated)"):
        open_image(tmp_path / "trunc.png")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match=r"rgb\.png.*no alpha channel and no mask"):
        load_cutout(tmp_path / "rgb.png")
    _png_with_size(tmp_path / "huge.png", 20000, 20000)
    with pytest.raises(InputError, match=r"huge\.png.*(20000×20000|400000000 pixels).*(over the|exceeds) limit"):
        open_image(tmp_path / "huge.png")
    with pytest.raises(InputError, match="does not exist"):
        open_image(tmp_path / "missing.png")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "empty.png")
    with pytest.raises(InputError, match="mask is empty"):
        load_cutout(tmp_path / "empty.png")
    # image + mask pair
    Image.new("RGB", (64, 64), "red").save(tmp_path / "pair.jpg")
    m = Image.new("L", (64, 64), 0)
    m.paste(255, (10, 10, 50, 50))
    m.save(tmp_path / "pair_mask.png")
    im = load_cutout(tmp_path / "pair.jpg", tmp_path / "pair_mask.png")
    assert im.mode == "RGBA" and im.getchannel("A").getbbox() == (10, 10, 50, 50)
