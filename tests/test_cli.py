"""The CLI run in-process: import, generate, regenerate bit for bit, dataset synth; bad input refused whole."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Product
from adcreative.generate.catalogue import save_catalogue
from adcreative.generate.dataset import read_dataset


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def _home(tmp_path: Path) -> list[str]:
    return ["--home", str(tmp_path / "home")]


def test_help_is_instant_and_lists_stages(capsys: pytest.CaptureFixture[str]) -> None:
    t = time.perf_counter()
    assert main(["--help"]) == 0
    assert time.perf_counter() - t < 2.0
    out = capsys.readouterr().out
    for cmd in ("demo", "generate", "products", "creatives", "dataset"):
        assert cmd in out


def test_import_generate_regenerate(tmp_path: Path, catalogue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(catalogue)]) == 0
    assert main([*h, "generate", "--product", "citrus-can", "--n", "2", "--aspect", "1:1,9:16"]) == 0
    store = Store(home=tmp_path / "home")
    cs = store.creatives(product_id="citrus-can")
    assert len(cs) == 4 and {c.aspect for c in cs} == {"1:1", "9:16"}
    assert all(c.params["generator_config"]["scale"] == 1.0 for c in cs)
    capsys.readouterr()
    out_png = tmp_path / "again.png"
    assert main([*h, "creatives", "regenerate", cs[1].id, "--out", str(out_png)]) == 0
    assert "identical" in capsys.readouterr().out
    assert out_png.read_bytes() == store.blobs.get_bytes(cs[1].image_sha)
    assert main([*h, "creatives", "show", cs[0].id]) == 0
    assert '"seed"' in capsys.readouterr().out
    assert main([*h, "generate", "--product", "nope", "--n", "1"]) == 2
    assert main([*h, "generate", "--product", "citrus-can", "--aspect", "3:1"]) == 2


def test_dataset_synth_and_read(tmp_path: Path, catalogue: Path) -> None:
    out = tmp_path / "ds"
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(out), "--per-class", "1",
                 "--scale", "0.3", "--colourways", "1"]) == 0
    samples = read_dataset(out)
    assert len(samples) == 3 * 2 * 6
    by_product: dict[str, set[str]] = {}
    for s in samples:
        by_product.setdefault(s.product_id, set()).add(s.split)
        assert s.image.exists() and s.mask is not None and s.mask.exists() and s.product is not None
        assert Image.open(s.mask).size == Image.open(s.image).size
    assert all(len(v) == 1 for v in by_product.values())  # no product in two splits
    assert {next(iter(v)) for v in by_product.values()} == {"train", "val", "test"}
    assert main(["dataset", "info", str(out)]) == 0


def test_dataset_synth_same_for_any_workers_and_per_product(tmp_path: Path, catalogue: Path) -> None:
    import json

    def rows(d: Path) -> dict[str, dict]:
        out = {}
        for line in (d / "manifest.jsonl").read_text().splitlines():
            r = json.loads(line)
            r["split"] = None  # splits depend on the product set; the images must not
            out[r["id"]] = r
        return out

    one, two = tmp_path / "w1", tmp_path / "w2"
    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.25"]
    assert main([*base, "--out", str(one)]) == 0
    assert main([*base, "--out", str(two), "--workers", "2"]) == 0
    r1, r2 = rows(one), rows(two)
    assert r1 == r2 and len(r1) == 3 * 6
    for sid, r in r1.items():
        assert (one / r["image"]).read_bytes() == (two / r["image"]).read_bytes(), sid
    # a product's images are drawn from its own seed: rendering it alone gives the same files
    solo = tmp_path / "solo"
    only = sorted({r["product_id"] for r in r1.values()})[0]
    shutil.copytree(catalogue, tmp_path / "cat1")
    for f in (tmp_path / "cat1").iterdir():
        if f.suffix == ".png" and f.stem != only:
            f.unlink()
    assert main(["dataset", "synth", "--products", str(tmp_path / "cat1"), "--per-class", "1", "--scale", "0.25",
                 "--out", str(solo)]) == 0
    rs = rows(solo)
    assert rs and set(rs) <= set(r1)
    for sid, r in rs.items():
        assert (solo / r["image"]).read_bytes() == (one / r["image"]).read_bytes(), sid
    assert main([*base, "--out", str(tmp_path / "bad"), "--workers", "0"]) == 2


def test_rf1m_label_txt_layout(tmp_path: Path) -> None:
    d = tmp_path / "rf1m"
    (d / "imgs").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (64, 64), (i * 40, 90, 90)).save(d / "imgs" / f"{i}.jpg")
    Image.new("RGBA", (64, 64)).save(d / "prod.png")
    (d / "label.txt").write_text("imgs/0.jpg 0 prod.png Red kettle\nimgs/1.jpg,space_mismatch\n# comment\nimgs/2.jpg\t5\n")
    samples = read_dataset(d)
    assert [s.label for s in samples] == ["available", "space_mismatch", "shape_hallucination"]
    assert samples[0].product == d / "prod.png" and samples[0].title == "Red kettle"
    (d / "label.txt").write_text("imgs/0.jpg 9\n")
    assert main(["dataset", "info", str(d)]) == 2


def _expect_refused(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    capsys.readouterr()
    assert main([*_home(tmp_path), "products", "add", str(folder)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    for n in needles:
        assert n in err, (n, err)
    assert Store(home=tmp_path / "home").product_ids() == []  # nothing written


@pytest.mark.parametrize("case", ["not_image", "truncated", "rgb_no_mask", "huge", "empty_title", "duplicate_id"])
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
        from tests.test_core import _png_with_size

        _png_with_size(folder / "zz.png", 20000, 20000)
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "limit"]
    elif case == "empty_title":
        meta[1]["title"] = "  "
        needles = ["empty title", meta[1]["id"]]
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


@pytest.mark.slow
def test_demo_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'index.html'}" in printed.replace("\n", "")
    page = (out / "index.html").read_text()
    assert "Recurrent generation" in page and page.count('class="tile"') >= 3 * 2


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


def test_dataset_synth_product_families(tmp_path: Path) -> None:
    """procedural:N and fitted:N mix in one dataset; a bad count is refused before anything is written."""
    out = tmp_path / "mix"
    assert main(["dataset", "synth", "--products", "procedural:2", "--products", "fitted:2", "--per-class", "1",
                 "--scale", "0.25", "--out", str(out)]) == 0
    pids = {s.product_id for s in read_dataset(out)}
    assert pids == {"proc-00000", "proc-00001", "fit-00000", "fit-00001"}
    assert main(["dataset", "synth", "--products", "fitted:0", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
