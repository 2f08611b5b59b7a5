"""A served selection bundle: the two models (served separately), the creative table and the bandit state.

Layout (one folder, versions side by side so a running service never reads a half-written model)::

    DIR/
      MANIFEST.json                  {"current": "versions/<v>", "version": "<v>", ...}  written last, atomically
      versions/<v>/ad_ctr/           config.json + model.safetensors   (AdCTRModel)
      versions/<v>/creative_ranker/  config.json + model.safetensors   (CreativeListwiseModel)
      versions/<v>/creatives.json    ids, feature names, ad id
      versions/<v>/creatives.safetensors   "features": [C, D] float32
      versions/<v>/bandit/           config.json + model.safetensors   (BetaVisualTS, optional)

The service watches ``MANIFEST.json``'s mtime: a new version appears only once all its files are on disk.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.durable import atomic_dir
from adcreative.core.errors import InputError
from adcreative.core.imageio import atomic_write_text
from adcreative.select.bandit import BetaVisualTS
from adcreative.select.data import CreativeTable
from adcreative.select.scoring import AdScorer, CreativeScorer

MANIFEST = "MANIFEST.json"


def save_bundle(directory: str | Path, ad_model: Any, creative_model: Any, creatives: CreativeTable, *,
                ad_id: str = "ad", bandit: BetaVisualTS | None = None, meta: dict[str, Any] | None = None,
                keep: int = 3) -> Path:
    """Write a new version of the bundle and point ``MANIFEST.json`` at it; keeps the last ``keep`` versions."""
    from safetensors.numpy import save

    d = Path(directory)
    version = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]
    # the version folder appears whole (fsync'd, one rename) before the manifest can point at it
    with atomic_dir(d / "versions" / version) as vdir:
        ad_model.save_pretrained(vdir / "ad_ctr")
        creative_model.save_pretrained(vdir / "creative_ranker")
        (vdir / "creatives.safetensors").write_bytes(save({"features": np.ascontiguousarray(creatives.features)}))
        (vdir / "creatives.json").write_text(json.dumps(
            {"ids": creatives.ids, "feature_names": creatives.feature_names, "ad_id": ad_id}, indent=1))
        if bandit is not None:
            bandit.save_pretrained(vdir / "bandit")
    manifest = {"current": f"versions/{version}", "version": version, "ad_id": ad_id,
                "created": _dt.datetime.now(_dt.UTC).isoformat(), **(meta or {})}
    atomic_write_text(d / MANIFEST, json.dumps(manifest, indent=2))
    versions = sorted(p for p in (d / "versions").iterdir() if p.is_dir())
    for old in versions[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return d


@dataclass
class Bundle:
    """A loaded bundle: what the service swaps in one assignment on hot reload."""

    directory: Path
    version: str
    ad_id: str
    creatives: CreativeTable
    creative_scorer: CreativeScorer
    ad_scorer: AdScorer
    bandit: BetaVisualTS | None
    manifest: dict[str, Any]

    @classmethod
    def load(cls, directory: str | Path) -> Bundle:
        from safetensors.numpy import load_file

        d = Path(directory)
        mp = d / MANIFEST
        if not mp.exists():
            raise InputError(f"no {MANIFEST}: not a selection bundle (make one with `adcreative select train-obd`"
                             " or `select simulate --out`)", source=d)
        manifest = json.loads(mp.read_text())
        vdir = d / manifest["current"]
        meta = json.loads((vdir / "creatives.json").read_text())
        feats = load_file(str(vdir / "creatives.safetensors"))["features"]
        table = CreativeTable(list(meta["ids"]), feats, meta.get("feature_names"))
        bandit = BetaVisualTS.from_pretrained(vdir / "bandit") if (vdir / "bandit").exists() else None
        return cls(directory=d, version=str(manifest["version"]), ad_id=str(meta.get("ad_id", "ad")),
                   creatives=table, creative_scorer=CreativeScorer.load(vdir / "creative_ranker", table),
                   ad_scorer=AdScorer(vdir / "ad_ctr"), bandit=bandit, manifest=manifest)


def manifest_mtime(directory: str | Path) -> float:
    p = Path(directory) / MANIFEST
    return p.stat().st_mtime_ns / 1e9 if p.exists() else 0.0
