"""MixStyle on the cached trunk maps: statistics move to the partner's, content stays; partners cross families."""

from __future__ import annotations

import numpy as np
import torch

from tests.inspect.helpers import TINY


def test_partners_come_from_another_family_whenever_the_batch_has_one() -> None:
    from adcreative.inspect.train import style_partners

    fams = ["a", "a", "b", "c", "a", "b"]
    for seed in range(20):
        p = style_partners(fams, torch.Generator().manual_seed(seed))
        assert all(fams[int(j)] != fams[i] for i, j in enumerate(p))
    p = style_partners(["a", "a", "a"], torch.Generator().manual_seed(0))  # one family: another row, not itself
    assert all(int(j) != i for i, j in enumerate(p))
    assert style_partners(["a"], torch.Generator().manual_seed(0)).tolist() == [0]


def test_mixing_moves_the_channel_statistics_and_keeps_the_normalised_content() -> None:
    from adcreative.inspect.train import STYLE_KEYS, mix_styles

    g = torch.Generator().manual_seed(0)
    batch = {k: torch.randn(3, 5, 4, 4, generator=g) * (1 + torch.arange(3.0).view(3, 1, 1, 1)) + 2.0 * i
             for i, k in enumerate(STYLE_KEYS)}
    batch["aux"] = torch.randn(3, 4, 4, 4, generator=g)
    before = {k: v.clone() for k, v in batch.items()}
    partner = torch.tensor([2, 0, 1])
    mix_styles(batch, partner, torch.tensor([0.0, 0.5, 1.0]), torch.tensor([True, True, False]))
    assert torch.equal(batch["aux"], before["aux"])  # geometry (mask, edges, affinity) is never mixed
    for k in STYLE_KEYS:
        x, x0 = batch[k], before[k]
        assert torch.equal(x[2], x0[2])  # not applied
        # row 0 takes row 2's statistics entirely (lam 0)
        assert torch.allclose(x[0].mean((1, 2)), x0[2].mean((1, 2)), atol=1e-5)
        assert torch.allclose(x[0].std((1, 2), unbiased=False), x0[2].std((1, 2), unbiased=False), atol=1e-3)
        # row 1 is halfway between its own and row 0's means
        assert torch.allclose(x[1].mean((1, 2)), 0.5 * (x0[1].mean((1, 2)) + x0[0].mean((1, 2))), atol=1e-5)

        def norm(t: torch.Tensor) -> torch.Tensor:
            return (t - t.mean((1, 2), keepdim=True)) / t.std((1, 2), keepdim=True)
        assert torch.allclose(norm(x[0]), norm(x0[0]), atol=1e-3)  # where things are is unchanged


def test_training_with_style_mix_is_seeded_and_a_zero_probability_changes_nothing(encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    tr, va, _ = split_sets(encoded)
    tr.renderers = ["a" if i % 2 else "b" for i in range(len(tr))]

    def run(**kw):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        model = RFNet(**TINY)
        res = train_model(model, tr, va, TrainConfig(epochs=3, batch_size=16, lr=3e-3, patience=100, seed=0, **kw),
                          progress=False)
        return res.history, {k: v.detach().clone() for k, v in model.state_arrays().items()}

    plain, w0 = run()
    zero, wz = run(style_mix=0.0, style_mix_alpha=0.3)
    assert plain == zero and all(torch.equal(w0[k], wz[k]) for k in w0)
    mixed, wm = run(style_mix=0.5)
    again, wa = run(style_mix=0.5)
    assert mixed == again and all(torch.equal(wm[k], wa[k]) for k in wm)
    assert mixed != plain
    assert np.isfinite([h["train_loss"] for h in mixed]).all()
