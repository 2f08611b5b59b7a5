"""The explain stage against the store: what ``adcreative explain pair|pairs|train`` call.

* :func:`train_from_store` — the preference model from the store's logged impressions and clicks (matched
  click pairs, :func:`~adcreative.explain.pairs.click_pairs`) plus explicit CreativePair labels;
* :func:`explain_stored_pair` — which of two stored creatives to show a user, why, and (optionally) what
  an OpenAI-compatible MLLM says about it, checked;
* :func:`resolve_features` — explicit features for pair images that are store ids or image files.

User context comes from what the selection service logged with each event (``context["user"]``, the
request's user fields). Field types: floats are numeric; strings, booleans and integers with at most
``MAX_INT_LEVELS`` distinct values are categorical (segments, age buckets); other integers numeric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adcreative.core.errors import InputError
from adcreative.explain.pairs import CreativePair, click_history, click_pairs, logged_user, user_context

if TYPE_CHECKING:
    from adcreative.core.store import Store

MAX_INT_LEVELS = 20
MODEL_DIR = Path("models") / "preference"  # under the store's home


def default_model_dir(home: str | Path) -> Path:
    return Path(home) / MODEL_DIR


def infer_user_fields(users: Sequence[Mapping[str, Any]], categorical: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(categorical, numeric) field names seen in user contexts (see the module docstring)."""
    values: dict[str, list[Any]] = {}
    for u in users:
        for k, v in u.items():
            if k != "id" and v is not None:
                values.setdefault(k, []).append(v)
    cat, num = [], []
    for k, vs in sorted(values.items()):
        if k in categorical or any(isinstance(v, str | bool) for v in vs) or (all(isinstance(v, int) for v in vs) and len(set(vs)) <= MAX_INT_LEVELS):
            cat.append(k)
        elif all(isinstance(v, int | float) for v in vs):
            num.append(k)
        else:
            cat.append(k)
    return cat, num


def resolve_features(store: Store, refs: Sequence[str], encoder: Any = None) -> dict[str, dict[str, Any]]:
    """Explicit features for each reference: a stored creative id (cached in the store) or an image file;
    with ``encoder`` (represent's ``CreativeEncoder``) each dict also carries its learned ``embedding``
    (cached in the store per encoder fingerprint for stored creatives)."""
    from adcreative.core.imageio import open_image
    from adcreative.represent.features import extract, features_for_creatives

    stored, files = [], []
    for r in dict.fromkeys(refs):
        try:
            stored.append(store.get_creative(r))
        except (InputError, KeyError, LookupError):
            if not Path(r).is_file():
                raise InputError(f"{r!r} is neither a stored creative id nor an image file") from None
            files.append(r)
    out = features_for_creatives(store, stored, show_progress=len(stored) > 20) if stored else {}
    if files:
        out.update(dict(zip(files, extract([open_image(f) for f in files]), strict=True)))
    if encoder is not None:
        from adcreative.explain.preference import EMBEDDING_KEY
        from adcreative.represent.encoder import embed_creatives

        vecs = embed_creatives(store, stored, encoder) if stored else np.zeros((0, encoder.dim))
        out = {k: dict(v) for k, v in out.items()}
        for c, v in zip(stored, vecs, strict=True):
            out[c.id][EMBEDDING_KEY] = v.tolist()
        for f, v in zip(files, encoder.embed([open_image(f) for f in files]) if files else [], strict=True):
            out[f][EMBEDDING_KEY] = v.tolist()
    return out


def load_encoder(directory: str | Path) -> Any:
    from adcreative.represent.encoder import ENCODERS

    return ENCODERS.load(directory)


@dataclass
class TrainReport:
    model_dir: Path
    logged_pairs: int
    label_pairs: int
    clicks: int
    impressions: int
    user_cat_fields: list[str]
    user_num_fields: list[str]
    final_loss: float


