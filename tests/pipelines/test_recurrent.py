"""Recurrent generation (generate → inspect → store until K available), in-process and through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adcreative.cli import main
from adcreative.core.types import CLASSES

TINY = {"image_size": 64, "aux_size": 32, "dim": 32, "heads": 2, "layers": 1, "product_grid": 2,
        "max_text_tokens": 8, "dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny-rfnet")
    RFNet(**TINY).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store

    h = tmp_path_factory.mktemp("home")
    Store(home=h).add_products(sample_catalogue()[:3])
    return h


def test_recurrent_generation_stops_at_k_and_stores_every_attempt(home: Path, tiny_model: Path) -> None:
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.base import load_inspector
    from adcreative.pipelines.recurrent import format_results, recurrent_generate

    store = Store(home=home)
    product = next(iter(store.products()))
    net = load_inspector(tiny_model)
    gen = build_generator("compositor", scale=0.25)
    # a threshold every verdict clears: stops exactly when K are available, in as few attempts as K
    r = recurrent_generate(store, gen, net, product, k=2, max_attempts=6, aspects=["1:1", "9:16"], seed=3,
                           threshold=1e-6, batch=1)
    assert r.complete and len(r.delivered) == 2 and len(r.attempts) == 2
    assert r.attempts_per_available == 1.0 and r.available_rate == 1.0 and r.seconds_per_available > 0
    assert [a.creative.aspect for a in r.attempts] == ["1:1", "9:16"]
    # a threshold none clears: spends the budget, every attempt stored with its verdict and predicted defect
    r2 = recurrent_generate(store, gen, net, product, k=2, max_attempts=5, seed=10, threshold=1.0, batch=2)
    assert not r2.complete and len(r2.attempts) == 5 and len(r2.rejected) == 5
    assert r2.attempts_per_available == float("inf")
    stored = store.creatives(run_id=r2.run_id)
    assert len(stored) == 5
    for a in r2.attempts:
        v = store.latest_verdict(a.creative.id)
        assert v is not None and abs(sum(v.probs.values()) - 1) < 1e-4
        assert a.defect in CLASSES[1:]
    # the scores written match what the model says about the stored image (exact mask regenerated)
    from adcreative.inspect.data import creative_item

    item = creative_item(store, stored[0], product)
    assert item.mask is not None
    np.testing.assert_allclose(net.predict_proba([item])[0, 0], r2.attempts[0].p_available, atol=1e-5)
    assert "total" in format_results([r, r2])


def test_generate_until_available_cli(home: Path, tiny_model: Path) -> None:
    from adcreative.core.store import Store

    store = Store(home=home)
    pid = store.product_ids()[1]
    before = len(store.creatives(product_id=pid))
    code = main(["--home", str(home), "generate", "--product", pid, "--until-available", "2", "--max-attempts", "4",
                 "--threshold", "0.000001", "--inspector", str(tiny_model), "--aspect", "1:1"])
    assert code == 0
    assert len(store.creatives(product_id=pid)) - before == 2
    # budget smaller than K: a clear error, nothing generated
    code = main(["--home", str(home), "generate", "--product", pid, "--until-available", "3", "--max-attempts", "2",
                 "--inspector", str(tiny_model)])
    assert code == 2
    assert len(store.creatives(product_id=pid)) - before == 2
    # --adapt-prior needs the three-way decision with its validation histograms: a usage error, nothing made
    assert main(["--home", str(home), "generate", "--product", pid, "--until-available", "1", "--adapt-prior",
                 "--threshold", "0.5", "--inspector", str(tiny_model)]) == 2
    assert main(["--home", str(home), "generate", "--product", pid, "--until-available", "1", "--adapt-prior",
                 "--inspector", str(tiny_model)]) == 2  # an uncalibrated model: no decision to adapt
    assert len(store.creatives(product_id=pid)) - before == 2
    for bad in ("a/b", "r" * 65):  # run ids are part of the attempt key: no "/", within the column
        assert main(["--home", str(home), "generate", "--product", pid, "--until-available", "1",
                     "--inspector", str(tiny_model), "--run-id", bad]) == 2
    # the same command again is the same run: it takes what is stored and makes nothing new
    code = main(["--home", str(home), "generate", "--product", pid, "--until-available", "2", "--max-attempts", "4",
                 "--threshold", "0.000001", "--inspector", str(tiny_model), "--aspect", "1:1"])
    assert code == 0 and len(store.creatives(product_id=pid)) - before == 2


def test_rerun_resumes_the_run_and_gives_the_uninterrupted_result(tmp_path: Path, tiny_model: Path) -> None:
    """A run stopped early (here: a smaller budget) and run again continues from the attempts in the store:
    none is made twice, and the result is the one an uninterrupted run gives."""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator, to_creative
    from adcreative.inspect.base import load_inspector
    from adcreative.pipelines.recurrent import attempt_key, default_run_id, recurrent_generate

    net = load_inspector(tiny_model)
    gen = build_generator("compositor", scale=0.25)
    product = sample_catalogue()[0]
    kw = {"k": 2, "aspects": ["1:1", "4:5"], "seed": 5, "threshold": 1.0, "batch": 3, "model_id": "tiny"}
    whole = Store(home=tmp_path / "whole")
    whole.add_products([product])
    ref = recurrent_generate(whole, gen, net, product, max_attempts=7, **kw)  # type: ignore[arg-type]

    store = Store(home=tmp_path / "resumed")
    store.add_products([product])
    first = recurrent_generate(store, gen, net, product, max_attempts=4, **kw)  # type: ignore[arg-type]
    # what a crash between two commits left before they were one transaction: an attempt without verdict
    run = default_run_id(gen, kw["aspects"], 5, "tiny")  # type: ignore[arg-type]
    assert first.run_id == run
    gi = gen(product, seed=5 + 4, aspect="1:1")[0]
    c, data, mask = to_creative(gi, product, run_id=run, attempt_key=attempt_key(run, product.id, 9))
    store.add_creative(c, data=data, mask=mask)
    again = recurrent_generate(store, gen, net, product, max_attempts=7, **kw)  # type: ignore[arg-type]
    assert again.reused == 5 and len(again.attempts) == 7
    assert [a.creative.id for a in again.attempts[:4]] == [a.creative.id for a in first.attempts]
    assert again.attempts[4].creative.id == c.id  # taken and scored now, not generated again
    assert [(a.creative.seed, a.creative.aspect, a.creative.image_sha, a.creative.mask_sha) for a in again.attempts] == [
        (a.creative.seed, a.creative.aspect, a.creative.image_sha, a.creative.mask_sha) for a in ref.attempts]
    np.testing.assert_allclose([a.p_available for a in again.attempts], [a.p_available for a in ref.attempts],
                               atol=1e-5)
    stored = store.creatives(run_id=run)
    assert sorted(x.seed for x in stored) == list(range(5, 12))
    assert set(store.latest_verdicts([x.id for x in stored])) == {x.id for x in stored}
    # another run (other options) is another run id; the same id with other aspects is refused
    with pytest.raises(Exception, match="was made at 4:5"):
        recurrent_generate(store, gen, net, product, max_attempts=7, run_id=run,
                           **{**kw, "aspects": ["1:1", "9:16"]})  # type: ignore[arg-type]


@pytest.mark.slow
def test_kill_9_then_rerun_finishes_the_run_without_regenerating(tmp_path: Path, tiny_model: Path) -> None:
    """``generate --until-available`` killed with SIGKILL mid-run, then the same command again: it takes the
    finished seeds from the store, makes only the rest, and no creative is ever without its verdict."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sqlalchemy import func, select

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store, VerdictRow
    from tests.paths import REPO

    home = tmp_path / "home"
    store = Store(home=home)
    pid = sample_catalogue()[0].id
    store.add_products(sample_catalogue()[:1])
    budget = 24
    cmd = [sys.executable, "-m", "adcreative", "--home", str(home), "generate", "--product", pid,
           "--until-available", "1", "--max-attempts", str(budget), "--threshold", "1.0", "--aspect", "1:1,9:16",
           "--inspector", str(tiny_model), "--gen-config", '{"scale": 0.25}']
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and len(store.creatives(product_id=pid)) < 3:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    made = {c.seed: c.id for c in store.creatives(product_id=pid)}
    assert 3 <= len(made) < budget, "the kill should land mid-run"
    assert set(store.latest_verdicts(list(made.values()))) == set(made.values())  # no unaudited creative

    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert f"resumed: {len(made)} attempts were already stored" in out.stdout
    after = {c.seed: c.id for c in store.creatives(product_id=pid)}
    assert sorted(after) == list(range(budget))  # the run finished: every seed once
    assert all(after[s] == cid for s, cid in made.items())  # the finished seeds were not regenerated
    with store.session() as s:
        per_creative = dict(s.execute(select(VerdictRow.creative_id, func.count()).group_by(VerdictRow.creative_id)).all())
    assert per_creative == {cid: 1 for cid in after.values()}  # every creative has exactly its one verdict


