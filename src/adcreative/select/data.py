"""Impression logs and creative tables as arrays, the input of the selection models.

One impression = one request for one ad: the user's features, the context (slot position), the candidate
creatives the policy chose from, the creative that was shown, whether it was clicked and with which
probability the logging policy showed it. Candidates index a :class:`CreativeTable` (one row per
creative: its id and its numeric features).

Categorical user fields are hashed into buckets (:func:`hash_bucket`), so new values need no vocabulary
update; the hashing lives here and in the model's config, so preprocessing ships with the model.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from adcreative.core.errors import InputError

AD_BUCKETS = 64  # the ad embedding's size (TrainConfig.n_ad_buckets); ad ids hash into it


def hash_bucket(field: str, value: Any, n_buckets: int) -> int:
    """Stable bucket of ``field=value`` (crc32; identical across processes and machines)."""
    return zlib.crc32(f"{field}={value}".encode()) % n_buckets


def hash_user(cat: dict[str, Any], fields_: Sequence[str], n_buckets: int) -> np.ndarray:
    """Bucket ids of a user's categorical fields in model order; a missing field hashes as ``None``."""
    return np.array([hash_bucket(f, cat.get(f), n_buckets) for f in fields_], dtype=np.int64)


@dataclass
class CreativeTable:
    """The creatives an ad may show: ids and a numeric feature matrix ``[C, D]`` (float32)."""

    ids: list[str]
    features: np.ndarray
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features, dtype=np.float32)
        if self.features.ndim != 2 or self.features.shape[0] != len(self.ids):
            raise InputError(f"creative features must be [n_creatives={len(self.ids)}, D], got {self.features.shape}")
        if len(set(self.ids)) != len(self.ids):
            raise InputError("creative ids must be unique")
        self._index = {c: i for i, c in enumerate(self.ids)}

    def index_of(self, ids: Sequence[str]) -> np.ndarray:
        idx = self._index
        try:
            return np.fromiter(map(idx.__getitem__, ids), np.int64, len(ids))  # map: no generator frame per id
        except (KeyError, TypeError):
            missing = [c for c in ids if c not in idx]
            raise InputError(f"unknown creative ids: {', '.join(map(str, missing[:10]))}"
                             + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")) from None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ImpressionLog:
    """``N`` logged impressions. ``candidates`` holds creative-table rows, padded with -1."""

    user_cat: np.ndarray      # [N, Fc] int64 hashed buckets
    user_num: np.ndarray      # [N, Fn] float32
    ad: np.ndarray            # [N] int64 hashed ad bucket
    context: np.ndarray       # [N] int64 slot position (0-based)
    candidates: np.ndarray    # [N, K] int64 rows of the creative table, -1 = padding
    pair: np.ndarray          # [N, K, P] float32 user×creative features (e.g. affinities)
    shown: np.ndarray         # [N] int64 column in ``candidates`` of the shown creative
    click: np.ndarray         # [N] float32 0/1
    propensity: np.ndarray    # [N] float32 logging policy's P(shown | x)
    group: np.ndarray         # [N] int64 user (or pseudo-user) id for GAUC
    ad_id: np.ndarray         # [N] int64 ad id for per-ad NSCTR rescaling

    def __post_init__(self) -> None:
        n = len(self.click)
        for f in fields(self):
            v = getattr(self, f.name)
            if len(v) != n:
                raise InputError(f"ImpressionLog.{f.name} has {len(v)} rows, expected {n}")
        k = self.candidates.shape[1]
        if n and (self.shown.min() < 0 or self.shown.max() >= k):
            raise InputError("shown must index a candidate column")
        if n and (self.candidates[np.arange(n), self.shown] < 0).any():
            raise InputError("a shown creative is a padding slot")

    def __len__(self) -> int:
        return len(self.click)

    @property
    def mask(self) -> np.ndarray:
        return self.candidates >= 0

    def subset(self, idx: np.ndarray) -> ImpressionLog:
        return ImpressionLog(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(logs: Sequence[ImpressionLog]) -> ImpressionLog:
        return ImpressionLog(**{f.name: np.concatenate([getattr(lg, f.name) for lg in logs])
                                for f in fields(ImpressionLog)})


# ------------------------------------------------------------------ Open Bandit Dataset (OBD) ----------
OBD_USER_FIELDS = ["user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3"]


@dataclass
class OBDData:
    """One OBD campaign under one logging policy, mapped onto the selection arrays.

    The campaign is one ad (its name, e.g. ``men``, comes from the log file's name); its items are the
    candidate creatives (item_context features as creative features); user_feature_0..3 are hashed user
    categoricals; user-item affinities are pair features; position is the context.
    """

    log: ImpressionLog
    creatives: CreativeTable
    policy: str
    n_buckets: int
    campaign: str
    raw_user: list[list[str]]     # the unhashed user_feature_0..3 of each row (baselines one-hot them)

    @property
    def n_items(self) -> int:
        return len(self.creatives)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise InputError("file not found", source=path)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise InputError("empty CSV", source=path)
    return rows


def obd_creative_table(item_context: Path) -> CreativeTable:
    """item_feature_0 (numeric) + one-hot item_feature_1..3 (hashed categoricals, vocabulary from the file)."""
    rows = _read_csv(item_context)
    try:
        rows.sort(key=lambda r: int(r["item_id"]))
        cats = ["item_feature_1", "item_feature_2", "item_feature_3"]
        vocab = {c: sorted({r[c] for r in rows}) for c in cats}
        names = ["item_feature_0"] + [f"{c}={v[:6]}" for c in cats for v in vocab[c]]
        feats = np.zeros((len(rows), len(names)), np.float32)
        for i, r in enumerate(rows):
            feats[i, 0] = float(r["item_feature_0"])
            off = 1
            for c in cats:
                feats[i, off + vocab[c].index(r[c])] = 1.0
                off += len(vocab[c])
    except (KeyError, ValueError) as e:
        raise InputError(f"not an OBD item_context.csv ({e})", source=item_context) from e
    if [int(r["item_id"]) for r in rows] != list(range(len(rows))):
        raise InputError("item_id must run 0..n-1 without gaps", source=item_context)
    return CreativeTable([f"item_{int(r['item_id'])}" for r in rows], feats, names)


def obd_log_file(folder: str | Path, policy: str) -> Path:
    """The one log CSV of ``folder/<policy>/`` (besides item_context.csv); its name is the campaign's."""
    base = Path(folder) / policy
    logs = sorted(p for p in base.glob("*.csv") if p.name != "item_context.csv") if base.is_dir() else []
    if not logs:
        raise InputError(f"no OBD log CSV for policy {policy!r}", source=base)
    if len(logs) > 1:
        raise InputError(f"more than one log CSV for policy {policy!r} ({', '.join(p.name for p in logs)}): "
                         "one campaign per folder", source=base)
    return logs[0]


def load_obd(folder: str | Path, policy: str = "random", *, n_buckets: int = 64) -> OBDData:
    """Load ``folder/<policy>/<campaign>.csv`` + ``item_context.csv`` of an OBD campaign (any campaign: the
    name comes from the CSV's file name, the item count from item_context.csv, checked against the log's
    affinity columns and item ids)."""
    csv_path = obd_log_file(folder, policy)
    campaign = csv_path.stem
    creatives = obd_creative_table(Path(folder) / policy / "item_context.csv")
    rows = _read_csv(csv_path)
    n, k = len(rows), len(creatives)
    n_aff = sum(1 for c in rows[0] if c.startswith("user-item_affinity_"))
    if n_aff != k:
        raise InputError(f"the log has {n_aff} user-item affinity columns but item_context.csv lists {k} items",
                         source=csv_path)
    try:
        item = np.array([int(r["item_id"]) for r in rows], np.int64)
        raw_user = [[r[f] for f in OBD_USER_FIELDS] for r in rows]
        user_cat = np.array([[hash_bucket(f, v, n_buckets) for f, v in zip(OBD_USER_FIELDS, u, strict=True)]
                             for u in raw_user], np.int64)
        aff = np.array([[float(r[f"user-item_affinity_{j}"]) for j in range(k)] for r in rows], np.float32)
        pos = np.array([int(r["position"]) - 1 for r in rows], np.int64)
        click = np.array([float(r["click"]) for r in rows], np.float32)
        prop = np.array([float(r["propensity_score"]) for r in rows], np.float32)
    except (KeyError, ValueError) as e:
        raise InputError(f"not an OBD log ({e})", source=csv_path) from e
    if item.min() < 0 or item.max() >= k:
        raise InputError(f"item_id outside 0..{k - 1}", source=csv_path)
    if pos.min() < 0:
        raise InputError("position must start at 1", source=csv_path)
    if pos.max() > 64:  # the service's limit on a slot; OBD has three
        raise InputError(f"position {int(pos.max()) + 1} is over 65", source=csv_path)
    if not np.isin(click, (0.0, 1.0)).all():
        bad = int(np.flatnonzero(~np.isin(click, (0.0, 1.0)))[0])
        raise InputError(f"click must be 0 or 1 (data row {bad + 1} has {click[bad]:g})", source=csv_path)
    if not ((prop > 0) & (prop <= 1)).all():
        raise InputError("propensity_score must be in (0, 1]", source=csv_path)
    if not np.isfinite(aff).all():
        raise InputError("user-item_affinity values must be finite numbers", source=csv_path)
    # pseudo-user for GAUC: OBD has no user id, the 4 user features identify a user segment
    keys = {t: i for i, t in enumerate(sorted({tuple(u) for u in raw_user}))}
    group = np.array([keys[tuple(u)] for u in raw_user], np.int64)
    # log1p tames the rare large affinities (max 15) without losing the zero/non-zero split
    pair = np.log1p(np.maximum(aff, 0.0))[:, :, None]
    log = ImpressionLog(
        user_cat=user_cat, user_num=np.zeros((n, 0), np.float32),
        ad=np.full(n, hash_bucket("ad", campaign, AD_BUCKETS), np.int64), context=pos,
        candidates=np.tile(np.arange(k, dtype=np.int64), (n, 1)), pair=pair, shown=item, click=click,
        propensity=prop, group=group, ad_id=np.zeros(n, np.int64),
    )
    return OBDData(log=log, creatives=creatives, policy=policy, n_buckets=n_buckets, campaign=campaign,
                   raw_user=raw_user)
