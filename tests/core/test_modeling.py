"""The config is the constructor: config.json + model.safetensors round trip, nothing pickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adcreative.core.modeling import ConfigMixin, register_to_config


class _Scaler(ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 3, offset: float = 0.5) -> None:
        self.w = np.arange(dim, dtype=np.float32) + offset

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.w = np.asarray(arrays["w"]).copy()


def test_config_is_the_constructor(tmp_path: Path) -> None:
    m = _Scaler(dim=4, offset=1.0)
    m.w *= 2
    m.save_pretrained(tmp_path / "m")
    assert sorted(x.name for x in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    back = _Scaler.from_pretrained(tmp_path / "m")
    assert back.config == {"dim": 4, "offset": 1.0}
    assert np.array_equal(back.w, m.w)


class _Strict(_Scaler):
    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if np.asarray(arrays["w"]).shape != self.w.shape:
            raise ValueError(f"w has shape {np.asarray(arrays['w']).shape}, the config wants {self.w.shape}")
        self.w = np.asarray(arrays["w"]).copy()


def test_a_damaged_model_folder_is_an_input_error(tmp_path: Path) -> None:
    # a folder without config.json was a FileNotFoundError, corrupt weights a SafetensorError traceback, and weights
    # of another config a ValueError from deep inside: each is now an InputError naming the folder
    import json

    import pytest

    from adcreative.core.errors import InputError

    _Strict(dim=4).save_pretrained(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no config\.json: not a saved model folder"):
        _Strict.from_pretrained(tmp_path / "empty")
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    for bad in (b"garbage", weights[:20]):
        (tmp_path / "m" / "model.safetensors").write_bytes(bad)
        with pytest.raises(InputError, match=r"model\.safetensors is not a readable safetensors file"):
            _Strict.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(weights)
    (tmp_path / "m" / "config.json").write_text(json.dumps({"dim": 5, "offset": 0.5}))
    with pytest.raises(InputError, match=r"model\.safetensors does not fit config\.json \(w has shape"):
        _Strict.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"no model\.safetensors: the model folder is incomplete"):
        _Strict.from_pretrained(tmp_path / "m")