def test_the_decision_bands_attempts_and_queues_the_human_ones(home: Path) -> None:
    """With the model's three-way decision: only auto-accepted attempts count as available; those sent to a human
    are stored with their band and head the review queue."""
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.decision import Decision
    from adcreative.inspect.model import RFNet
    from adcreative.pipelines.recurrent import format_attempts, format_results, recurrent_generate

    store = Store(home=home)
    product = store.get_product(store.product_ids()[2])
    gen = build_generator("compositor", scale=0.25)
    torch.manual_seed(0)
    net = RFNet(**TINY).eval()
    p = net.predict_proba([_item(gen, product, s) for s in range(40, 46)])[:, 0]
    # accept the two most likely, reject the two least, the middle goes to a human (an untrained model's scores)
    order = np.sort(p)
    net.set_calibration(1.0, Decision(accept=float(order[-2]), reject=float(order[1]), ood=None))
    r = recurrent_generate(store, gen, net, product, k=6, max_attempts=6, seed=40, batch=6)
    bands = r.band_counts()
    assert bands == {"accept": 2, "human": 2, "reject": 2}
    assert not r.complete and r.n_available == 2 and len(r.to_human) == 2 and r.attempts_per_available == 3.0
    for a in r.attempts:
        v = store.latest_verdict(a.creative.id)
        assert v is not None and v.band == a.band
    queue = [c.id for c, _ in store.review_queue(2)]
    assert sorted(queue) == sorted(a.creative.id for a in r.to_human)
    assert "human" in format_results([r]) and "to a human" in format_attempts(r)
    assert r.summary()["bands"] == bands


