"""`dataset synth` in-process: the written dataset reads back, is the same for any workers, mixes families."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from adcreative.catalogue.sample import save_catalogue
from adcreative.cli import main
from adcreative.core.types import Product
from adcreative.inspect.datasets.formats import read_dataset


@pytest.fixture()
def catalogue(tmp_path: Path, sample_products: list[Product]) -> Path:
    return save_catalogue(sample_products[:3], tmp_path / "cat")


def test_dataset_synth_and_read(tmp_path: Path, catalogue: Path) -> None:
    out = tmp_path / "ds"
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(out), "--per-class", "1",
                 "--scale", "0.3", "--colourways", "1"]) == 0
    samples = read_dataset(out)
    assert len(samples) == 3 * 2 * 6
    by_product: dict[str, set[str]] = {}
    for s in samples:
        by_product.setdefault(s.product_id, set()).add(s.split)
        assert s.image.exists() and s.mask is not None and s.mask.exists() and s.product is not None
        assert Image.open(s.mask).size == Image.open(s.image).size
    assert all(len(v) == 1 for v in by_product.values())  # no product in two splits
    assert {next(iter(v)) for v in by_product.values()} == {"train", "val", "test"}
    assert main(["dataset", "info", str(out)]) == 0


def test_dataset_synth_same_for_any_workers_and_per_product(tmp_path: Path, catalogue: Path) -> None:

    def rows(d: Path) -> dict[str, dict]:
        out = {}
        for line in (d / "manifest.jsonl").read_text().splitlines():
            r = json.loads(line)
            r["split"] = None  # splits depend on the product set; the images must not
            out[r["id"]] = r
        return out

    one, two = tmp_path / "w1", tmp_path / "w2"
    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.25"]
    assert main([*base, "--out", str(one)]) == 0
    assert main([*base, "--out", str(two), "--workers", "2"]) == 0
    r1, r2 = rows(one), rows(two)
    assert r1 == r2 and len(r1) == 3 * 6
    for sid, r in r1.items():
        assert (one / r["image"]).read_bytes() == (two / r["image"]).read_bytes(), sid
    # a product's images are drawn from its own seed: rendering it alone gives the same files
    solo = tmp_path / "solo"
    only = sorted({r["product_id"] for r in r1.values()})[0]
    shutil.copytree(catalogue, tmp_path / "cat1")
    for f in (tmp_path / "cat1").iterdir():
        if f.suffix == ".png" and f.stem != only:
            f.unlink()
    meta = tmp_path / "cat1" / "products.json"
    if meta.exists():  # the sheet must name only the images that are there (the import is all or nothing)
        entries = json.loads(meta.read_text())
        kept = ({k: v for k, v in entries.items() if k == only} if isinstance(entries, dict)
                else [e for e in entries if e.get("id") == only])
        meta.write_text(json.dumps(kept))
    assert main(["dataset", "synth", "--products", str(tmp_path / "cat1"), "--per-class", "1", "--scale", "0.25",
                 "--out", str(solo)]) == 0
    rs = rows(solo)
    assert rs and set(rs) <= set(r1)
    for sid, r in rs.items():
        assert (solo / r["image"]).read_bytes() == (one / r["image"]).read_bytes(), sid
    assert main([*base, "--out", str(tmp_path / "bad"), "--workers", "0"]) == 2


def test_dataset_synth_product_families(tmp_path: Path) -> None:
    """procedural:N, fitted:N, skinned:N and lookalike:N mix in one dataset; a bad count is refused before
    anything is written."""
    out = tmp_path / "mix"
    assert main(["dataset", "synth", "--products", "procedural:2", "--products", "fitted:2", "--products",
                 "skinned:2", "--products", "lookalike:1", "--per-class", "1", "--scale", "0.25", "--out",
                 str(out)]) == 0
    pids = {s.product_id for s in read_dataset(out)}
    assert pids == {"proc-00000", "proc-00001", "fit-00000", "fit-00001", "skin-proc-00000", "skin-fit-00000",
                    "look-00000"}
    assert {s.product_source for s in read_dataset(out)} == {"procedural", "fitted", "skinned", "lookalike"}
    some = tmp_path / "some"  # colourways for one source only
    assert main(["dataset", "synth", "--products", "procedural:1", "--products", "fitted:1", "--per-class", "1",
                 "--scale", "0.25", "--colourways", "1", "--colourways-of", "fitted", "--out", str(some)]) == 0
    ids = {s.id.split("-compositor-")[0] for s in read_dataset(some)}
    assert ids == {"proc-00000", "fit-00000", "fit-00000_c1"}
    for bad in ("fitted:0", "skinned:x", "lookalike:-1"):
        assert main(["dataset", "synth", "--products", bad, "--out", str(tmp_path / "bad")]) == 2
        assert not (tmp_path / "bad").exists()


def test_dataset_synth_mixes_renderer_families(tmp_path: Path, catalogue: Path) -> None:
    """--renderers writes one dataset whose manifest names each sample's family, with measured labels and the
    degradations recorded; products keep one split across families; an unknown family is a usage error."""
    out = tmp_path / "fam"
    assert main(["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.3",
                 "--renderers", "compositor,photoset,softfocus,perspective,poster", "--out", str(out)]) == 0
    samples = read_dataset(out)
    assert 3 * 5 * 6 - 5 <= len(samples) <= 3 * 5 * 6  # a sample still ambiguous after every redraw is dropped
    assert {s.renderer for s in samples} == {"compositor", "photoset", "softfocus", "perspective", "poster"}
    for s in samples:
        assert s.params["requested"] in ("available", "unsuitable", "space_mismatch", "size_mismatch",
                                         "indistinctiveness", "shape_hallucination")
        assert s.label == s.params["requested"] or not s.params["agrees"]  # relabelled only when measured so
        if s.label == "available":
            assert s.params["defects"] == [] and s.params["doubtful"] == []  # plainly acceptable
        assert "measured" in s.params and "degrade" in s.params and s.product_source == "real"
        assert s.generator.split("@")[0] == s.renderer
    splits: dict[str, set[str]] = {}
    for s in samples:
        splits.setdefault(s.product_id, set()).add(s.split)
    assert all(len(v) == 1 for v in splits.values())
    assert "Labeller agreement" in (out / "README.md").read_text() and "dropped" in (out / "README.md").read_text()
    assert main(["dataset", "synth", "--products", str(catalogue), "--renderers", "compositor,nope",
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--aspects", "nope"], "unknown aspect ratio 'nope'"),                  # a ValueError after the folder began
    (["--aspects", " , "], "--aspects names no aspect ratio"),               # fell back to every aspect
    (["--test-products", "nope"], "split given for product(s) not in the catalogue: 'nope'"),  # ran, ignored
    (["--colourways", "1", "--colourways-of", "nope"], "unknown product source(s) for colourways: 'nope'"),
])
def test_dataset_synth_refuses_bad_options_before_writing(tmp_path: Path, catalogue: Path, args: list[str],
                                                          needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(tmp_path / "bad"), *args]) == 2
    assert needle in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "bad").exists()


def _files(d: Path) -> dict[str, bytes]:
    """Every file of a dataset folder by relative path, to compare two runs byte for byte."""
    return {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}


def test_dataset_synth_resumes_a_torn_journal(tmp_path: Path, catalogue: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A journal whose last line was cut by a kill: the line is dropped and its sample redone, the others are not
    rendered again, and the finished folder is byte for byte an uninterrupted run's; other options are refused."""
    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.25"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main([*base, "--out", str(full)]) == 0
    assert not (full / "manifest.partial.jsonl").exists() and (full / "synth.json").exists()
    lines = (full / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3 * 6
    shutil.copytree(full, part)  # the same run killed after five samples and half a line
    (part / "manifest.jsonl").unlink()
    (part / "manifest.partial.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2])
    for line in lines[5:]:
        (part / json.loads(line)["image"]).unlink()
    kept = {json.loads(line)["image"]: (part / json.loads(line)["image"]).stat().st_mtime_ns for line in lines[:5]}

    capsys.readouterr()
    assert main([*base, "--out", str(part), "--seed", "1"]) == 2  # not the run the journal belongs to
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed" in err and "other options" in err
    assert (part / "manifest.partial.jsonl").read_text().endswith(lines[5][: len(lines[5]) // 2])  # untouched

    assert main([*base, "--out", str(part)]) == 0
    assert not (part / "manifest.partial.jsonl").exists()
    assert _files(part) == _files(full)
    assert all((part / rel).stat().st_mtime_ns == t for rel, t in kept.items())  # recorded samples not redrawn
    assert main([*base, "--out", str(part)]) == 0  # a finished run: nothing to render, the same folder
    assert _files(part) == _files(full)


@pytest.mark.slow
def test_dataset_synth_killed_and_resumed(tmp_path: Path, catalogue: Path) -> None:
    """SIGKILL a real `dataset synth --workers 2` run (its process group, as a session's end does) once some
    samples are journalled; the journal holds whole lines of samples whose files exist (bar a last line the kill may
    have torn), and re-running the command finishes the same dataset as an uninterrupted run, byte for byte."""
    import os
    import signal
    import subprocess
    import sys
    import time

    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "1", "--scale", "0.25"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main([*base, "--out", str(full)]) == 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "adcreative", *base, "--out", str(part), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = part / "manifest.partial.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and journal.read_text().count("\n") >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (part / "manifest.jsonl").exists()
    # a kill can land inside a write: the last line may be torn (the resume drops it); every line before it is whole
    data = journal.read_bytes()
    recorded = [json.loads(line) for line in data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()]
    assert 4 <= len(recorded) < 3 * 6 + 3
    for r in recorded:
        if "id" in r:
            assert (part / r["image"]).read_bytes() == (full / r["image"]).read_bytes()
    assert main([*base, "--out", str(part), "--workers", "2"]) == 0
    assert not journal.exists()
    got, want = _files(part), _files(full)
    assert sorted(got) == sorted(want)  # no stray temporary file of a write the kill cut short
    assert [k for k in want if got[k] != want[k]] == []


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the workers")
def test_dataset_synth_workers_die_with_their_parent(tmp_path: Path, catalogue: Path) -> None:
    """SIGTERM to the parent of a `--workers 2` run alone (not its process group): its workers die with it instead
    of rendering the queued jobs for minutes with nobody to record them."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "adcreative", "dataset", "synth", "--products", str(catalogue),
                             "--per-class", "2", "--scale", "0.25", "--out", str(tmp_path / "d"), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 2, "the run ended before its workers could be seen"
        time.sleep(1.0)  # let the workers reach their initializer
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait()
        deadline = time.monotonic() + 15
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = [w for w in workers if Path(f"/proc/{w}").exists()
                     and Path(f"/proc/{w}/stat").read_text().split(") ")[-1][:1] != "Z"]
            time.sleep(0.1)
        assert not alive, f"workers {alive} outlived their parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_bad_source_samples_can_carry_the_catalogue_cutout(tmp_path: Path, catalogue: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``--bad-source-cutout catalogue`` renders the same images and labels, but an image made from a damaged source
    gives the auditor the catalogue cutout instead of the damaged one (sixteenth round of docs/inspect.md)."""
    base = ["dataset", "synth", "--products", str(catalogue), "--per-class", "2", "--scale", "0.25", "--seed", "3"]
    assert main([*base, "--out", str(tmp_path / "own")]) == 0
    assert main([*base, "--out", str(tmp_path / "cat"), "--bad-source-cutout", "catalogue"]) == 0
    own = {s.id: s for s in read_dataset(tmp_path / "own")}
    cat = {s.id: s for s in read_dataset(tmp_path / "cat")}
    assert own.keys() == cat.keys() and all(own[i].label == cat[i].label for i in own)
    bad = [i for i, s in own.items() if s.product is not None and s.product.stem == i]  # its own damaged cutout
    assert bad and all(own[i].label == "unsuitable" for i in bad)
    for i, s in cat.items():
        assert s.image.read_bytes() == own[i].image.read_bytes()
        assert s.product is not None and s.product.stem != i
        assert s.params.get("bad_source") == ("catalogue" if i in bad else None)
        if i in bad:  # the product's own catalogue cutout, as its other samples carry
            assert s.product == next(o.product for o in cat.values() if o.product_id == s.product_id
                                     and o.id not in bad)
    assert "the catalogue cutout" in (tmp_path / "cat" / "README.md").read_text()
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x"), "--bad-source-cutout", "clean"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bad-source-cutout" in err[0] and not (tmp_path / "x").exists()


def test_dataset_synth_studio_copies(tmp_path: Path, catalogue: Path) -> None:
    """--studio-copies adds matted studio-photo copies of each real cutout: samples '<id>_s<k>-…' that count as
    their source product (its split, real), the same outline (the matte recovers it) but not the same pixels; the
    count is one of the run's options, so a rerun into the folder with another count is refused."""
    import numpy as np

    out = tmp_path / "st"
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(out), "--per-class", "1",
                 "--scale", "0.3", "--studio-copies", "1"]) == 0
    samples = read_dataset(out)
    split_of: dict[str, set[str]] = {}
    cutout: dict[str, Path] = {}
    for s in samples:
        made_of = s.id.split("-compositor-")[0]  # the product the image was made of (a copy, or the product)
        split_of.setdefault(made_of, set()).add(s.split)
        assert s.product_source == "real" and s.product_id == made_of.removesuffix("_s1")
        if s.label == "available" and s.product is not None:
            cutout[made_of] = s.product
    copies = sorted(p for p in split_of if p.endswith("_s1"))
    assert len(copies) >= 2, sorted(split_of)  # the importer's matting recovers most sample products
    for c in copies:
        src = c.removesuffix("_s1")
        assert split_of[c] == split_of[src] and len(split_of[c]) == 1
        a = np.asarray(Image.open(cutout[src]).getchannel("A")) > 127
        b = Image.open(cutout[c]).getchannel("A")
        ys, xs = np.nonzero(a)
        a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        box = b.getbbox()
        assert box is not None
        m = np.asarray(b.crop(box).resize((a.shape[1], a.shape[0]))) > 127
        assert (a & m).sum() / (a | m).sum() > 0.85  # the same outline, matted back out of a photo
        assert Image.open(cutout[c]).tobytes() != Image.open(cutout[src]).tobytes()
    assert main(["dataset", "synth", "--products", str(catalogue), "--out", str(out), "--per-class", "1",
                 "--scale", "0.3", "--studio-copies", "2"]) == 2
