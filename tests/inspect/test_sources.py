"""Judging a product's catalogue cutout alone (inspect/sources.py, ``adcreative inspect sources``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adcreative.cli import main
from adcreative.core.types import CLASSES
from tests.inspect.helpers import TINY


def test_the_probe_is_the_cutout_alone_centred_with_its_exact_mask() -> None:
    """The probe canvas holds only the cutout, centred, at most 60 % of the canvas high and 80 % wide, on a plain
    grey; its mask is the cutout's own alpha there; a fully transparent cutout is refused by name."""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.errors import InputError
    from adcreative.inspect.sources import PROBE_GREY, PROBE_SIDE, probe_item

    for p in sample_catalogue():
        item = probe_item(p)
        assert item.image.size == item.mask.size == (PROBE_SIDE, PROBE_SIDE)
        assert item.product_source == "sample" and item.height_cm is not None and item.height_cm > 0
        m = np.asarray(item.mask)
        ys, xs = np.nonzero(m)
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert h <= 0.6 * PROBE_SIDE + 1 and w <= 0.8 * PROBE_SIDE + 1 and max(h / (0.6 * PROBE_SIDE),
                                                                              w / (0.8 * PROBE_SIDE)) > 0.98
        centre = ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2)
        assert np.allclose(centre, PROBE_SIDE / 2, atol=1)
        rgb = np.asarray(item.image)
        assert (rgb[m == 0] == PROBE_GREY).all()  # nothing but the product and the grey
    empty = sample_catalogue()[0]
    empty.image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    with pytest.raises(InputError, match="transparent"):
        probe_item(empty)


def test_judge_sources_flags_at_the_unsuitable_threshold() -> None:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.sources import FLAG_UNSUITABLE, judge_sources

    torch.manual_seed(0)
    net = RFNet(**TINY).eval()
    products = sample_catalogue()[:3]
    got = judge_sources(net, products)
    assert [v.product_id for v in got] == [p.id for p in products]
    for v in got:
        assert set(v.probs) == set(CLASSES) and sum(v.probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert v.flagged == (v.probs["unsuitable"] >= FLAG_UNSUITABLE)
    assert judge_sources(net, []) == []


def test_the_shipped_model_does_not_flag_the_sample_catalogue() -> None:
    """The sample products' cutouts are clean drawings: the shipped auditor flags none of them (their probes score
    P(unsuitable) 0.28 at most; the flagged real products 0.50–0.74, docs/inspect.md)."""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.sources import judge_sources

    assert not any(v.flagged for v in judge_sources(load_inspector(None), sample_catalogue()))


def test_sources_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    RFNet(**TINY).save_pretrained(tmp_path / "tiny")
    home = tmp_path / "home"
    assert main(["--home", str(home), "inspect", "sources", "--model", str(tmp_path / "tiny")]) == 2
    assert "no store at" in capsys.readouterr().err and not home.exists()
    store = Store(home=home)
    assert main(["--home", str(home), "inspect", "sources", "--model", str(tmp_path / "tiny")]) == 2
    assert "catalogue is empty" in capsys.readouterr().err
    store.add_products(sample_catalogue()[:2])
    assert main(["--home", str(home), "inspect", "sources", "--model", str(tmp_path / "tiny"), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "citrus-can" in out and "face-serum" in out and "of 2 flagged" in out
    assert main(["--home", str(home), "inspect", "sources", "--model", str(tmp_path / "tiny"), "--product",
                 "nope"]) != 0
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err
