"""The shipped default RFNet loads, starves no sample product and sends a product-less photo to a human."""

from __future__ import annotations

import numpy as np
import pytest


def test_default_model_ships_and_loads() -> None:
    from adcreative.inspect import default_inspector
    from adcreative.inspect.base import default_model_dir

    d = default_model_dir()
    if not (d / "model.safetensors").exists():
        pytest.fail(f"the default RFNet is missing from {d}")
    # four ensemble members of 2.4 MB each (the trunk and the title encoder come from their packages)
    assert (d / "model.safetensors").stat().st_size < 12_000_000
    net = default_inspector()
    assert net.modalities == ["image", "product", "mask", "structure", "text", "cues"]
    assert net.cues_fitted, "the cue statistics of the training split ship with the weights"


def test_default_model_starves_no_sample_product() -> None:
    """A default that auto-rejects a whole clean product would starve recurrent generation of it (as a retrained
    candidate did with herbal-shampoo). Under the three-way decision an image the model is unsure of goes to a
    human instead, so: no sample product has every clean render auto-rejected, and clean renders do reach the
    auto-accept band. (The shipped default G, trained on the full three-family set with the measured cues, gives
    herbal-shampoo P(available) ≥ 0.5 on 1 of 8 renders and sends 7 of them to a human; over the 56 renders it
    auto-accepts 1 and auto-rejects 4, none of them every render of a product; docs/inspect.md, issue 13.)"""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.catalogue.sizes import real_height_cm
    from adcreative.generate.compositor.generator import Compositor
    from adcreative.inspect import default_inspector
    from adcreative.inspect.preprocess import InspectItem, catalogue_source

    net = default_inspector()
    gen = Compositor()
    accepted = 0
    for product in sample_catalogue():
        items = []
        for seed in range(8):
            gi = gen(product, seed=seed, aspect=("1:1", "4:5", "16:9")[seed % 3])[0]
            items.append(InspectItem(image=gi.image.convert("RGB"), title=product.title, mask=gi.mask,
                                     product=product.image, product_id=product.id,
                                     height_cm=real_height_cm(product),
                                     product_source=catalogue_source(product)))  # as recurrent generation passes them
        j = net.judge(items)
        # (default renders carry the compositor's natural defects too, so not every one passes)
        assert j.bands.count("reject") < len(items), (product.id, np.round(j.probs[:, 0], 3).tolist())
        accepted += j.bands.count("accept")
    assert accepted > 0


def test_default_model_sends_a_photo_without_the_product_to_a_human() -> None:
    """The shipped decision: a photograph that does not hold the product it is judged for (scikit-image's
    astronaut and coffee, with a sample product's cutout and title, no mask) — the cutout is not found in it,
    so a human decides; it is neither auto-accepted nor auto-rejected."""
    from PIL import Image
    from skimage import data as skdata

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.inspect import default_inspector
    from adcreative.inspect.preprocess import InspectItem

    net = default_inspector()
    assert net.decision is not None and net.decision.ood is not None and net.temperature != 1.0
    items = []
    for product in sample_catalogue()[:3]:
        for photo in (skdata.astronaut(), skdata.coffee()):
            items.append(InspectItem(image=Image.fromarray(photo).convert("RGB"), title=product.title,
                                     product=product.image, product_id=product.id))
    j = net.judge(items)
    assert j.bands == ["human"] * len(items), (j.ood.round(2).tolist(), j.probs[:, 0].round(3).tolist())
    assert j.not_found.all(), j.placement  # no mask came with them, and the cutout is not in the photograph


def test_warm_start_copies_what_fits_and_keeps_the_new_architecture(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A warm start moves a saved model to another cue set and adds a cue expert: every weight that fits is
    copied, the cue projection (another input size), the cue statistics (another meaning) and everything fitted
    after training start fresh; a model of another size refuses in one clear error."""
    import torch

    from adcreative.core.errors import InputError
    from adcreative.inspect.base import warm_start
    from adcreative.inspect.model import RFNet
    from tests.inspect.helpers import TINY

    torch.manual_seed(0)
    old = RFNet(**TINY, use_cues=True, cue_set="2")
    with torch.no_grad():
        old.fit_cues(torch.randn(50, old.n_cues) * 3 + 1)
    old.save_pretrained(tmp_path / "old")
    torch.manual_seed(1)
    new = RFNet(**TINY, use_cues=True, cue_set="5", cue_expert=0.5, cue_expert_kind="trees")
    before = {k: v.clone() for k, v in new.state_arrays().items()}
    w = warm_start(new, tmp_path / "old")
    assert {"cue_proj.0.weight", "cue_mean", "cue_std"} <= set(w["fresh"])
    assert all(k.startswith(("cue_", "ood_", "match_")) for k in w["fresh"]), w["fresh"]
    after, saved = new.state_arrays(), old.state_arrays()
    for k in w["copied"]:
        assert torch.equal(after[k], saved[k]), k
    for k in w["fresh"]:
        assert torch.equal(after[k], before[k]), k
    assert not new.cues_fitted and new.config["cue_set"] == "5" and new.cue_expert == 0.5
    # the same cue set: its statistics come along
    same = RFNet(**TINY, use_cues=True, cue_set="2")
    assert "cue_mean" in warm_start(same, tmp_path / "old")["copied"] and same.cues_fitted
    with pytest.raises(InputError, match="no weight of the saved inspector fits"):
        warm_start(RFNet(**{**TINY, "dim": 48, "heads": 2}, use_cues=True), tmp_path / "old")
