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
