"""RFNet: shapes, probabilities, gradients into every branch, save/load, bad inputs refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES
from adcreative.inspect.datasets.formats import Sample, read_dataset
from tests.inspect.helpers import TINY, sample_items


def test_output_shapes_and_probabilities(dataset: Path) -> None:
    from adcreative.inspect import create_inspector

    torch.manual_seed(0)
    for name in ("rfnet", "image-only"):
        model = create_inspector(name, **TINY).eval()
        items = sample_items(dataset)
        inputs = model.prepare(items)
        assert inputs["image"].shape == (3, 3, 64, 64) and inputs["aux"].shape == (3, 4, 32, 32)
        assert inputs["local"].shape == (3, 3, 64, 64) and inputs["local_aux"].shape == (3, 4, 32, 32)
        feats = model.forward_features(model.encode(inputs))
        assert feats.shape == (3, 32)
        logits = model.forward_head(feats)
        assert logits.shape == (3, len(CLASSES))
        probs = model.predict_proba(items)
        assert probs.shape == (3, 6)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        assert (probs >= 0).all()


def test_gradients_reach_every_branch(encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY, finetune_head=True).train()
    idx = torch.arange(8)
    loss = torch.nn.functional.cross_entropy(model.forward_head(model.forward_features(encoded.batch(idx))),
                                             encoded.labels[idx])
    loss.backward()
    branches = {"img_proj", "local", "global_aux", "local_pos", "prod_proj", "text_proj", "cross", "fusion", "head",
                "head_conv", "pos", "prod_pos", "text_pos", "cls", "type_emb"}
    seen = set()
    for name, p in model.named_parameters():
        if name.startswith("backbone."):
            assert not p.requires_grad, f"frozen trunk parameter {name} is trainable"
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
        seen.add(name.split(".")[0])
    assert branches <= seen
    # the mask and structure channels of the local stage get gradients too (40 trunk channels come first)
    assert model.local[0].weight.grad[:, 40:].abs().sum(dim=(0, 2, 3)).min() > 0


def test_save_load_identical_and_small(tmp_path: Path, dataset: Path) -> None:
    from adcreative.inspect import load_inspector
    from adcreative.inspect.model import RFNet

    torch.manual_seed(1)
    model = RFNet(**TINY, use_structure=False).eval()
    items = sample_items(dataset, 4)
    before = model.predict_proba(items)
    model.save_pretrained(tmp_path / "m")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("backbone.") for k in keys), "the packaged trunk must not be saved"
    loaded = load_inspector(tmp_path / "m")
    assert loaded.config == model.config and not loaded.use_structure
    np.testing.assert_array_equal(before, loaded.predict_proba(items))
    # a checkpoint from another ablation is refused with a clear message
    with pytest.raises(ValueError, match=r"missing|unexpected|does not fit"):
        RFNet(**TINY).load_state_arrays(loaded.state_arrays())


def test_bad_inputs_rejected(dataset: Path, tmp_path: Path) -> None:
    from adcreative.inspect.data import load_sample
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import InspectItem

    model = RFNet(**TINY)
    s = read_dataset(dataset)[0]
    item = load_sample(s)
    # wrong sizes
    with pytest.raises(InputError, match="mask is"):
        model.prepare([InspectItem(item.image, item.title, item.mask.resize((40, 40)), item.product)])
    with pytest.raises(InputError, match="minimum side"):
        model.prepare([InspectItem(item.image.resize((20, 20)), item.title, None, item.product)])
    with pytest.raises(InputError, match="image has shape"):
        model.encode({**model.prepare([item]), "image": torch.zeros(1, 3, 32, 32)})
    # missing modality
    with pytest.raises(InputError, match="missing modality"):
        model.prepare([InspectItem(item.image, None, item.mask, item.product)])
    inputs = model.prepare([item])
    del inputs["product"]
    with pytest.raises(InputError, match="missing modality 'product'"):
        model(inputs)
    with pytest.raises(InputError, match="must be RGBA"):
        model.prepare([InspectItem(item.image, item.title, item.mask, item.image)])
    with pytest.raises(InputError, match="empty batch"):
        model.prepare([])
    # corrupt files
    bad = tmp_path / "trunc.png"
    bad.write_bytes(s.image.read_bytes()[:200])
    with pytest.raises(InputError, match=r"trunc\.png"):
        load_sample(Sample(**{**s.__dict__, "image": bad}))
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        load_sample(Sample(**{**s.__dict__, "mask": txt}))
    with pytest.raises(InputError, match="does not exist"):
        load_sample(Sample(**{**s.__dict__, "product": tmp_path / "missing.png"}))
    # the image-only baseline does not need a title, and a missing mask falls back to saliency
    io_model = RFNet(**{**TINY, "use_product": False, "use_mask": False, "use_structure": False, "use_text": False})
    p = io_model.predict_proba([InspectItem(item.image, None, None, None)])
    assert p.shape == (1, 6)


def test_a_batch_with_more_cutouts_than_the_cache_keeps(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-product trunk cache evicts after a batch is stacked: a batch of more distinct cutouts than it keeps
    (here 2 kept, one creative of each product) is judged exactly as one cutout at a time (it raised KeyError before)."""
    from adcreative.inspect import model as model_mod
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY).eval()
    from adcreative.inspect.data import load_sample

    first = {s.product_id: s for s in reversed(read_dataset(dataset))}  # one sample of each product
    items = [load_sample(s) for s in first.values()]
    assert len(items) > 2
    monkeypatch.setattr(model_mod, "PRODUCT_CACHE", 2)
    together = model.predict_proba(items)
    assert len(model._product_cache) == 2
    one_by_one = np.concatenate([model.predict_proba([it]) for it in items])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
