"""The explain CLI in-process on a real store: events → pairs (minimum evidence) → train → explain pair for
users with opposite tastes; usage errors are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adcreative.cli import main
from adcreative.core.store import Store
from adcreative.core.types import Event
from adcreative.explain.pairs import read_pairs
from adcreative.generate.provenance import build_generator, generate_and_store
from adcreative.represent.features import FeatureExtractor, features_for_creatives


def _store(tmp_path: Path, sample_products: list, n_products: int = 3, per_product: int = 6, n_events: int = 4000
           ) -> tuple[Store, dict[str, list[str]]]:
    """Products × compositor creatives with real (OCR-free) features, and a log where users of
    segment "light" click bright creatives and "dark" users dark ones."""
    store = Store(home=tmp_path / "home")
    prods = sample_products[:n_products]
    store.add_products(prods)
    gen = build_generator("compositor", scale=0.5)
    for p in prods:
        generate_and_store(store, gen, p, n=per_product, aspects=["1:1"], seed=3)
    cs = store.creatives()
    feats = features_for_creatives(store, cs, extractor=FeatureExtractor(ocr=False))
    mean = float(np.mean([feats[c.id]["brightness"] for c in cs]))
    bright = {c.id: feats[c.id]["brightness"] - mean for c in cs}
    rng = np.random.default_rng(0)
    ev = []
    by_ad: dict[str, list[str]] = {}
    for c in cs:
        by_ad.setdefault(c.product_id, []).append(c.id)
    for i in range(n_events):
        seg = "light" if i % 2 else "dark"
        user = f"u{i % 40}"
        ad = prods[int(rng.integers(0, len(prods)))].id
        c = by_ad[ad][int(rng.integers(0, len(by_ad[ad])))]
        z = bright[c] * (15 if seg == "light" else -15)
        ctx = {"user": {"segment": seg if user != "u0" else "dark", "age": 20 + i % 40}}
        ev.append(Event("impression", f"r{i}", user, ad, c, context=ctx))
        if rng.random() < 1 / (1 + np.exp(-(z - 1.5))):
            ev.append(Event("click", f"r{i}", user, ad, c))
    store.add_events(ev)
    return store, by_ad


def test_events_to_pairs_to_model_to_explanations(tmp_path: Path, sample_products: list,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store, by_ad = _store(tmp_path, sample_products)
    h = ["--home", str(tmp_path / "home")]
    out = tmp_path / "pairs.csv"
    assert main([*h, "explain", "pairs", "--from-store", "--group-by", "segment", "--min-impressions", "30",
                 "--out", str(out)]) == 0
    ps = read_pairs(out)
    assert ps and all(q.source == "logged" and q.evidence["impressions_a"] >= 30 for q in ps)
    assert main([*h, "explain", "pairs", "--import", str(out)]) == 0
    assert main([*h, "explain", "train", "--steps", "300", "--pairs", str(out)]) == 0
    assert "categorical ['segment']" in capsys.readouterr().out
    ids = by_ad[sample_products[0].id]
    feats = features_for_creatives(store, store.creatives())
    hi, lo = max(ids, key=lambda c: feats[c]["brightness"]), min(ids, key=lambda c: feats[c]["brightness"])
    capsys.readouterr()
    assert main([*h, "explain", "pair", lo, hi, "--user-json", '{"segment": "light", "age": 30}', "--json"]) == 0
    light = json.loads(capsys.readouterr().out)
    assert main([*h, "explain", "pair", lo, hi, "--user", "u0", "--json"]) == 0  # u0 logged as "dark"
    dark = json.loads(capsys.readouterr().out)
    assert (light["winner"], dark["winner"]) == (hi, lo), (light["text"], dark["text"])  # opposite tastes
    assert light["p_winner"] > 0.6 and 1 <= len(light["reasons"]) <= 4
    assert all(r["check"]["passed"] for r in light["reasons"])
    assert dark["user_context"]["segment"] == "dark" and "their own clicks" in json.dumps(dark["reasons"])
    assert main([*h, "explain", "pair", lo, hi, "--user", "u0"]) == 0
    assert f"Show {lo} to user u0" in capsys.readouterr().out
    assert main([*h, "explain", "pair", hi, hi, "--user", "u0"]) == 2


def test_usage_errors_exit_2(tmp_path: Path, sample_products: list, capsys: pytest.CaptureFixture[str]) -> None:
    _, by_ad = _store(tmp_path, sample_products, n_products=1, per_product=2, n_events=300)
    h = ["--home", str(tmp_path / "home")]
    a, b = by_ad[sample_products[0].id][:2]
    cases = [
        (["explain", "pairs"], "exactly one of"),
        (["explain", "pair", a, b, "--user", "u1"], "no preference model"),
        (["explain", "pair", a, "nope", "--user-json", "{}"], "neither a stored creative"),
        (["explain", "pair", a, b, "--user-json", "[1]"], "JSON object"),
        (["explain", "pairs", "--import", str(tmp_path / "none.jsonl")], "no such pair file"),
        (["explain", "train", "--no-events"], "no training pairs"),
        (["explain", "train", "--categorical", "segment,nope"],
         "--categorical names user field(s) no training pair has: 'nope'"),
    ]
    for argv, needle in cases:
        capsys.readouterr()
        assert main([*h, *argv]) == 2, argv
        err = capsys.readouterr().err.replace("\n", "")
        assert needle in err and "Traceback" not in err, (argv, err)
    assert main([*h, "explain", "train", "--steps", "50"]) == 0
    # a store with products but no events at all: the same error (it was a reshape traceback)
    bare = ["--home", str(tmp_path / "bare")]
    assert main([*bare, "products", "sample"]) == 0
    capsys.readouterr()
    assert main([*bare, "explain", "train"]) == 2
    err = capsys.readouterr().err
    assert "no training pairs" in err and "Traceback" not in err
    assert main([*h, "explain", "pair", a, b, "--user", "nobody"]) == 2
    assert "no events" in capsys.readouterr().err
    # without a user and with no model folder the command still lists differences
    assert main([*h, "explain", "pair", a, b, "--model", str(tmp_path / "none")]) == 0
    assert "differs from" in capsys.readouterr().out


def test_train_with_embeddings_from_a_represent_encoder(tmp_path: Path, sample_products: list,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from adcreative.represent.encoder import create_encoder

    _, by_ad = _store(tmp_path, sample_products, n_products=1, per_product=3, n_events=600)
    enc = create_encoder(dim=16, hidden=32, image_size=64, backbone="random", use_text=False)
    enc.save_pretrained(tmp_path / "enc")
    h = ["--home", str(tmp_path / "home")]
    assert main([*h, "explain", "train", "--steps", "50", "--encoder", str(tmp_path / "enc"),
                 "--embedding-dim", "4"]) == 0
    cfg = json.loads((tmp_path / "home" / "models" / "preference" / "config.json").read_text())
    assert (cfg["embedding_in"], cfg["embedding_dim"]) == (16, 4)
    a, b = by_ad[sample_products[0].id][:2]
    capsys.readouterr()
    assert main([*h, "explain", "pair", a, b, "--user", "u1", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["winner"] in (a, b, None) and facts["unexplained_share"] >= 0
