"""The cue expert: a classifier of the measured cues alone, fitted before the fused model and mixed into its
output. It learns from the cues (beats the class prior on validation), the fused model's training leaves it as
fitted, the output is exactly the mixture, and it is saved, reloaded and exported with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.inspect.helpers import TINY, sample_items


def test_cue_expert_is_fitted_frozen_and_mixed(encoded, dataset: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, fit_cue_expert, split_sets, train_model

    tr, va, te = split_sets(encoded)
    assert va is not None and te is not None
    cfg = TrainConfig(epochs=3, batch_size=16, lr=3e-3, seed=0)
    torch.manual_seed(0)
    model = RFNet(**TINY, use_cues=True, cue_expert=0.5)
    res = train_model(model, tr, va, cfg, progress=False)
    assert res.cue_expert is not None
    # it learned from the cues: on validation (other products) it beats the training class shares
    prior = np.bincount(tr.labels.numpy(), minlength=6) / len(tr)
    prior_nll = float(-np.log(prior[va.labels.numpy()] + 1e-9).mean())
    assert res.cue_expert["val_nll"] < prior_nll, (res.cue_expert, prior_nll)
    # frozen while the fused model trained: refitting it from scratch on the same seed gives the same weights
    assert not any(p.requires_grad for p in model.cue_head.parameters())
    assert all(p is not q for p in model.trainable_parameters() for q in model.cue_head.parameters())
    fitted = {k: v.clone() for k, v in model.cue_head.state_dict().items()}
    fit_cue_expert(model, model.head_maps(tr), model.head_maps(va), cfg)
    for k, v in model.cue_head.state_dict().items():
        torch.testing.assert_close(v, fitted[k])

    # the output is the mixture (1 - w)·P(fused) + w·P(cues)
    model.eval()
    model.flip_average = False
    batch = model.head_maps(te).batch(torch.arange(min(8, len(te))))
    with torch.no_grad():
        z, _ = model.outputs(batch, calibrated=False)
        fused = torch.softmax(model.forward_head(model.forward_features(batch)), -1)
        cue = torch.softmax(model.cue_logits(batch["cues"]), -1)
    torch.testing.assert_close(torch.softmax(z, -1), 0.5 * fused + 0.5 * cue, rtol=1e-5, atol=1e-6)
    model.flip_average = True
    # the parts inspect eval reports are exactly what the output mixes (flip-averaged as it is)
    with torch.no_grad():
        z, _ = model.outputs(batch, calibrated=False)
    parts = model.part_log_probs(batch)
    assert list(parts) == ["fused network", "cue expert"]
    mixed = 0.5 * parts["fused network"].exp() + 0.5 * parts["cue expert"].exp()
    torch.testing.assert_close(torch.softmax(z, -1), mixed, rtol=1e-5, atol=1e-6)
    from adcreative.inspect.evaluate import evaluate_model

    te_mixed = te.subset(list(range(len(te))))
    te_mixed.sources = ["real" if i % 2 else "procedural" for i in range(len(te_mixed))]
    m = evaluate_model(model, te_mixed)
    assert list(m["parts"]) == ["all", "real products", "drawn products"]
    assert list(m["parts"]["all"]) == ["model", "fused network", "cue expert"]
    assert m["parts"]["all"]["model"]["ap_available"] == pytest.approx(m["ap_available"])
    assert m["parts"]["real products"]["cue expert"]["n"] == len(te_mixed) // 2

    # saved and reloaded with the model; the ONNX export computes the same mixture
    items = sample_items(dataset, 6)
    model.save_pretrained(tmp_path)
    loaded = load_inspector(tmp_path)
    assert loaded.cue_expert == 0.5
    np.testing.assert_allclose(loaded.predict_proba(items), model.predict_proba(items), atol=1e-6)
    from adcreative.inspect.export import OnnxInspector, export_onnx

    export_onnx(model, tmp_path)
    np.testing.assert_allclose(OnnxInspector(tmp_path).predict_proba(items), model.predict_proba(items), atol=1e-4)


def test_cue_expert_leaves_the_fused_model_as_it_trains_without_one(encoded) -> None:  # type: ignore[no-untyped-def]
    """Same seed, same initial weights of the fused parts, same training draws: the fused model's training losses
    are those of a model without the expert (only which epoch early stopping keeps may differ)."""
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    tr, va, _ = split_sets(encoded)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0)
    runs = []
    for w in (0.0, 0.5):
        torch.manual_seed(0)
        model = RFNet(**TINY, use_cues=True, cue_expert=w)
        runs.append([h["train_loss"] for h in train_model(model, tr, va, cfg, progress=False).history])
    assert runs[0] == runs[1]


def test_cue_expert_is_checked() -> None:
    from adcreative.inspect.model import RFNet, image_only

    with pytest.raises(ValueError, match="needs use_cues"):
        RFNet(**TINY, cue_expert=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        RFNet(**TINY, use_cues=True, cue_expert=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        RFNet(**TINY, use_cues=True, cue_expert=float("nan"))
    # the image-only baseline of a cue-expert config reads no cues, so it has no expert
    assert image_only(**TINY, use_cues=True, cue_expert=0.5).cue_expert == 0.0
