"""RF1M's label.txt layout reads into samples split by product."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from adcreative.cli import main
from adcreative.inspect.datasets.formats import read_dataset


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
