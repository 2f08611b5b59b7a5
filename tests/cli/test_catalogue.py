"""`products add` in-process: CSV/JSON metadata, image + mask pairs; a bad file or row refuses the whole import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from adcreative.catalogue.sample import save_catalogue
from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Product


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def _home(tmp_path: Path) -> list[str]:
    return ["--home", str(tmp_path / "home")]


def _expect_refused(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    capsys.readouterr()
    assert main([*_home(tmp_path), "products", "add", str(folder)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    for n in needles:
        assert n in err, (n, err)
    assert Store(home=tmp_path / "home").product_ids() == []  # nothing written
    assert not list((tmp_path / "home" / "blobs").rglob("*.png"))  # not even an orphan blob


@pytest.mark.parametrize("case", ["not_image", "truncated", "rgb_no_mask", "huge", "empty_title", "duplicate_id",
                                  "long_id", "nul_title"])
def test_bad_catalogue_refused_whole(case: str, tmp_path: Path, catalogue: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(catalogue, folder)
    meta = json.loads((folder / "products.json").read_text())
    if case == "not_image":
        (folder / "zz.png").write_text("hello")
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "not an image"]
    elif case == "truncated":
        data = (folder / "citrus-can.png").read_bytes()
        (folder / "citrus-can.png").write_bytes(data[: len(data) // 3])
        needles = ["citrus-can.png", "truncated"]
    elif case == "rgb_no_mask":
        Image.new("RGB", (80, 80), "blue").save(folder / "zz.png")
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "no alpha channel and no mask"]
    elif case == "huge":
        from tests.core.test_imageio import _png_with_size

        _png_with_size(folder / "zz.png", 20000, 20000)
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "limit"]
    elif case == "empty_title":
        meta[1]["title"] = "  "
        needles = ["empty title", meta[1]["id"]]
    elif case == "long_id":  # longer than the column: was a traceback and an orphan blob on PostgreSQL
        (folder / f"{meta[2]['id']}.png").rename(folder / f"{'x' * 129}.png")
        meta[2]["id"] = "x" * 129
        needles = ["product id is 129 characters long, over the limit of 128"]
    elif case == "nul_title":  # PostgreSQL cannot hold a NUL in text: was a traceback there
        meta[2]["title"] = "Citrus\x00Can"
        needles = ["title contains a NUL character"]
    else:
        meta.append(dict(meta[0]))
        needles = ["duplicate product id", meta[0]["id"]]
    (folder / "products.json").write_text(json.dumps(meta))
    _expect_refused(tmp_path, folder, capsys, *needles)


def test_duplicate_against_store_refused(tmp_path: Path, catalogue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(catalogue)]) == 0
    capsys.readouterr()
    assert main([*h, "products", "add", str(catalogue)]) == 2
    assert "already in the store" in capsys.readouterr().err
    assert len(Store(home=tmp_path / "home").product_ids()) == 3


def test_csv_metadata_and_image_mask_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    Image.new("RGB", (96, 96), (30, 90, 200)).save(folder / "blue-mug.jpg")
    m = Image.new("L", (96, 96), 0)
    m.paste(255, (20, 10, 76, 90))
    m.save(folder / "blue-mug_mask.png")
    (folder / "products.csv").write_text("id,title,category,copy,price,badge\n"
                                         "blue-mug,Blue Enamel Mug,kitchen,Camp-ready,12.5,NEW\n")
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(folder)]) == 0
    p = Store(home=tmp_path / "home").get_product("blue-mug")
    assert p.title == "Blue Enamel Mug" and p.price == 12.5 and p.attrs == {"badge": "NEW"}
    assert p.image.mode == "RGBA" and p.image.getchannel("A").getbbox() == (20, 10, 76, 90)
    (folder / "products.csv").write_text("id,title,category,price\nblue-mug,Mug,kitchen,cheap\n")
    assert main(["--home", str(tmp_path / "h2"), "products", "add", str(folder)]) == 2
    assert "not a number" in capsys.readouterr().err
