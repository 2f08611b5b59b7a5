"""Policy-gradient tuning of the compositor's sampling policy (REINFORCE + baseline, KL, diversity)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adcreative.core.errors import InputError
from adcreative.core.types import Product
from adcreative.generate.compositor.policy import CompositorPolicy
from adcreative.tune.compositor_policy import (
    CompositorTuner,
    background_histogram,
    choice_from_params,
    kl_gradient,
    mean_pairwise,
)


class ContrastAuditor:
    """A stand-in auditor written for this test (not one of ours): P(available) rises with the colour distance
    between the product and the background right around it — the indistinctiveness criterion."""

    def predict_proba(self, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        import cv2

        out = []
        for it in items:
            img = np.asarray(it.image.convert("RGB"), np.float32)
            m = np.asarray(it.mask.convert("L")) > 0
            ring = cv2.dilate(m.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~m
            d = float(np.linalg.norm(img[m].mean(0) - img[ring].mean(0))) if ring.any() else 0.0
            p = 1.0 / (1.0 + np.exp(-(d - 70.0) / 20.0))
            out.append([p, *([(1 - p) / 5] * 5)])
        return np.array(out, np.float32)


def test_kl_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    ref = CompositorPolicy()
    pol = ref.copy()
    pol.load_state_arrays({k: v + rng.normal(0, 0.3, v.shape) for k, v in ref.state_arrays().items()})
    g = kl_gradient(pol, ref)
    for key in ("logits.support", "logits.palette_mode", "mu.scale", "log_sigma.tone"):
        arr = pol.state_arrays()
        idx = (1, 0) if arr[key].ndim == 2 else (1,)
        arr[key][idx] += 1e-6
        bumped = ref.copy()
        bumped.load_state_arrays(arr)
        numeric = (bumped.kl_to(ref) - pol.kl_to(ref)) / 1e-6
        assert numeric == pytest.approx(g[key][idx], rel=1e-3, abs=1e-6), key
    assert all(np.abs(v).max() < 1e-9 for v in kl_gradient(ref, ref).values())


def test_choice_round_trips_through_provenance(sample_products: list[Product]) -> None:
    from adcreative.generate.compositor.generator import Compositor

    pol = CompositorPolicy()
    g = Compositor(scale=0.25)(sample_products[0], seed=3)[0]
    ch = choice_from_params(g.params)
    assert ch.cat and ch.gauss
    # the provenance records the draw to 6 decimals: its log-probability is the policy's
    again = pol.sample(np.random.default_rng(3), g.params["category"])
    assert ch.cat == again.cat
    assert pol.log_prob(ch) == pytest.approx(pol.log_prob(again), abs=1e-4)


def test_tuning_raises_the_auditors_score_and_saves_like_a_model(sample_products: list[Product],
                                                                  tmp_path: Path) -> None:
    from adcreative.generate.compositor.generator import Compositor
    from adcreative.inspect.preprocess import InspectItem

    prods = sample_products[:2]
    auditor = ContrastAuditor()
    tuner = CompositorTuner(iterations=12, products_per_iter=2, samples_per_product=6, lr=0.15, kl_weight=0.01,
                            diversity_weight=0.2, scale=0.25, seed=0)
    res = tuner.train(prods, auditor, tmp_path / "policy", progress=False)
    assert len(res.history) == 12 and res.history[-1]["kl"] > 0

    def evaluate(policy_dir: str | None) -> tuple[float, float]:
        gen = Compositor(policy=policy_dir, scale=0.25)
        ps, divs = [], []
        for p in prods:
            gs = gen(p, seed=10_000, n=16)
            ps += list(auditor.predict_proba([InspectItem(image=g.image, title=p.title, mask=g.mask) for g in gs])[:, 0])
            divs.append(mean_pairwise([background_histogram(g.image, g.mask) for g in gs]))
        return float(np.mean(ps)), float(np.mean(divs))

    p0, d0 = evaluate(None)
    p1, d1 = evaluate(str(tmp_path / "policy"))  # loaded from disk, as --policy does
    assert p1 > p0 + 0.02, (p0, p1)
    assert d1 > 0.5 * d0  # still varied
    loaded = CompositorPolicy.from_pretrained(tmp_path / "policy")
    for k, v in res.policy.state_arrays().items():
        assert np.array_equal(loaded.state_arrays()[k], v)
    assert (tmp_path / "policy" / "tuning.json").exists() and (tmp_path / "policy" / "tuning_curve.png").exists()


def test_tuner_tells_the_auditor_where_each_product_comes_from(sample_products: list[Product]) -> None:
    """The auditor sees each product's source (``catalogue_source``), as in recurrent generation: a model with a
    real-product bias must not apply it to the drawn sample products while the policy is tuned."""
    seen: list[str] = []

    class Recording(ContrastAuditor):
        def predict_proba(self, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
            seen.extend(it.product_source for it in items)
            return super().predict_proba(items, batch_size)

    tuner = CompositorTuner(iterations=1, products_per_iter=2, samples_per_product=2, scale=0.25, seed=0)
    tuner.train(sample_products[:2], Recording(), None, progress=False)
    assert seen and set(seen) == {"sample"}


def test_cli_tune_compositor_with_rfnet_then_generate_with_policy(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from adcreative.cli import main
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    RFNet(image_size=64, aux_size=16, dim=32, heads=2, layers=1, use_text=False).save_pretrained(tmp_path / "rfnet")
    out = tmp_path / "tuned"
    code = main(["--home", str(tmp_path / "home"), "tune", "compositor", "--out", str(out), "--rfnet",
                 str(tmp_path / "rfnet"), "--iterations", "2", "--products-per-iter", "1",
                 "--samples-per-product", "2", "--scale", "0.25"])
    assert code == 0 and (out / "model.safetensors").exists()
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "products", "sample"]) == 0
    assert main([*home, "generate", "--product", "all", "--n", "1", "--generator", "compositor",
                 "--policy", str(out)]) == 0
    from adcreative.core.store import Store

    cs = Store(home=tmp_path / "home").creatives()
    assert cs and all(c.params["generator_config"]["policy"] == str(out.resolve()) for c in cs)
    # bad input: a missing auditor folder is exit code 2, nothing written
    assert main([*home, "tune", "compositor", "--out", str(tmp_path / "x"), "--rfnet", str(tmp_path / "no")]) == 2
    assert not (tmp_path / "x").exists()
    (tmp_path / "empty").mkdir()  # a start policy folder without config.json was a FileNotFoundError traceback
    assert main([*home, "tune", "compositor", "--out", str(tmp_path / "x"), "--policy", str(tmp_path / "empty")]) == 2
    assert not (tmp_path / "x").exists()


def test_bad_tuner_config() -> None:
    with pytest.raises(InputError, match="samples_per_product"):
        CompositorTuner(samples_per_product=1)
    with pytest.raises(InputError, match="aspect"):
        CompositorTuner(aspects=["3:2"])
    with pytest.raises(InputError, match="aspect"):
        CompositorTuner(aspects=[])
    for threshold in (0.0, 1.0, 5.0):  # 5 was taken: nothing could ever count as available
        with pytest.raises(InputError, match="threshold is a probability strictly between 0 and 1"):
            CompositorTuner(threshold=threshold)
