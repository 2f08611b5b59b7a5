"""Model folders are replaced whole: a kill -9 in the middle of a save never leaves a mixed config/weights pair."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adcreative.core.durable import atomic_dir
from adcreative.core.errors import InputError
from adcreative.core.modeling import ConfigMixin, register_to_config
from tests.paths import REPO


class Tagged(ConfigMixin):
    """Config ``tag`` and weights all equal to ``tag``: a folder is consistent iff they agree."""

    stale_on_save = ("derived.bin",)

    @register_to_config
    def __init__(self, tag: int = 0, size: int = 16) -> None:
        self.w = np.full(size, tag, np.float32)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"w": self.w}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.w = np.asarray(arrays["w"]).copy()


def _consistent(d: Path) -> int:
    m = Tagged.from_pretrained(d)
    assert (m.w == m.config["tag"]).all(), f"config tag {m.config['tag']} beside weights of tag {m.w[0]}"
    return int(m.config["tag"])


def test_resave_keeps_other_files_and_drops_derived_ones(tmp_path: Path) -> None:
    d = tmp_path / "m"
    Tagged(tag=1).save_pretrained(d)
    (d / "eval").mkdir()
    (d / "eval" / "metrics.json").write_text("{}")
    (d / "history.json").write_text("[1]")
    (d / "derived.bin").write_bytes(b"from tag 1")
    Tagged(tag=2).save_pretrained(d)
    assert _consistent(d) == 2
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "eval", "history.json", "model.safetensors"]
    assert (d / "eval" / "metrics.json").read_text() == "{}" and (d / "history.json").read_text() == "[1]"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left beside it


def test_an_error_inside_leaves_the_old_folder(tmp_path: Path) -> None:
    d = tmp_path / "m"
    Tagged(tag=1).save_pretrained(d)
    with pytest.raises(RuntimeError), atomic_dir(d) as tmp:
        (tmp / "config.json").write_text(json.dumps({"tag": 99}))
        raise RuntimeError("crash half way")
    assert _consistent(d) == 1 and [p.name for p in tmp_path.iterdir()] == ["m"]


def test_refuses_a_file_and_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        Tagged().save_pretrained(tmp_path / "f")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(InputError, match="current folder"):
        Tagged().save_pretrained(".")
    with pytest.raises(InputError, match="current folder"):
        Tagged().save_pretrained(tmp_path)


_CHILD = """
import sys
from tests.core.test_durable import Tagged
d, tag = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
while True:
    tag += 1
    Tagged(tag=tag, size=1 << 20).save_pretrained(d)   # 4 MB of weights: a save takes a while
"""


@pytest.mark.slow
def test_kill_9_during_saves_never_leaves_a_mixed_pair(tmp_path: Path) -> None:
    d = tmp_path / "model"
    Tagged(tag=0, size=1 << 20).save_pretrained(d)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    rng = random.Random(0)
    seen = [0]
    for kill in range(8):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(d), str(seen[-1] * 1000)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "ready", child.stderr.read()
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        tag = _consistent(d)  # the folder is always there, whole, from one save
        assert tag >= seen[-1], f"kill {kill}: went back from {seen[-1]} to {tag}"
        seen.append(tag)
    assert len(set(seen)) > 4, f"the child barely saved anything: {seen}"
