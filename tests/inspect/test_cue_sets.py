"""Cue sets: a model reads the version of the measured cues it was trained on, saved in its config, so a newer
set never changes what a saved model (the shipped one among them) sees."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import adcreative
from tests.inspect.helpers import TINY, sample_items


def test_a_model_keeps_its_cue_set(dataset: Path, tmp_path: Path) -> None:
    from adcreative.core.errors import InputError
    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.cues import CUE_SETS, LEGACY_CUE_SET, n_cues
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import prepare_arrays

    # the shipped model reads the cue set its config names (a config saved before cue sets reads the legacy one)
    shipped = load_inspector()
    saved = json.loads((Path(adcreative.__file__).parent / "assets/rfnet/config.json").read_text())
    assert shipped.cue_set == saved.get("cue_set", LEGACY_CUE_SET) and shipped.n_cues == n_cues(shipped.cue_set)
    torch.manual_seed(0)
    RFNet(**TINY, use_cues=True, cue_set=LEGACY_CUE_SET).save_pretrained(tmp_path / "legacy")
    cfg = json.loads((tmp_path / "legacy" / "config.json").read_text())
    del cfg["cue_set"]  # as a model saved before cue sets existed
    (tmp_path / "legacy" / "config.json").write_text(json.dumps(cfg))
    assert load_inspector(tmp_path / "legacy").cue_set == LEGACY_CUE_SET
    for version in CUE_SETS:
        torch.manual_seed(0)
        net = RFNet(**TINY, use_cues=True, cue_set=version, cue_expert=0.5)
        assert net.cue_head[0].in_features == net.cue_proj[0].in_features == n_cues(version)
        net.save_pretrained(tmp_path / version)
        back = load_inspector(tmp_path / version)
        assert back.cue_set == version and back.n_cues == n_cues(version)
        # preprocessing follows the saved config: the cues it measures are the model's set
        arrays = prepare_arrays(sample_items(dataset, 2), back.config)
        assert arrays["cues"].shape == (2, n_cues(version)) and np.isfinite(arrays["cues"]).all()
        assert np.asarray(back.judge(sample_items(dataset, 2)).probs).shape == (2, 6)
        # cues of another width are refused, naming the set
        wrong = {k: torch.from_numpy(v) for k, v in arrays.items()}
        wrong["cues"] = torch.zeros(2, n_cues(version) + 1)
        with pytest.raises(InputError, match=f"cue set '{version}'"):
            back.check_inputs(wrong)
    with pytest.raises(ValueError, match="cue_set"):
        RFNet(**TINY, use_cues=True, cue_set="nine")