def _encode_users(users: Sequence[Mapping[str, Any]], cat: list[str], num: list[str]) -> np.ndarray:
    """Numeric matrix for nearest-user matching: one-hot categoricals (weight 3: a different segment is
    far) and z-scored numerics."""
    cols = []
    for f in cat:
        vals = sorted({str(u.get(f)) for u in users})
        cols.append(3.0 * np.array([[str(u.get(f)) == v for v in vals] for u in users], np.float64))
    if num:
        x = np.array([[float(u.get(f, np.nan)) if u.get(f) is not None else np.nan for f in num] for u in users])
        x = np.nan_to_num((x - np.nanmean(x, 0)) / np.where(np.nanstd(x, 0) > 0, np.nanstd(x, 0), 1.0))
        cols.append(x)
    return np.concatenate(cols, axis=1) if cols else np.zeros((len(users), 1))


def train_from_store(store: Store, out: str | Path, *, label_files: Sequence[str | Path] = (), use_events: bool = True,
                     per_click: int = 4, rank: int = 4, steps: int = 400, categorical: Sequence[str] = (),
                     label_weight: float = 1.0, encoder_dir: str | Path | None = None, embedding_dim: int = 8,
                     seed: int = 0, progress: bool = False) -> TrainReport:
    """Train and save the preference model from logged events and/or CreativePair files; with
    ``encoder_dir`` (a represent encoder) the creatives' embeddings enter as ``embedding_dim`` principal
    components, and the encoder's folder is recorded so explanations embed with the same model."""
    from adcreative.explain import create_preference_model
    from adcreative.explain.pairs import read_pairs
    from adcreative.explain.preference import PairSet, PreferenceTrainConfig, train_preference

    logged: list[CreativePair] = []
    n_imp = n_clk = 0
    if use_events:
        imps = store.events(kind="impression")
        clicked = {(c.request_id, c.creative_id) for c in store.events(kind="click")}
        seen: set[tuple[str, str]] = set()
        rows = []
        for e in imps:
            if (e.request_id, e.creative_id) not in seen:
                seen.add((e.request_id, e.creative_id))
                rows.append(e)
        ctx = [{"id": e.user_id, **logged_user(e)} for e in rows]
        n_imp, n_clk = len(rows), sum((e.request_id, e.creative_id) in clicked for e in rows)
        if rows:  # a store without impressions has no logged pairs (click_pairs needs at least one row)
            cat0, num0 = infer_user_fields(ctx, categorical)
            logged = click_pairs([e.ad_id for e in rows], _encode_users(ctx, cat0, num0),
                                 [e.creative_id for e in rows],
                                 [1.0 if (e.request_id, e.creative_id) in clicked else 0.0 for e in rows],
                                 per_click=per_click, users=ctx, seed=seed)
    labels = [q for f in label_files for q in read_pairs(f)]
    for q in labels:
        if isinstance(q.user, str):  # a user id: their logged context
            q.user = {"id": q.user, **(user_context(store, q.user) or {})}
    pairs = logged + labels
    if not pairs:
        raise InputError("no training pairs: the store has no clicks with a matching non-clicked impression "
                         "of the same ad, and no --pairs file was given")
    encoder = load_encoder(encoder_dir) if encoder_dir is not None else None
    feats = resolve_features(store, [r for q in pairs for r in (q.image_a, q.image_b)], encoder)
    users: list[Mapping[str, Any] | None] = [q.user if isinstance(q.user, dict) else {} for q in pairs]
    seen_fields = {k for u in users for k in (u or {}) if k != "id"}
    unknown = [c for c in categorical if c not in seen_fields]
    if unknown:
        raise InputError(f"--categorical names user field(s) no training pair has: {', '.join(map(repr, unknown))} "
                         f"(fields: {', '.join(sorted(seen_fields)) or 'none'})")
    cat, num = infer_user_fields([u or {} for u in users], categorical)
    emb_in = int(encoder.dim) if encoder is not None else 0
    model = create_preference_model("bradley_terry", user_cat_fields=cat, user_num_fields=num, rank=rank,
                                    embedding_in=emb_in, embedding_dim=min(embedding_dim, emb_in))
    ps = PairSet(users, [feats[q.image_a] for q in pairs], [feats[q.image_b] for q in pairs],
                 np.array([q.target for q in pairs]),
                 np.array([1.0 if q.source == "logged" else label_weight for q in pairs]))
    losses = train_preference(model, ps, PreferenceTrainConfig(steps=steps, seed=seed), progress=progress)
    d = model.save_pretrained(out, extra={"logged_pairs": len(logged), "label_pairs": len(labels),
                                          "impressions": n_imp, "clicks": n_clk,
                                          "encoder": str(Path(encoder_dir).resolve()) if encoder_dir else None})
    return TrainReport(Path(d), len(logged), len(labels), n_clk, n_imp, cat, num, losses[-1])


