"""`adcreative demo --fast` writes its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from adcreative.cli import main


@pytest.mark.slow
def test_demo_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--fast"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'index.html'}" in printed.replace("\n", "")
    page = (out / "index.html").read_text()
    assert "Recurrent generation" in page and page.count('class="tile"') >= 3 * 2
    assert "Which creative for whom, and why" in page and "user 1 sees" in page and "P(" in page
    # the shipped model carries a real-product bias and floor; the page says they do not touch drawn products
    assert "(the real-product bias)" in page and "neither applies" in page
    from adcreative.core.store import Store

    store = Store(home=out / "store")
    shown = sorted((out / "images").glob("creative-*.png"))
    assert shown and not list((out / "images").glob(".*.tmp"))
    for png in shown[:5]:  # the stored creative's own bytes, copied, not re-encoded
        c = store.get_creative(png.stem.removeprefix("creative-"))
        assert png.read_bytes() == store.blobs.get_bytes(c.image_sha)
        assert png.with_suffix(".thumb.jpg").stat().st_size > 0


def test_demo_catalogue_shows_imported_photos_beside_their_cutouts(tmp_path: Path) -> None:
    from PIL import Image

    from adcreative.catalogue.importer import import_folder
    from adcreative.core.store import Store
    from adcreative.pipelines.demo import DemoState, step_catalogue
    from adcreative.report.html import Report
    from tests.catalogue.helpers import mug_with_mask

    store = Store(home=tmp_path / "store")
    import_folder(store, mug_with_mask(tmp_path / "photos"))
    state = DemoState(store=store, report=Report(tmp_path / "out", "demo"), fast=True, run_id="t")
    step_catalogue(state)
    page = state.report.write().read_text()
    assert "Imported photos and their mattes" in page and "Blue Enamel Mug: photo" in page
    assert (tmp_path / "out" / "images" / "photo-blue-mug.png").exists()
    cut = Image.open(tmp_path / "out" / "images" / "matte-blue-mug.png")
    assert cut.getpixel((2, 2)) != cut.getpixel((14, 2))  # the checkerboard shows where the cutout is transparent
    assert len(state.products) == 3  # the sample catalogue itself is unchanged
