"""Store round trip, content-addressed blobs, atomic writes, image checks, config-as-constructor."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write, load_cutout, open_image, png_bytes
from adcreative.core.modeling import ConfigMixin, register_to_config
from adcreative.core.store import Store
from adcreative.core.types import Creative, Event, Label, Product, Verdict


def _cutout(size: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> Image.Image:
    a = np.zeros((size, size, 4), np.uint8)
    a[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = (*colour, 255)
    return Image.fromarray(a, "RGBA")


def test_store_round_trip(store: Store) -> None:
    p = Product("p1", "Red Box", "default", _cutout(), copy="Buy now", price=9.5, attrs={"badge": "NEW"})
    store.add_products([p])
    got = store.get_product("p1")
    assert got.title == "Red Box" and got.price == 9.5 and got.attrs == {"badge": "NEW"}
    assert np.array_equal(np.asarray(got.image), np.asarray(p.image))
    img = Image.new("RGB", (40, 30), (1, 2, 3))
    c = store.add_creative(Creative("c1", "p1", "", "compositor", "1.0", 7, "1:1", 40, 30,
                                    params={"a": [1, 2]}, layout={"product": [0, 0, 5, 5]}), img)
    assert store.blobs.path(c.image_sha).exists()
    assert store.get_creative("c1").params == {"a": [1, 2]}
    assert np.array_equal(np.asarray(store.creative_image("c1")), np.asarray(img))
    store.add_verdicts([Verdict("c1", "rfnet@x", {"available": 0.8, "unsuitable": 0.2})])
    v = store.latest_verdict("c1")
    assert v is not None and v.label == "available" and v.p_available == pytest.approx(0.8)
    store.add_label(Label("c1", "space_mismatch", "alice"))
    assert [lb.label for lb in store.labels()] == ["space_mismatch"]
    assert store.add_events([Event("impression", "r1", "u1", "ad1", "c1"), Event("click", "r1", "u1", "ad1", "c1")]) == 2
    assert [e.kind for e in store.events()] == ["impression", "click"]
    store.put_features("explicit", "1", {"c1": {"area": 0.3}})
    assert store.get_features("explicit", ["c1"]) == {"c1": {"area": 0.3}}
    # a second Store on the same folder sees everything (it is on disk, not in memory)
    again = Store(home=store.home)
    assert again.product_ids() == ["p1"] and again.get_creative("c1").seed == 7


def test_store_rejects_duplicates_and_empty_titles_without_writing(store: Store) -> None:
    store.add_products([Product("a", "A", "default", _cutout())])
    with pytest.raises(InputError, match="already in the store"):
        store.add_products([Product("b", "B", "default", _cutout()), Product("a", "A2", "default", _cutout())])
    with pytest.raises(InputError, match="duplicate product id"):
        store.add_products([Product("c", "C", "default", _cutout()), Product("c", "C", "default", _cutout())])
    with pytest.raises(InputError, match="empty title"):
        store.add_products([Product("d", "  ", "default", _cutout())])
    assert store.product_ids() == ["a"]
    with pytest.raises(InputError, match="no creative"):
        store.add_label(Label("missing", "available", "bob"))
    with pytest.raises(ValueError, match="not one of"):
        Label("x", "blurry", "bob")


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


class _Scaler(ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 3, offset: float = 0.5) -> None:
        self.w = np.arange(dim, dtype=np.float32) + offset

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.w = np.asarray(arrays["w"]).copy()


def test_config_is_the_constructor(tmp_path: Path) -> None:
    m = _Scaler(dim=4, offset=1.0)
    m.w *= 2
    m.save_pretrained(tmp_path / "m")
    assert sorted(x.name for x in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    back = _Scaler.from_pretrained(tmp_path / "m")
    assert back.config == {"dim": 4, "offset": 1.0}
    assert np.array_equal(back.w, m.w)
