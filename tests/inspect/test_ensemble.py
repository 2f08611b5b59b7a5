"""A seed ensemble of RFNets: the members' calibrated probabilities averaged, the trunk run once. It is built from
trained members of one architecture, calibrated like one model, saved once (no trunk weights, each member's part
under its own prefix), reloaded and exported to ONNX with the same output; it is never trained as one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adcreative.core.errors import InputError
from tests.inspect.helpers import TINY, sample_items


@pytest.fixture(scope="module")
def members(encoded):  # type: ignore[no-untyped-def]
    """Two members of one recipe, seeds 0 and 1, each calibrated on validation as `inspect train` does."""
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets, train_model

    torch.set_num_threads(1)
    tr, va, _ = split_sets(encoded)
    assert va is not None
    out = []
    for seed in (0, 1):
        cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=seed)
        torch.manual_seed(seed)
        model = RFNet(**TINY, use_cues=True, cue_expert=0.5, cue_expert_kind="trees")
        train_model(model, tr, va, cfg, progress=False)
        calibrate_model(model, tr, va, cfg)
        out.append(model.eval())
    return out


def test_the_ensemble_averages_its_members_calibrated_probabilities(members, encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import ensemble
    from adcreative.inspect.train import split_sets

    a, b = members
    assert a.temperature != b.temperature  # each keeps its own: the average is of calibrated members
    net = ensemble(members)
    assert net.members == 2 and net.member_temperatures == [a.temperature, b.temperature]
    assert net.decision is None and net.temperature == 1.0  # to be calibrated as a whole
    assert net.others[0].backbone is net.backbone  # one trunk
    _, _, te = split_sets(encoded)
    assert te is not None
    batch = net.head_maps(te).batch(torch.arange(min(8, len(te))))
    with torch.no_grad():
        z, f = net.outputs(batch)
        za, fa = a.outputs(batch)  # calibrated by a's own temperature
        zb, _ = b.outputs(batch)
    expected = (torch.softmax(za, -1) + torch.softmax(zb, -1)) / 2
    torch.testing.assert_close(torch.softmax(z, -1), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(f, fa)  # the OOD features are member 0's
    # the members differ, so the average is neither of them
    assert not torch.allclose(torch.softmax(za, -1), torch.softmax(zb, -1), atol=1e-3)


def test_an_ensemble_is_calibrated_saved_reloaded_and_exported(members, encoded, dataset: Path,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    from safetensors import safe_open

    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import ensemble
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets

    tr, va, _ = split_sets(encoded)
    assert va is not None
    net = ensemble(members)
    cal = calibrate_model(net, tr, va, TrainConfig(seed=0))
    assert cal["nll"] <= cal["nll_before"] + 1e-9 and net.decision is not None
    net.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not any("backbone" in k.split(".") for k in keys)  # the packaged trunk is never saved, not even twice
    own = set(members[0].state_arrays())
    assert own <= set(keys) and {f"others.0.{k}" for k in members[1].state_arrays()} <= set(keys)
    loaded = load_inspector(tmp_path)
    assert loaded.members == 2
    items = sample_items(dataset, 6)
    p = net.predict_proba(items)
    np.testing.assert_allclose(loaded.predict_proba(items), p, atol=1e-6)
    export_onnx(loaded, tmp_path)
    np.testing.assert_allclose(OnnxInspector(tmp_path).predict_proba(items), p, atol=1e-4)
    # a member is still a model on its own: its part of the ensemble's file is its weights
    for k, v in members[1].state_arrays().items():
        torch.testing.assert_close(loaded.others[0].state_dict()[k], v)


def test_what_an_ensemble_refuses(members, encoded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet, ensemble
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    with pytest.raises(InputError, match="at least 2 members"):
        ensemble(members[:1])
    other = RFNet(**{**TINY, "dim": 48, "heads": 2}, use_cues=True, cue_expert=0.5, cue_expert_kind="trees")
    with pytest.raises(InputError, match="another architecture than member 1 \\(dim\\)"):
        ensemble([members[0], other])
    net = ensemble(members)
    with pytest.raises(InputError, match="an ensemble already"):
        ensemble([net, members[0]])
    tr, va, _ = split_sets(encoded)
    with pytest.raises(InputError, match="not trained as one"):
        train_model(net, tr, va, TrainConfig(epochs=1), progress=False)
    with pytest.raises(ValueError, match="member_temperatures must be 2 positive numbers"):
        RFNet(**TINY, members=2, member_temperatures=[1.0, -1.0])
    with pytest.raises(ValueError, match="for an ensemble"):
        RFNet(**TINY, member_temperatures=[1.0])
    # a saved ensemble missing a member's weights is refused, not loaded half-initialised
    arrays = {k: v for k, v in net.state_arrays().items() if not k.startswith("others.")}
    with pytest.raises(ValueError, match="member 1 missing"):
        RFNet(**net.config).load_state_arrays(arrays)


def test_the_ensemble_command(members, dataset: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                              capfd: pytest.CaptureFixture[str]) -> None:
    from adcreative.cli import main
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.model import RFNet

    for i, m in enumerate(members):
        m.save_pretrained(tmp_path / f"m{i}")
    rc = main(["inspect", "ensemble", "--member", str(tmp_path / "m0"), "--member", str(tmp_path / "m1"),
               "--data", str(dataset), "--out", str(tmp_path / "ens")])
    assert rc in (0, None)
    net = load_inspector(tmp_path / "ens")
    assert net.members == 2 and net.decision is not None
    # usage errors: one line each, exit 2, nothing written
    RFNet(**{**TINY, "dim": 48}, use_cues=True, cue_expert=0.5, cue_expert_kind="trees").save_pretrained(
        tmp_path / "wide")
    for args, why in (([str(tmp_path / "m0")], "at least 2 --member folders"),
                      ([str(tmp_path / "m0"), str(tmp_path / "nowhere")], "not an inspector folder"),
                      ([str(tmp_path / "m0"), str(tmp_path / "wide")], "another architecture than member 1 (dim)")):
        capfd.readouterr()
        argv = ["inspect", "ensemble", "--data", str(dataset), "--out", str(tmp_path / "bad")]
        for m in args:
            argv += ["--member", m]
        assert main(argv) == 2
        err = capfd.readouterr().err
        assert why in err and "Traceback" not in err, err
        assert not (tmp_path / "bad").exists()


def test_an_ensemble_takes_another_ood_model_than_its_members(members, encoded, dataset: Path,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """``ood_style`` on the ensemble: members trained without the scene-style distance get one in calibration; no
    probability moves (the OOD model is fitted after training), the style model is fitted per training family and
    saved; a bad style is one usage line."""
    from adcreative.cli import main
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.model import ensemble
    from adcreative.inspect.train import TrainConfig, calibrate_model, split_sets

    assert all(m.ood_style == "none" for m in members)
    tr, va, te = split_sets(encoded)
    assert va is not None and te is not None
    tr.renderers = ["a" if i % 2 else "b" for i in range(len(tr))]  # two training families
    plain, styled = ensemble(members), ensemble(members, ood_style="scene")
    for net in (plain, styled):
        calibrate_model(net, tr, va, TrainConfig(seed=0))
    assert styled.ood_style == "scene" and styled.style_mean.shape[0] == 2
    assert styled.temperature == plain.temperature and styled.decision is not None and plain.decision is not None
    assert (styled.decision.accept, styled.decision.reject) == (plain.decision.accept, plain.decision.reject)
    items = sample_items(dataset, 12)
    np.testing.assert_allclose(styled.predict_proba(items), plain.predict_proba(items), atol=1e-6)
    assert styled.judge(items[:4]).ood.shape == (4,)
    styled.save_pretrained(tmp_path / "styled")
    loaded = load_inspector(tmp_path / "styled")
    assert loaded.ood_style == "scene" and torch.equal(loaded.style_mean, styled.style_mean)
    with pytest.raises(InputError, match="ood_style must be one of"):
        ensemble(members, ood_style="texture")
    for i, m in enumerate(members):
        m.save_pretrained(tmp_path / f"m{i}")
    capfd.readouterr()
    assert main(["inspect", "ensemble", "--member", str(tmp_path / "m0"), "--member", str(tmp_path / "m1"),
                 "--data", str(dataset), "--ood-style", "texture", "--out", str(tmp_path / "bad")]) == 2
    err = capfd.readouterr().err
    assert "--ood-style: choose none or scene" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