def _item(gen, product, seed: int):  # type: ignore[no-untyped-def]
    from adcreative.inspect.preprocess import InspectItem

    gi = gen(product, seed=seed, aspect="1:1", n=1)[0]
    return InspectItem(image=gi.image.convert("RGB"), title=product.title, mask=gi.mask, product=product.image)


def test_adapt_prior_bands_each_batch_at_the_estimated_share(tmp_path: Path) -> None:
    """``adapt_prior``: the product's attempts so far give an estimated available share (EM over all classes), the
    accept threshold is re-chosen for it from the validation histograms, and the batch is banded with it; the
    reject threshold does not move. Without validation histograms, or with a fixed --threshold, it is refused."""
    from dataclasses import replace

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.errors import InputError
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.decision import PRIOR_BINS, Decision, adapted_decision
    from adcreative.inspect.model import RFNet
    from adcreative.pipelines.recurrent import recurrent_generate

    store = Store(home=tmp_path)  # its own store: the human-band attempts it makes stay out of others' queues
    store.add_products(sample_catalogue()[1:2])
    product = store.get_product(store.product_ids()[0])
    gen = build_generator("compositor", scale=0.25)
    torch.manual_seed(0)
    net = RFNet(**TINY).eval()
    probs = net.predict_proba([_item(gen, product, s) for s in range(60, 66)])
    p = probs[:, 0]
    # validation (hand-made): available images score in the top half, defective ones anywhere, at a 2 % share of
    # available: an untrained model's ~1/6 on this batch is a much larger share, which moves the accept threshold
    pos = np.zeros(PRIOR_BINS, int)
    pos[PRIOR_BINS // 2:] = 4
    neg = np.zeros(PRIOR_BINS, int)
    neg[: 3 * PRIOR_BINS // 4] = 2
    cp = (0.02, 0.196, 0.196, 0.196, 0.196, 0.196)
    d = Decision(accept=0.75, reject=float(np.sort(p)[0]), ood=None, target_accept=0.5, prior=0.02,
                 class_prior=cp, val_available=tuple(pos), val_defective=tuple(neg))
    assert d.for_prior(0.02).accept == pytest.approx(0.75, abs=0.01)
    net.set_calibration(1.0, d)
    r = recurrent_generate(store, gen, net, product, k=6, max_attempts=6, seed=60, batch=6, adapt_prior=True)
    want, share = adapted_decision(d, probs)
    assert r.prior == pytest.approx(share) and share > 0.05
    assert r.threshold == want.accept < d.accept and want.reject == d.reject
    assert [a.band for a in r.attempts] == want.bands(p)
    fixed = recurrent_generate(store, gen, net, product, k=6, max_attempts=6, seed=60, batch=6, run_id="fixed")
    assert [a.band == "reject" for a in fixed.attempts] == [a.band == "reject" for a in r.attempts]
    with pytest.raises(InputError, match="adapt-prior"):
        recurrent_generate(store, gen, net, product, k=1, max_attempts=1, seed=60, threshold=0.5, adapt_prior=True)
    net.set_calibration(1.0, replace(d, val_available=None))
    with pytest.raises(InputError, match="adapt-prior"):
        recurrent_generate(store, gen, net, product, k=1, max_attempts=1, seed=60, adapt_prior=True)


def test_real_products_meet_the_real_floor_drawn_ones_do_not(tmp_path: Path) -> None:
    """A decision with a real-product floor: the sample product (marked ``sample`` by the built-in catalogue, kept
    through the store) is banded by the decision's own threshold, the same cutout imported as a real product (no
    mark) is held to the floor — here one no score reaches, so its attempts go to a human, never to accept."""
    from dataclasses import replace

    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.decision import NEVER, PRIOR_BINS, Decision
    from adcreative.inspect.model import RFNet
    from adcreative.pipelines.recurrent import recurrent_generate

    drawn = sample_catalogue()[2]
    imported = replace(drawn, id="imported-" + drawn.id,
                       attrs={k: v for k, v in drawn.attrs.items() if k != "catalogue_source"})
    store = Store(home=tmp_path)
    store.add_products([drawn, imported])
    assert store.get_product(drawn.id).attrs["catalogue_source"] == "sample"
    gen = build_generator("compositor", scale=0.25)
    torch.manual_seed(0)
    net = RFNet(**TINY).eval()
    net.set_calibration(1.0, Decision(accept=1e-9, reject=-1.0, ood=None, real_accept=NEVER))
    got, shown = {}, {}
    for pid in (drawn.id, imported.id):
        r = recurrent_generate(store, gen, net, store.get_product(pid), k=3, max_attempts=3, seed=70, batch=3)
        got[pid], shown[pid] = [a.band for a in r.attempts], r.threshold
    assert got[drawn.id] == ["accept"] * 3 and shown[drawn.id] == 1e-9
    assert got[imported.id] == ["human"] * 3 and shown[imported.id] == NEVER  # the report shows the floor it met
    # the same with label shift (--adapt-prior): the per-product re-chosen threshold never undercuts the floor
    pos = np.zeros(PRIOR_BINS, int)
    pos[-1] = 10  # validation: every available image at the top, every defective one at the bottom
    neg = np.zeros(PRIOR_BINS, int)
    neg[0] = 10
    net.set_calibration(1.0, Decision(accept=1e-9, reject=-1.0, ood=None, real_accept=NEVER, prior=0.5,
                                      val_available=tuple(pos), val_defective=tuple(neg)))
    for pid in (drawn.id, imported.id):
        r = recurrent_generate(store, gen, net, store.get_product(pid), k=3, max_attempts=3, seed=80, batch=3,
                               adapt_prior=True, run_id=f"adapt-{pid}")
        got[pid], shown[pid] = [a.band for a in r.attempts], r.threshold
    assert "accept" not in got[imported.id] and shown[imported.id] == NEVER
    assert shown[drawn.id] < NEVER and got[drawn.id] == ["accept"] * 3


def test_the_result_says_when_the_cutout_itself_is_judged_unsuitable(home: Path) -> None:
    """Recurrent generation judges the product's cutout alone once (inspect.sources) and keeps the verdict; a
    flagged product gets a note under the table saying to check its catalogue image rather than regenerate."""
    from dataclasses import replace

    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.sources import judge_sources
    from adcreative.pipelines.recurrent import format_results, recurrent_generate

    store = Store(home=home)
    product = store.get_product(store.product_ids()[0])
    gen = build_generator("compositor", scale=0.25)
    torch.manual_seed(0)
    net = RFNet(**TINY).eval()
    r = recurrent_generate(store, gen, net, product, k=1, max_attempts=1, seed=90, threshold=1e-6, batch=1,
                           run_id="source-check")
    want = judge_sources(net, [product])[0]
    assert r.source_unsuitable == pytest.approx(want.probs["unsuitable"]) and r.source_flagged == want.flagged
    assert r.summary()["source_flagged"] == want.flagged
    flagged = replace(r, source_unsuitable=0.7, source_flagged=True)
    text = format_results([r, flagged])
    assert text.count("note:") == int(r.source_flagged) + 1 and "check that image" in text
    skipped = recurrent_generate(store, gen, net, product, k=1, max_attempts=1, seed=90, threshold=1e-6, batch=1,
                                 run_id="source-check", check_source=False)
    assert skipped.source_unsuitable is None and not skipped.source_flagged