def _model_encoder(mdir: Path) -> Any:
    """The encoder a preference model was trained with (recorded in its config), or None."""
    import json

    cfg = json.loads((mdir / "config.json").read_text())
    if not cfg.get("embedding_dim"):
        return None
    enc = (cfg.get("_extra") or {}).get("encoder")
    if not enc or not Path(enc).is_dir():
        raise InputError(f"the preference model uses embeddings of encoder {enc!r}, which is not there", source=mdir)
    return load_encoder(enc)


@dataclass
class PairAnswer:
    explanation: Any                 # pairwise.Explanation
    text: str
    judgement: Any = None            # llm.Judgement when an MLLM was asked
    user: dict[str, Any] | None = None


def explain_stored_pair(store: Store, a: str, b: str, *, user: str | None = None,
                        user_fields: Mapping[str, Any] | None = None, model_dir: str | Path | None = None,
                        llm_url: str | None = None, llm_model: str = "gpt-4o-mini") -> PairAnswer:
    """Which of stored creatives ``a``/``b`` to show ``user`` and why (see the module docstring).

    Without a trained model (and no user) the answer lists how they differ and names no winner."""
    from adcreative.explain.pairwise import differences, explain_pair

    if a == b:
        raise InputError("give two different creatives")
    mdir = Path(model_dir) if model_dir is not None else None
    has_model = mdir is not None and (mdir / "config.json").exists()
    encoder = _model_encoder(mdir) if has_model and mdir is not None else None
    feats = resolve_features(store, [a, b], encoder)
    ctx: dict[str, Any] | None = dict(user_fields) if user_fields else None
    if user is not None and ctx is None:
        ctx = user_context(store, user)
        if ctx is None:
            raise InputError(f"user {user!r} has no events in the store: give their fields with --user-json")
    if not has_model or mdir is None:
        if user is not None or user_fields:
            raise InputError(f"no preference model at {mdir}: train one with `adcreative explain train`")
        ex = explain_pair(feats[a], feats[b], id_a=a, id_b=b)
        return PairAnswer(ex, ex.text)
    from adcreative.explain import load_preference_model

    model = load_preference_model(mdir)
    history = None
    if user is not None:
        shown, clicked = click_history(store, user)
        if clicked:
            hf = resolve_features(store, list(dict.fromkeys(shown[-200:] + clicked)), encoder)
            history = ([hf[c] for c in shown[-200:] if c in hf], [hf[c] for c in clicked if c in hf])
    ex = model.explain(ctx, feats[a], feats[b], id_a=a, id_b=b, user_id=user, history=history)
    ans = PairAnswer(ex, ex.text, user=ctx)
    if llm_url:
        from adcreative.explain.llm import llm_compare

        interests = [r.interest for r in [*ex.reasons, *ex.counter] if r.interest]
        j = llm_compare(ex, differences(feats[a], feats[b]), interests, store.creative_image(a),
                        store.creative_image(b), url=llm_url, model=llm_model)
        ans.judgement, ans.text = j, j.report(ex)
    return ans
