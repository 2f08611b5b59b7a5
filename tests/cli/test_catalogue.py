"""`products add` in-process: sheets (.csv, .xlsx, .json) with row-numbered errors, all or nothing unless
--skip-bad, --dry-run, image + mask pairs, photos that are matted, previews and a user's own mask."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adcreative.catalogue.sample import save_catalogue
from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Product
from tests.catalogue.helpers import mug_with_mask


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def _home(tmp_path: Path) -> list[str]:
    return ["--home", str(tmp_path / "home")]


def _nothing_written(tmp_path: Path, *, new_home: bool = False) -> None:
    if new_home:  # a refused import or a dry run into a new home leaves no store (not even an empty one) behind
        assert not (tmp_path / "home").exists()
        return
    store = Store(home=tmp_path / "home")
    assert store.product_ids() == []
    assert not any((tmp_path / "home" / "blobs").rglob("*.png"))  # no orphan blobs either


def _expect_refused(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str], *needles: str,
                    args: tuple[str, ...] = ()) -> str:
    capsys.readouterr()
    new_home = not (tmp_path / "home").exists()
    assert main([*_home(tmp_path), "products", "add", str(folder), *args]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    for n in needles:
        assert n in err, (n, err)
    _nothing_written(tmp_path, new_home=new_home)
    return err


@pytest.mark.parametrize("case", ["not_image", "truncated", "flat_photo", "huge", "empty_title", "duplicate_id",
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
    elif case == "flat_photo":  # a photo with no alpha and no mask is matted: a flat one has no product in it
        Image.new("RGB", (80, 80), "blue").save(folder / "zz.png")
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "matting found no product"]
    elif case == "huge":
        from tests.core.test_imageio import _png_with_size

        _png_with_size(folder / "zz.png", 20000, 20000)
        meta.append({"id": "zz", "title": "Z"})
        needles = ["zz.png", "limit"]
    elif case == "empty_title":
        meta[1]["title"] = "  "
        needles = ["empty title", meta[1]["id"], "entry 2"]
    elif case == "long_id":  # longer than the column: was a traceback and an orphan blob on PostgreSQL
        (folder / f"{meta[2]['id']}.png").rename(folder / f"{'x' * 129}.png")
        meta[2]["id"] = "x" * 129
        needles = ["product id is 129 characters long, over the limit of 128"]
    elif case == "nul_title":  # PostgreSQL cannot hold a NUL in text: was a traceback there
        meta[2]["title"] = "Citrus\x00Can"
        needles = ["title contains a NUL character"]
    else:
        meta.append(dict(meta[0]))
        needles = ["duplicate product id", meta[0]["id"], "entry 4", "also entry 1"]
    (folder / "products.json").write_text(json.dumps(meta))
    _expect_refused(tmp_path, folder, capsys, *needles, "nothing was imported")


def test_duplicate_against_store_refused(tmp_path: Path, catalogue: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(catalogue)]) == 0
    capsys.readouterr()
    assert main([*h, "products", "add", str(catalogue)]) == 2
    assert "already in the store" in capsys.readouterr().err
    assert len(Store(home=tmp_path / "home").product_ids()) == 3


def test_csv_metadata_and_image_mask_pairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = mug_with_mask(tmp_path / "pairs", "id,title,category,copy,price,badge\n"
                                                "blue-mug,Blue Enamel Mug,kitchen,Camp-ready,12.5,NEW\n")
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(folder)]) == 0
    store = Store(home=tmp_path / "home")
    p = store.get_product("blue-mug")
    assert p.title == "Blue Enamel Mug" and p.price == 12.5 and p.attrs["badge"] == "NEW"
    assert p.attrs["matte"] == {"method": "mask"} and store.blobs.exists(p.attrs["photo_sha"])
    assert p.image.mode == "RGBA" and p.image.getchannel("A").getbbox() == (20, 10, 76, 90)
    (folder / "products.csv").write_text("id,title,category,price\nblue-mug,Mug,kitchen,cheap\n")
    assert main(["--home", str(tmp_path / "h2"), "products", "add", str(folder)]) == 2
    assert "row 2" in (err := capsys.readouterr().err) and "not a number" in err


# -- merchandising sheets ------------------------------------------------------------------------------------------
def _merch_folder(tmp_path: Path, sample_products: list[Product]) -> Path:
    folder = tmp_path / "merch"
    (folder / "img").mkdir(parents=True)
    for p in sample_products[:4]:
        p.image.save(folder / "img" / f"{p.id}.png")
    return folder


BAD_ROWS = [
    ["id", "title", "image", "price", "category"],
    ["A-1", "Citrus can", "img/citrus-can.png", "2.49", "drinks"],
    ["A-2", "Face serum", "img/missing.png", "19.00", "beauty"],  # row 3: missing file
    ["A-3", "Shampoo", "img/herbal-shampoo.png", "twelve", "beauty"],  # row 4: bad price
    ["A-1", "Granola", "img/honey-granola.png", "4.10", "food"],  # row 5: duplicate id
]


def _write_sheet(path: Path, rows: list[list[str]]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    elif path.suffix == ".xlsx":
        openpyxl = pytest.importorskip("openpyxl")
        wb = openpyxl.Workbook()
        for r in rows:
            wb.active.append([float(c) if c.replace(".", "", 1).isdigit() else c for c in r])
        wb.save(path)
    else:
        head, *body = rows
        path.write_text(json.dumps([dict(zip(head, r, strict=True)) for r in body]))
    return path


@pytest.mark.parametrize("ext", [".csv", ".xlsx", ".json"])
def test_sheet_with_a_missing_file_a_bad_price_and_a_duplicate_id_writes_nothing(
        ext: str, tmp_path: Path, sample_products: list[Product], capsys: pytest.CaptureFixture[str]) -> None:
    folder = _merch_folder(tmp_path, sample_products)
    sheet = _write_sheet(tmp_path / f"sheet{ext}", BAD_ROWS)
    row = "entry" if ext == ".json" else "row"
    n = 1 if ext == ".json" else 2  # sheets count the header as row 1
    err = _expect_refused(tmp_path, folder, capsys, "3 rows cannot be imported",
                          f"{row} {n + 1} (id 'A-2'", "'img/missing.png' does not exist",
                          f"{row} {n + 2} (id 'A-3'", "price 'twelve' is not a number",
                          f"{row} {n + 3} (id 'A-1'", f"duplicate product id 'A-1' (also {row} {n})",
                          "--skip-bad", args=("--meta", str(sheet)))
    assert f"{row} {n} " not in err  # the good row is not reported


def test_dry_run_and_skip_bad(tmp_path: Path, sample_products: list[Product],
                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = _merch_folder(tmp_path, sample_products)
    sheet = _write_sheet(tmp_path / "sheet.csv", BAD_ROWS)
    h = _home(tmp_path)
    capsys.readouterr()
    assert main([*h, "products", "add", str(folder), "--meta", str(sheet), "--dry-run", "--skip-bad"]) == 0
    out = capsys.readouterr()
    assert "would add A-1" in out.out and "1 to import, 3 with problems; nothing written" in out.out
    assert "would skip row 4" in out.err
    _nothing_written(tmp_path, new_home=True)
    report = tmp_path / "skipped.csv"
    assert main([*h, "products", "add", str(folder), "--meta", str(sheet), "--skip-bad", "--report",
                 str(report)]) == 0
    assert Store(home=tmp_path / "home").product_ids() == ["A-1"]
    rows = list(csv.DictReader(report.open()))
    assert [r["row"] for r in rows] == ["row 3", "row 4", "row 5"]
    assert rows[1]["id"] == "A-3" and "not a number" in rows[1]["problem"]
    # A clean sheet: dry run says what would be imported and exits 0.
    good = _write_sheet(tmp_path / "good.csv", [BAD_ROWS[0], ["B-1", "Serum", "img/face-serum.png", "19", "beauty"]])
    capsys.readouterr()
    assert main([*h, "products", "add", str(folder), "--meta", str(good), "--dry-run"]) == 0
    assert "would add B-1  [beauty]  Serum  (cutout)" in capsys.readouterr().out
    assert "B-1" not in Store(home=tmp_path / "home").product_ids()


def test_titles_from_file_names_only_with_the_flag(tmp_path: Path, sample_products: list[Product],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    sample_products[0].image.save(folder / "blue_enamel-mug.png")
    _expect_refused(tmp_path, folder, capsys, "file blue_enamel-mug.png", "empty title",
                    "--titles-from-filenames")
    assert main([*_home(tmp_path), "products", "add", str(folder), "--titles-from-filenames"]) == 0
    assert Store(home=tmp_path / "home").get_product("blue_enamel-mug").title == "Blue enamel mug"


# -- issue 15, item 4: bad input that used to be accepted ----------------------------------------------------------
def _one(tmp_path: Path, sample_products: list[Product], meta: object, name: str = "p.png") -> Path:
    folder = tmp_path / "one"
    folder.mkdir(exist_ok=True)
    sample_products[0].image.save(folder / name)
    (folder / "products.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("price", ["nan", "NaN", "inf", "-inf", "-5", "1e39", True, [1]])
def test_price_must_be_a_finite_non_negative_number(price: object, tmp_path: Path, sample_products: list[Product],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = _one(tmp_path, sample_products, [{"id": "p", "title": "P", "price": price}])
    _expect_refused(tmp_path, folder, capsys, "entry 1 (id 'p'", "price")


@pytest.mark.parametrize(("meta", "needle"), [
    ({"p": "a title"}, "entry 'p' is str, not an object"),
    (7, "must be a list of objects or an object of objects, not int"),
    ("x", "not str"),
    ([[1, 2]], "entry 1 is list, not an object"),
    ([{"id": {"a": 1}, "title": "P"}], "product id must be text, not dict"),
    ([{"id": [1], "title": "P"}], "product id must be text, not list"),
    ([{"id": 5.5, "title": "P"}], "product id 5.5 is a fractional number"),
    ([{"id": True, "title": "P"}], "product id must be text, not bool"),
    ([{"id": "p", "title": {"x": 1}}], "title must be text, not dict"),
    ([{"id": "p" * 200, "title": "P"}], "product id is 200 characters long, over the limit of 128"),
])
def test_json_metadata_of_the_wrong_shape_is_an_error_not_a_traceback(
        meta: object, needle: str, tmp_path: Path, sample_products: list[Product],
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _one(tmp_path, sample_products, meta)
    _expect_refused(tmp_path, folder, capsys, needle)


def test_integer_json_id_is_its_text(tmp_path: Path, sample_products: list[Product]) -> None:
    folder = _one(tmp_path, sample_products, [{"id": 5, "title": "P"}], name="5.png")
    assert main([*_home(tmp_path), "products", "add", str(folder)]) == 0
    assert Store(home=tmp_path / "home").product_ids() == ["5"]


@pytest.mark.parametrize("logo", ["../outside.png", "/ABS/outside.png", "sub/../../outside.png", "link.png"])
def test_metadata_paths_are_confined_to_the_folder(logo: str, tmp_path: Path, sample_products: list[Product],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    sample_products[1].image.save(tmp_path / "outside.png")
    logo = logo.replace("/ABS", str(tmp_path))
    folder = _one(tmp_path, sample_products, [{"id": "p", "title": "P", "logo": logo}])
    if logo == "link.png":
        (folder / "link.png").symlink_to(tmp_path / "outside.png")  # a link inside that points out
    _expect_refused(tmp_path, folder, capsys, "logo", "absolute path" if logo.startswith("/") else "outside the imported folder")
    # The sheet's image and mask columns are confined the same way.
    (folder / "products.json").write_text(json.dumps([{"id": "p", "title": "P", "image": "../outside.png"}]))
    _expect_refused(tmp_path, folder, capsys, "image '../outside.png' is outside the imported folder")


def test_exif_rotated_photo_with_its_mask_through_the_cli(tmp_path: Path) -> None:
    folder = tmp_path / "exif"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (120, 80), (200, 30, 30)).save(folder / "p.jpg", exif=exif.tobytes())
    m = Image.new("L", (80, 120), 0)
    m.paste(255, (10, 10, 70, 110))
    m.save(folder / "p_mask.png")
    (folder / "products.json").write_text(json.dumps([{"id": "p", "title": "P"}]))
    assert main([*_home(tmp_path), "products", "add", str(folder)]) == 0
    p = Store(home=tmp_path / "home").get_product("p")
    assert p.image.size == (80, 120) and p.image.getchannel("A").getbbox() == (10, 10, 70, 110)


def test_animated_and_sixteen_bit_files_through_the_cli(tmp_path: Path, sample_products: list[Product],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = _one(tmp_path, sample_products, [{"id": "p", "title": "P"}])
    frames = [sample_products[0].image, sample_products[1].image.resize(sample_products[0].image.size)]
    frames[0].save(folder / "p.png", save_all=True, append_images=frames[1:], duration=100)
    _expect_refused(tmp_path, folder, capsys, "p.png", "animated image (2 frames)")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(folder / "p.png")
    a = np.zeros((64, 64), np.uint16)
    a[8:56, 8:56] = 65535
    a[20:30, 20:30] = 32896
    Image.fromarray(a).save(folder / "p_mask.png")
    assert main([*_home(tmp_path), "products", "add", str(folder)]) == 0
    alpha = np.asarray(Store(home=tmp_path / "home").get_product("p").image.getchannel("A"))
    assert alpha[40, 40] == 255 and alpha[25, 25] == 128 and alpha[0, 0] == 0


# -- photos: matting, review, override ------------------------------------------------------------------------------
@pytest.mark.slow
def test_photos_are_matted_reviewed_and_overridden(tmp_path: Path, sample_products: list[Product],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from skimage import data

    from adcreative.catalogue.studio import studio_photo

    folder = tmp_path / "photos"
    folder.mkdir()
    tote = next(p for p in sample_products if p.id == "market-tote")
    shot = studio_photo(tote.image, "white", seed=1, size=480)
    shot.photo.save(folder / "tote.jpg", quality=92)
    Image.fromarray(data.astronaut()).save(folder / "astronaut.jpg")  # no plain backdrop
    (folder / "products.csv").write_text("id,title\ntote,Market tote\nastronaut,Astronaut\n")
    h = _home(tmp_path)
    previews = tmp_path / "previews"
    capsys.readouterr()
    assert main([*h, "products", "add", str(folder), "--dry-run", "--previews", str(previews)]) == 2
    out = capsys.readouterr()
    assert "would add tote" in out.out and "matted, quality" in out.out
    assert "needs a look: astronaut" in out.err and "row 3 (id 'astronaut'" in out.err
    assert sorted(p.name for p in previews.iterdir()) == ["astronaut.png", "tote.png"]
    _nothing_written(tmp_path)
    # Imported with --skip-bad: the photo is matted, the original kept; the astronaut is not stored.
    assert main([*h, "products", "add", str(folder), "--skip-bad", "--report", str(tmp_path / "r.csv")]) == 0
    store = Store(home=tmp_path / "home")
    assert store.product_ids() == ["tote"]
    p = store.get_product("tote")
    assert p.attrs["matte"]["method"] == "auto" and store.blobs.exists(p.attrs["photo_sha"])
    alpha = np.asarray(p.image.getchannel("A")) / 255
    iou = ((alpha > 0.5) & (shot.alpha > 0.5)).sum() / ((alpha > 0.5) | (shot.alpha > 0.5)).sum()
    assert iou > 0.95
    # --accept-low-quality stores it anyway.
    assert main(["--home", str(tmp_path / "h2"), "products", "add", str(folder), "--accept-low-quality"]) == 0
    assert Store(home=tmp_path / "h2").product_ids() == ["astronaut", "tote"]
    # The checkerboard preview of a stored product: photo | cutout.
    out_png = tmp_path / "tote-matte.png"
    assert main([*h, "products", "show", "tote", "--matte", "--out", str(out_png)]) == 0
    prev = Image.open(out_png)
    assert prev.width > 2 * 400 and prev.height == 480
    # The user's own mask replaces the cutout, over the original photo.
    mask = Image.new("L", (480, 480), 0)
    mask.paste(255, (100, 120, 380, 400))
    mask.save(tmp_path / "mine.png")
    assert main([*h, "products", "mask", "tote", str(tmp_path / "mine.png")]) == 0
    p2 = store.get_product("tote")
    assert p2.image.getchannel("A").getbbox() == (100, 120, 380, 400)
    assert p2.attrs["matte"]["method"] == "user" and len(p2.attrs["matte"]["previous_cutouts"]) == 1
    assert p2.attrs["photo_sha"] == p.attrs["photo_sha"]
    Image.new("L", (64, 64), 255).save(tmp_path / "wrong.png")
    capsys.readouterr()
    assert main([*h, "products", "mask", "tote", str(tmp_path / "wrong.png")]) == 2
    assert "mask is 64×64 but the product's photo is 480×480" in capsys.readouterr().err.replace("\n", " ")


def test_ids_and_titles_that_look_like_console_markup_print_as_text(tmp_path: Path, sample_products: list[Product],
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # an id like "q[/x]" was a rich MarkupError traceback in `generate` and `creatives list`; a title's "[red]"
    # would have coloured the line and been dropped from it
    folder = _merch_folder(tmp_path, sample_products)
    sheet = _write_sheet(tmp_path / "sheet.csv", [BAD_ROWS[0], ["q[/x]", "Can [red]x[/red] [/]", "img/citrus-can.png",
                                                                 "2.49", "drinks"]])
    h = _home(tmp_path)
    commands = [["products", "add", str(folder), "--meta", str(sheet)], ["products", "list"],
                ["products", "show", "q[/x]"], ["generate", "--product", "q[/x]", "--n", "1"], ["creatives", "list"]]
    for argv in commands:
        capsys.readouterr()
        assert main([*h, *argv]) == 0, argv
        out = capsys.readouterr()
        assert "Traceback" not in out.err, argv
        if argv[0] == "products":
            assert "q[/x]" in out.out and "Can [red]x[/red] [/]" in out.out, (argv, out.out)
        else:
            assert "q[/x]" in out.out, (argv, out.out)


def test_listings_are_one_tab_separated_line_per_row(tmp_path: Path, sample_products: list[Product],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # piped, rich wrapped rows at 80 columns and turned tabs into spaces, so `cut -f1` of a listing broke
    folder = _merch_folder(tmp_path, sample_products)
    long_title = "A very long product title " * 5
    sheet = _write_sheet(tmp_path / "sheet.csv", [BAD_ROWS[0], ["L-1", long_title, "img/citrus-can.png", "2.49", "drinks"]])
    h = _home(tmp_path)
    assert main([*h, "products", "add", str(folder), "--meta", str(sheet)]) == 0
    assert main([*h, "generate", "--product", "L-1", "--n", "2"]) == 0
    for argv, fields in ((["products", "list"], 3), (["creatives", "list"], 6)):
        capsys.readouterr()
        assert main([*h, *argv]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines and all(len(line.split("\t")) == fields for line in lines), lines
    assert lines[0].split("\t")[1] == "L-1"
