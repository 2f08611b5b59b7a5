"""The inspect CLI in-process: training from the store's human labels, clear errors on bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adcreative.cli import main
from adcreative.core.types import CLASSES, Label


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.generate.provenance import build_generator, generate_and_store

    h = tmp_path_factory.mktemp("home")
    store = Store(home=h)
    products = sample_catalogue()[:3]
    store.add_products(products)
    gen = build_generator("compositor", scale=0.25)
    for p in products:
        generate_and_store(store, gen, p, n=2, aspects=["1:1"], seed=3)
    return h


def test_train_from_store_labels(home: Path, tmp_path: Path) -> None:
    from adcreative.core.store import Store
    from adcreative.inspect.data import latest_labels

    store = Store(home=home)
    creatives = store.creatives()
    assert len(creatives) >= 6
    for i, c in enumerate(creatives):
        store.add_label(Label(c.id, CLASSES[i % 3], reviewer="qa"))
    store.add_label(Label(creatives[0].id, "size_mismatch", reviewer="lead"))  # a later label wins
    assert latest_labels(store)[creatives[0].id] == "size_mismatch"
    out = tmp_path / "from-labels"
    args = ["--home", str(home), "inspect", "train", "--store-labels", "--epochs", "2", "--image-size", "64",
            "--aux-size", "32", "--dim", "32", "--layers", "1", "--threads", "1", "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0 and (out / "model.safetensors").exists()
    # one seed, one model: the seed draws the initial weights too (torch's own generator starts at random)
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    first, again = (load_file(str(d / "model.safetensors")) for d in (out, tmp_path / "again"))
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    # nothing to train on: a clear error
    assert main(["--home", str(tmp_path / "empty"), "inspect", "train", "--store-labels", "--out",
                 str(tmp_path / "x")]) == 2


def test_cli_bad_inputs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "eval", "--data", str(tmp_path / "nope")]) == 2
    (tmp_path / "ds").mkdir()
    assert main(["inspect", "train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m")]) == 2
    assert main(["inspect", "run", "--model", str(tmp_path)]) in (0, 2)  # empty store: nothing to score
    assert main(["inspect", "info", "--model", str(tmp_path)]) == 2
    # a cue expert without the cues it reads, or with a weight outside [0, 1): a usage error before any data is read
    for args in (["--cue-expert", "0.5"], ["--cues", "--cue-expert", "1.5"], ["--cues", "--cue-expert", "nan"]):
        capfd.readouterr()
        assert main(["inspect", "train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), *args]) == 2
        assert main(["inspect", "baselines", "--data", str(tmp_path / "ds"), *args]) == 2
        err = capfd.readouterr().err
        # nan is refused as it is parsed (not a finite number), naming the option; the others by the model
        assert err.count("cue_expert") + err.count("'--cue-expert'") == 2 and "Traceback" not in err, err
    # a cue set without the cues, or one that does not exist: the same
    for args, word in ((["--cue-set", "2"], "--cue-set needs --cues"), (["--cues", "--cue-set", "nine"], "cue_set"),
                       (["--cues", "--cue-expert", "0.5", "--cue-expert-kind", "forest"], "cue_expert_kind"),
                       # lr 0 saved the initial weights as a model, patience 0 stopped after one epoch, local width
                       # 0 was a torch RuntimeError in the first forward pass
                       (["--lr", "0"], "--lr must be above 0"), (["--patience", "0"], "--patience must be at least 1"),
                       (["--local-width", "0"], "local_width must be at least 1")):
        capfd.readouterr()
        assert main(["inspect", "train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), *args]) == 2
        assert main(["inspect", "baselines", "--data", str(tmp_path / "ds"), *args]) == 2
        err = capfd.readouterr().err
        assert err.count(word) == 2 and "Traceback" not in err, err
    # an unknown rule for the decision's thresholds, or a family size below 1: the same
    for args, word in ((["--decision-groups", "renderer"], "--decision-groups"),
                       (["--decision-groups", "family", "--decision-min-group", "0"], "--decision-min-group")):
        capfd.readouterr()
        assert main(["inspect", "train", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), *args]) == 2
        assert main(["inspect", "baselines", "--data", str(tmp_path / "ds"), *args]) == 2
        assert main(["inspect", "calibrate", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "m"), *args]) == 2
        err = capfd.readouterr().err
        assert err.count(word) == 3 and "Traceback" not in err, err
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def two_family_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset of tests/inspect with each product's images split between two renderer families, and
    product 8 marked real."""
    import json

    from tests.inspect.helpers import make_dataset

    d = make_dataset(tmp_path_factory.mktemp("two-families"), per_class=2)
    lines = []
    for i, line in enumerate((d / "manifest.jsonl").read_text().splitlines()):
        r = json.loads(line)
        r["renderer"] = ("studio", "photo")[i % 2]
        r["product_source"] = "real" if r["product_id"] == "8" else "procedural"
        if r["label"] != "available":  # how the defect was drawn, as dataset synth records it
            r["params"] = {"kind": ("scratch", "blot")[(i // 2) % 2]}
        lines.append(json.dumps(r))
    (d / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return d


TINY_ARGS = ["--image-size", "64", "--aux-size", "32", "--dim", "32", "--threads", "1", "--tokens", "block",
             "--local-width", "16"]


@pytest.mark.slow
def test_leave_one_renderer_out_table(two_family_data: Path, tmp_path: Path) -> None:
    import json

    out = tmp_path / "loro"
    code = main(["inspect", "baselines", "--data", str(two_family_data), "--loro", "--epochs", "1", "--seeds", "0,1",
                 "--out", str(out), "--max-train", "40", *TINY_ARGS])
    assert code == 0
    res = json.loads((out / "loro.json").read_text())
    assert res["folds"] == ["held-out renderer: photo", "held-out renderer: studio", "real products",
                            "in-distribution"]
    assert len(res["results"]) == 4 * 3 * 2  # folds × (RFNet, image-only, linear probe) × seeds
    for r in res["results"]:
        assert 0 <= r["metrics"]["ap_available"] <= 1 and r["metrics"]["n"] > 0
        # the manifest says how each defect was drawn: every trained model's result says which kinds it missed
        assert r["model"] == "linear probe" or isinstance(r["metrics"]["by_kind"], list)
    md = (out / "loro.md").read_text()
    assert md.index("| held-out renderer: photo") < md.index("| in-distribution") and "linear probe" in md
    assert (out / "loro_ap.png").stat().st_size > 1000
    # another process's seed (given as --seed, as one process per seed does) merges into one table (medians over
    # seeds 0, 1, 2); a seed twice is refused
    out2, merged = tmp_path / "loro-s2", tmp_path / "merged"
    assert main(["inspect", "baselines", "--data", str(two_family_data), "--loro", "--epochs", "1", "--seed", "2",
                 "--out", str(out2), "--max-train", "40", *TINY_ARGS]) == 0
    assert main(["inspect", "baselines", "--data", str(two_family_data), "--loro", "--merge", f"{out},{out2}",
                 "--out", str(merged)]) == 0
    res = json.loads((merged / "loro.json").read_text())
    assert res["seeds"] == [0, 1, 2] and len(res["results"]) == 4 * 3 * 3
    assert "[" in (merged / "loro.md").read_text()  # median [range] cells
    assert main(["inspect", "baselines", "--data", str(two_family_data), "--loro", "--merge", f"{out},{out}",
                 "--out", str(tmp_path / "twice")]) == 2
    # one family only: a clear error
    one = tmp_path / "one"
    one.mkdir()
    lines = [json.dumps({**json.loads(x), "renderer": "studio"})
             for x in (two_family_data / "manifest.jsonl").read_text().splitlines()]
    (one / "manifest.jsonl").write_text("\n".join(lines).replace('"image": "', f'"image": "{two_family_data}/')
                                        .replace('"mask": "', f'"mask": "{two_family_data}/')
                                        .replace('"product": "', f'"product": "{two_family_data}/') + "\n")
    assert main(["inspect", "baselines", "--data", str(one), "--loro", "--epochs", "1", *TINY_ARGS]) == 2


def _family_folder(src: Path, dst: Path, family: str, **split_of: str) -> Path:
    """``src``'s images of one renderer family as a dataset folder of its own (paths made absolute), with the
    splits of the products named in ``split_of`` overridden."""
    import json

    dst.mkdir()
    lines = []
    for x in (src / "manifest.jsonl").read_text().splitlines():
        r = json.loads(x)
        if r["renderer"] == family:
            for k in ("image", "mask", "product"):
                r[k] = str(src / r[k])
            r["split"] = split_of.get(f"p{r['product_id']}", r["split"])
            lines.append(json.dumps(r))
    (dst / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def test_loro_over_two_folders_with_a_test_only_family(two_family_data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A family rendered into its own folder joins the dataset, and --train-families keeps it test-only."""
    import json

    studio = _family_folder(two_family_data, tmp_path / "studio", "studio")
    photo = _family_folder(two_family_data, tmp_path / "photo", "photo")
    out = tmp_path / "loro"
    assert main(["inspect", "baselines", "--loro", "--data", str(studio), "--data", str(photo), "--train-families",
                 "studio", "--families", "photo", "--models", "RFNet", "--epochs", "1", "--max-train", "40",
                 "--out", str(out), *TINY_ARGS]) == 0
    res = json.loads((out / "loro.json").read_text())
    assert res["folds"] == ["held-out renderer: photo", "real products", "in-distribution"]
    assert {r["metrics"]["n"] for r in res["results"] if r["fold"] == "held-out renderer: photo"} == \
        {sum(1 for x in (photo / "manifest.jsonl").read_text().splitlines() if json.loads(x)["split"] == "test")}
    # a product split differently in the two folders, a family that leaves nothing to train on, and several
    # folders without --loro: one clear line each
    moved = json.loads((photo / "manifest.jsonl").read_text().splitlines()[0])
    other = "val" if moved["split"] != "val" else "train"
    bad = _family_folder(two_family_data, tmp_path / "bad", "photo", **{f"p{moved['product_id']}": other})
    capsys.readouterr()
    for argv, says in ((["--loro", "--data", str(studio), "--data", str(bad)], "must split products alike"),
                       (["--loro", "--data", str(studio), "--data", str(photo), "--train-families", "studio",
                         "--families", "studio"], "leaves no training family"),
                       (["--data", str(studio), "--data", str(photo)], "need --loro")):
        assert main(["inspect", "baselines", *argv, "--models", "RFNet", "--epochs", "1", *TINY_ARGS]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_train_on_two_folders_that_split_a_product_differently(two_family_data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Sets rendered with other seeds draw the real products again, split their own way: --splits first gives
    such a product the first folder's split (after encoding, so each folder's cache still holds); same refuses."""
    import json

    from adcreative.inspect.data import encode_folders, encoding_config
    from adcreative.inspect.model import RFNet

    studio = _family_folder(two_family_data, tmp_path / "studio", "studio")
    rows = [json.loads(x) for x in (studio / "manifest.jsonl").read_text().splitlines()]
    pid = rows[0]["product_id"]
    first = rows[0]["split"]
    other = "val" if first != "val" else "train"
    photo = _family_folder(two_family_data, tmp_path / "photo", "photo", **{f"p{pid}": other})
    capsys.readouterr()
    argv = ["inspect", "train", "--data", str(studio), "--data", str(photo), "--epochs", "1", *TINY_ARGS]
    assert main([*argv, "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "must split products alike" in err and "Traceback" not in err, err
    assert not (tmp_path / "refused").exists()
    assert main([*argv, "--out", str(tmp_path / "m"), "--splits", "first"]) == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["_extra"]["data"] == [str(studio), str(photo)]
    caches = {f: set((f / ".cache").glob("rfnet-enc-*")) for f in (studio, photo)}
    assert all(len(c) == 1 for c in caches.values())
    # the moved rows: every image of the product has the first folder's split, the others are untouched
    saved = RFNet(**{k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("temperature", "decision")})
    enc, samples = encode_folders([studio, photo], encoding_config(saved.config), splits="first", progress=False)
    assert {f: set((f / ".cache").glob("rfnet-enc-*")) for f in (studio, photo)} == caches  # cache hits
    assert {sp for p, sp in zip(enc.product_ids, enc.splits, strict=True) if p == pid} == {first}
    flat = [x for part in samples for x in part]
    assert [sp for p, sp in zip(enc.product_ids, enc.splits, strict=True) if p != pid] == \
        [x.split for x in flat if x.product_id != pid]
    assert main(["inspect", "train", "--data", str(studio), "--splits", "middle", "--out", str(tmp_path / "x"),
                 *TINY_ARGS]) == 2
    assert "unknown split rule" in capsys.readouterr().err
    # a warm start from that model: a new model (here with cues) that starts where it fits, in training and LORO
    assert main([*argv, "--out", str(tmp_path / "w"), "--splits", "first", "--warm-start", str(tmp_path / "m"),
                 "--cues", "--cue-expert", "0.5"]) == 0
    assert "boosting rounds" in capsys.readouterr().out  # the tree cue expert's summary (it once raised here)
    wcfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert wcfg["use_cues"] and wcfg["_extra"]["warm_start"] == str(tmp_path / "m")
    assert "cue_proj.0.weight" in wcfg["_extra"]["warm_fresh"]
    out = tmp_path / "loro"
    assert main(["inspect", "baselines", "--loro", "--data", str(studio), "--data", str(photo), "--splits", "first",
                 "--warm-start", str(tmp_path / "m"), "--families", "photo", "--models", "RFNet", "--epochs", "1",
                 "--out", str(out), *TINY_ARGS]) == 0
    assert json.loads((out / "loro.json").read_text())["config"]["warm_start"] == str(tmp_path / "m")
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "y"), "--init", str(tmp_path / "m"), "--warm-start",
                 str(tmp_path / "m")]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_train_calibrate_and_eval_by_renderer(two_family_data: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    m = tmp_path / "m"
    assert main(["inspect", "train", "--data", str(two_family_data), "--out", str(m), "--epochs", "2",
                 "--modality-dropout", "0.2", "--layers", "1", "--adversary", "both", "--adversary-weight", "0.3",
                 "--decision-groups", "family", "--decision-min-group", "4", *TINY_ARGS]) == 0
    cached = set((two_family_data / ".cache").glob("rfnet-enc-*"))
    cfg = json.loads((m / "config.json").read_text())
    # the adversary trained (its accuracy is in the history) but is no part of the saved model
    assert cfg["_extra"]["train"]["adversary"] == "both" and "adv_renderer_acc" in cfg["_extra"]["history"][0]
    assert "adversary" not in {k for k in cfg if not k.startswith("_")}
    assert cfg["decision"]["target_accept"] == 0.99 and cfg["temperature"] > 0
    # thresholds met on each renderer family of validation: the rule is saved with the decision and the config
    assert cfg["decision"]["groups"] == "family" and cfg["_extra"]["train"]["decision_groups"] == "family"
    assert cfg["_extra"]["train"]["decision_min_group"] == 4
    assert "calibration" in cfg["_extra"]
    # fine-tuning a saved model keeps its architecture and refits its calibration on the new validation split
    ft = tmp_path / "ft"
    assert main(["inspect", "train", "--init", str(m), "--data", str(two_family_data), "--out", str(ft),
                 "--epochs", "1", "--lr", "5e-4", "--threads", "1"]) == 0
    ft_cfg = json.loads((ft / "config.json").read_text())
    assert ft_cfg["_extra"]["init"] == str(m) and ft_cfg["_extra"]["train"]["lr"] == 5e-4
    assert {k: ft_cfg[k] for k in ("image_size", "dim", "tokens", "local_width")} == \
        {k: cfg[k] for k in ("image_size", "dim", "tokens", "local_width")}
    assert ft_cfg["decision"] is not None and ft_cfg["temperature"] > 0
    m2 = tmp_path / "m2"
    assert main(["inspect", "calibrate", "--data", str(two_family_data), "--model", str(m), "--out", str(m2),
                 "--target-accept", "0.95", "--threads", "1"]) == 0
    assert json.loads((m2 / "config.json").read_text())["decision"]["target_accept"] == 0.95
    assert json.loads((m2 / "config.json").read_text())["decision"]["groups"] == "family"  # the default
    m3 = tmp_path / "m3"
    assert main(["inspect", "calibrate", "--data", str(two_family_data), "--model", str(m), "--out", str(m3),
                 "--decision-groups", "pooled", "--threads", "1"]) == 0
    assert json.loads((m3 / "config.json").read_text())["decision"]["groups"] == "pooled"
    ev = tmp_path / "ev"
    assert main(["inspect", "eval", "--data", str(two_family_data), "--model", str(m2), "--out", str(ev)]) == 0
    # calibrate and eval read their splits from the encodings training cached, rather than encoding them again
    assert set((two_family_data / ".cache").glob("rfnet-enc-*")) == cached
    metrics = json.loads((ev / "metrics.json").read_text())
    assert set(metrics["by_renderer"]) == {"photo", "studio"} and "decision" in metrics
    assert metrics.get("by_kind") != []  # metrics.json is written once, as returned: no kind list left empty
    assert (ev / "reliability.png").exists() and (ev / "renderer-photo" / "reliability.png").exists()
    # which drawn kinds it misses: from the manifest's params.kind, per family and class, drawn as a bar chart
    eva = tmp_path / "eva"
    assert main(["inspect", "eval", "--data", str(two_family_data), "--model", str(m2), "--split", "all",
                 "--out", str(eva)]) == 0
    kinds = json.loads((eva / "metrics.json").read_text())["by_kind"]
    assert kinds and {r["kind"] for r in kinds} <= {"scratch", "blot"} and {r["family"] for r in kinds} <= {"photo", "studio"}
    assert all(r["n"] >= 5 and 0.0 <= r["above_available_median"] <= 1.0 for r in kinds)
    assert (eva / "kinds.png").stat().st_size > 1000
    # a renderer's own temperature from its reviewed images: the rest of the model as it was
    m4 = tmp_path / "m4"
    assert main(["inspect", "calibrate-renderer", "--data", str(two_family_data), "--model", str(m2), "--out",
                 str(m4), "--renderer", "photo", "--bias", "--threads", "1"]) == 0
    c2, c4 = (json.loads((x / "config.json").read_text()) for x in (m2, m4))
    fitted = c4["_extra"]["renderer_calibration"]["photo"]
    assert c4["renderer_calibration"] == {"photo": {"temperature": fitted["temperature"], "bias": fitted["bias"]}}
    assert fitted["n"] >= 30 and len(fitted["bias"]) == 6
    assert fitted["nll"] > 0 and fitted["ece"] >= 0 and len(fitted["fold_temperatures"]) == fitted["folds"]
    assert {k: v for k, v in c4.items() if k not in ("renderer_calibration", "_extra")} == \
        {k: v for k, v in c2.items() if k not in ("renderer_calibration", "_extra")}
    assert (m4 / "reliability_photo.png").stat().st_size > 1000
    ev4 = tmp_path / "ev4"
    assert main(["inspect", "eval", "--data", str(two_family_data), "--model", str(m4), "--out", str(ev4)]) == 0
    by = json.loads((ev4 / "metrics.json").read_text())["by_renderer"]
    before = metrics["by_renderer"]
    assert by["studio"]["calibration"]["nll"] == pytest.approx(before["studio"]["calibration"]["nll"])
    assert by["photo"]["calibration"]["renderer_calibration"] is True
    # which renderer: the folder holds two, so it must be named; one it does not hold is refused by name
    for args, says in (([], "name one with --renderer"), (["--renderer", "lowkey"], "no images of renderer 'lowkey'")):
        capsys.readouterr()
        assert main(["inspect", "calibrate-renderer", "--data", str(two_family_data), "--model", str(m2), "--out",
                     str(tmp_path / "m5"), *args]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and not (tmp_path / "m5").exists(), err
    assert main(["inspect", "calibrate", "--data", str(two_family_data), "--model", str(m), "--out", str(m2),
                 "--target-accept", "1.5"]) == 2
    assert main(["inspect", "train", "--data", str(two_family_data), "--out", str(tmp_path / "bad"),
                 "--adversary", "camera"]) == 2 and not (tmp_path / "bad").exists()
