"""A served selection bundle: the two models (served separately), the creative table and the selection policy.

Layout (one folder, versions side by side so a running service never reads a half-written model)::

    DIR/
      MANIFEST.json                  {"current": "versions/<v>", "version": "<v>", ...}  written last, atomically
      versions/<v>/ad_ctr/           config.json + model.safetensors   (AdCTRModel)
      versions/<v>/creative_ranker/  config.json + model.safetensors   (CreativeListwiseModel)
      versions/<v>/creatives.json    ids, feature names, ad id
      versions/<v>/creatives.safetensors   "features": [C, D] float32
      versions/<v>/policy/           config.json + model.safetensors   (a registered policy, optional)

Every folder is loaded through its family's registry (``SELECT_MODELS``, ``POLICIES``): the policy by what
its ``config.json`` records, the two models by their registry entry into the NumPy serving path.

``MANIFEST.json`` also says what the bundle serves: ``"serves": "model"`` (the list-wise model ranks
exploit traffic, the policy explores) or ``"policy"`` (the conservative policy ranks everything — the
deployment gate refused the learned model), with the gate's ``decision`` beside it.

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
from adcreative.select import POLICIES, SELECT_MODELS
from adcreative.select.bandit import Policy
from adcreative.select.data import CreativeTable
from adcreative.select.scoring import AdScorer, CreativeScorer

MANIFEST = "MANIFEST.json"


def save_bundle(directory: str | Path, ad_model: Any, creative_model: Any, creatives: CreativeTable, *,
                ad_id: str = "ad", policy: Policy | None = None, serves: str = "model",
                decision: dict[str, Any] | None = None, meta: dict[str, Any] | None = None, keep: int = 3) -> Path:
    """Write a new version of the bundle and point ``MANIFEST.json`` at it; keeps the last ``keep`` versions.
    ``serves="policy"`` needs a ``policy``: it ranks all traffic and the model only gives the ad pCTR."""
    if serves not in ("model", "policy"):
        raise InputError(f"serves must be 'model' or 'policy', got {serves!r}")
    if serves == "policy" and policy is None:
        raise InputError("a bundle that serves its policy needs one")
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
        if policy is not None:
            policy.save_pretrained(vdir / "policy")
    manifest = {"current": f"versions/{version}", "version": version, "ad_id": ad_id, "serves": serves,
                "decision": decision, "created": _dt.datetime.now(_dt.UTC).isoformat(), **(meta or {})}
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
    policy: Policy | None
    serves_model: bool          # False: the conservative policy ranks every request (manifest "serves")
    manifest: dict[str, Any]

    @classmethod
    def load(cls, directory: str | Path) -> Bundle:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        d = Path(directory)
        mp = d / MANIFEST
        if not mp.exists():
            raise InputError(f"no {MANIFEST}: not a selection bundle (make one with `adcreative select obd --out`"
                             " or `select simulate --out`)", source=d)
        try:  # a half-copied or hand-edited bundle: say which file, not a JSON/KeyError traceback
            manifest = json.loads(mp.read_text())
            vdir = d / manifest["current"]
            meta = json.loads((vdir / "creatives.json").read_text())
            feats = load_file(str(vdir / "creatives.safetensors"))["features"]
            table = CreativeTable(list(meta["ids"]), feats, meta.get("feature_names"))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:  # JSONDecodeError is a ValueError
            raise InputError(f"damaged selection bundle ({type(e).__name__}: {e})", source=d) from None
        # the NumPy serving path mirrors these two entries: check the folders hold them
        for sub, want in (("creative_ranker", "creative_listwise"), ("ad_ctr", "ad_ctr")):
            name, _ = SELECT_MODELS.entry_of(vdir / sub)
            if name != want:
                raise InputError(f"{sub}/ holds selection model {name!r}; the service serves {want!r} there", source=vdir)
        policy = POLICIES.load(vdir / "policy") if (vdir / "policy").exists() else None
        serves = str(manifest.get("serves", "model"))
        if serves == "policy" and policy is None:
            raise InputError("MANIFEST says the policy serves, but the bundle has no policy/", source=d)
        return cls(directory=d, version=str(manifest["version"]), ad_id=str(meta.get("ad_id", "ad")),
                   creatives=table, creative_scorer=CreativeScorer.load(vdir / "creative_ranker", table),
                   ad_scorer=AdScorer(vdir / "ad_ctr"), policy=policy, serves_model=serves == "model",
                   manifest=manifest)


def manifest_mtime(directory: str | Path) -> float:
    p = Path(directory) / MANIFEST
    return p.stat().st_mtime_ns / 1e9 if p.exists() else 0.0
