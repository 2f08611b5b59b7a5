"""Image I/O: atomic writes, and bad image files refused with the file and the problem named."""

from __future__ import annotations

import os
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


def test_atomic_write_refuses_a_folder_a_file_as_folder_and_a_special_file(tmp_path: Path) -> None:
    # a folder: the rename failed naming the temporary file; a file on the way: mkdir's FileExistsError; a FIFO (or,
    # as root, a device such as /dev/full): the rename replaced it with a plain file
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"keep")
    os.mkfifo(tmp_path / "fifo")
    for target, needle in [(tmp_path / "dir", "is a folder"), (tmp_path / "file" / "x.png", "file is a file, not a folder"),
                           (tmp_path / "file" / "a" / "x.png", "file is a file, not a folder"),
                           (tmp_path / "fifo", "is not a regular file")]:
        with pytest.raises(InputError, match=needle):
            atomic_write(target, b"new")
    assert (tmp_path / "file").read_bytes() == b"keep" and (tmp_path / "fifo").is_fifo()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir", "fifo", "file"]  # no temp file left behind
    assert not any((tmp_path / "dir").iterdir())


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


# -- issue 15 item 4: images that used to be accepted wrongly ------------------------------------------------
def test_exif_rotation_is_applied_and_the_mask_checked_against_the_displayed_size(tmp_path: Path) -> None:
    stored = Image.new("RGB", (120, 80), (200, 30, 30))
    stored.paste((30, 30, 200), (0, 0, 20, 80))  # a blue stripe on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": a phone held upright
    stored.save(tmp_path / "p.jpg", exif=exif.tobytes(), quality=95)
    im = open_image(tmp_path / "p.jpg")
    assert im.size == (80, 120)  # displayed upright
    assert np.asarray(im)[5, 40, 2] > 150  # the stripe is now along the top
    upright = Image.new("L", (80, 120), 0)
    upright.paste(255, (10, 10, 70, 110))
    upright.save(tmp_path / "p_mask.png")
    cut = load_cutout(tmp_path / "p.jpg", tmp_path / "p_mask.png")
    assert cut.size == (80, 120) and cut.getchannel("A").getbbox() == (10, 10, 70, 110)
    Image.new("L", (120, 80), 255).save(tmp_path / "p_mask.png")  # a mask drawn on the sideways pixels
    with pytest.raises(InputError, match=r"mask is 120×80 but image is 80×120"):
        load_cutout(tmp_path / "p.jpg", tmp_path / "p_mask.png")


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    a = np.zeros((64, 64), np.uint16)
    a[8:56, 8:56] = 65535
    a[20:30, 20:30] = 32896  # half transparent in a 16-bit mask
    Image.fromarray(a).save(tmp_path / "m.png")
    assert Image.open(tmp_path / "m.png").mode.startswith("I")
    m = open_image(tmp_path / "m.png")
    assert m.mode == "L"
    v = np.asarray(m)
    assert v[40, 40] == 255 and v[0, 0] == 0 and v[25, 25] == 128  # PIL's own convert("L") gives 255 here


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_animated_images_are_refused(tmp_path: Path, fmt: str) -> None:
    frames = [_cutout(64, (200, 30 + 60 * i, 30)) for i in range(3)]
    frames[0].save(tmp_path / f"a.{fmt}", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(InputError, match=rf"a\.{fmt}.*animated image \(3 frames\)"):
        open_image(tmp_path / f"a.{fmt}")
    frames[0].save(tmp_path / f"still.{fmt}")  # one frame is fine
    assert open_image(tmp_path / f"still.{fmt}").size == (64, 64)
