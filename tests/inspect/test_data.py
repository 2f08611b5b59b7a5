"""Cached encodings equal the live path; no product in two splits; consuming split equals copying split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adcreative.core.errors import InputError
from adcreative.inspect.datasets.formats import read_dataset
from tests.inspect.helpers import TINY, sample_items


def test_cached_encodings_match_the_live_path(dataset: Path) -> None:
    from adcreative.inspect.data import encode_items, encoding_config
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY).eval()
    items = sample_items(dataset, 5)
    enc = encode_items(items, len(items), encoding_config(model.config), progress=False)
    assert enc.aux.shape == (5, 4, 8, 8) and enc.local_aux.shape == (5, 4, 8, 8)  # pooled onto the 8×8 grid
    with torch.no_grad():
        live = model.logits(model.encode(model.prepare(items)))
        cached = model.logits(enc.batch(torch.arange(5)))
    np.testing.assert_allclose(cached.numpy(), live.numpy(), atol=0.05)  # float16 cache


def test_no_product_in_two_splits(dataset: Path, encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.data import check_splits

    splits: dict[str, set[str]] = {}
    for pid, sp in zip(encoded.product_ids, encoded.splits, strict=True):
        splits.setdefault(pid, set()).add(sp)
    assert all(len(v) == 1 for v in splits.values())
    assert {"train", "val", "test"} <= {s for v in splits.values() for s in v}
    samples = read_dataset(dataset)
    samples[0].split = "test" if samples[0].split != "test" else "train"
    with pytest.raises(InputError, match="splits must be by product"):
        check_splits(samples)


def test_consuming_split_equals_copying_split(encoded) -> None:  # type: ignore[no-untyped-def]
    """The CLIs cut the set with ``consume=True`` to save memory: the splits must be the copies' equals."""
    from adcreative.inspect.data import TENSOR_FIELDS, concat
    from adcreative.inspect.train import split_sets

    copy = concat([encoded])  # a private copy: the fixture is shared
    want = split_sets(encoded)
    got = split_sets(copy, consume=True)
    assert len(copy) == 0 and copy.ids == []
    for f in TENSOR_FIELDS:  # emptied, not sliced: a view such as t[:0] would keep the whole storage alive
        assert getattr(copy, f).untyped_storage().nbytes() == 0, f
    for w, g in zip(want, got, strict=True):
        assert w is not None and g is not None and w.ids == g.ids and w.splits == g.splits
        assert w.sources == g.sources and w.renderers == g.renderers
        for f in TENSOR_FIELDS:
            assert torch.equal(getattr(w, f), getattr(g, f)), f


def test_calibrate_folder_reads_the_manifest_once(dataset: Path, encoded, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """calibrate_folder reads the dataset folder once and hands its samples to encode_splits (it read the manifest
    twice); the splits come from the whole-set encodings ``encoded`` cached, and the calibrated copy is saved."""
    import json

    from adcreative.inspect import data as data_mod
    from adcreative.inspect.datasets import formats
    from adcreative.inspect.evaluate import calibrate_folder
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    RFNet(**TINY).save_pretrained(tmp_path / "m")
    calls: list[Path] = []

    def counting(directory: Path, **kw: object) -> object:
        calls.append(Path(directory))
        return read_dataset(directory, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(formats, "read_dataset", counting)
    monkeypatch.setattr(data_mod, "read_dataset", counting)
    cal = calibrate_folder(tmp_path / "m", dataset, tmp_path / "cal")
    assert calls == [dataset]
    assert cal["temperature"] > 0
    assert json.loads((tmp_path / "cal" / "config.json").read_text())["_extra"]["calibration"]["data"] == str(dataset)


def test_each_row_keeps_its_products_source_through_the_cache(dataset: Path, tmp_path: Path) -> None:
    """The decision holds real products to their own accept floor, so every encoded row knows where its product
    comes from — encoded live, loaded from the cache (which sets it from the samples, so a cache saved before the
    field existed has it too), cut into splits and concatenated."""
    import dataclasses
    import shutil

    from adcreative.inspect.data import concat, encode_samples, encoding_config
    from adcreative.inspect.datasets.formats import read_dataset, write_manifest
    from adcreative.inspect.model import RFNet
    from tests.inspect.helpers import TINY

    root = tmp_path / "set"
    shutil.copytree(dataset, root, ignore=shutil.ignore_patterns(".cache"))
    kinds = ("real", "sample", "procedural", "")
    samples = [dataclasses.replace(s, image=root / s.image.relative_to(dataset),
                                   mask=root / s.mask.relative_to(dataset) if s.mask else None,
                                   product=root / s.product.relative_to(dataset) if s.product else None,
                                   product_source=kinds[sorted({x.product_id for x in read_dataset(dataset)}).index(
                                       s.product_id) % len(kinds)])
               for s in read_dataset(dataset)]
    write_manifest(root, samples)
    samples = read_dataset(root)
    want = [s.product_source for s in samples]
    assert set(want) == set(kinds)
    cfg = encoding_config(RFNet(**TINY).config)
    live = encode_samples(samples, cfg, cache_dir=root / ".cache", progress=False)
    assert live.sources == want
    cached = encode_samples(samples, cfg, cache_dir=root / ".cache", progress=False)
    assert cached.sources == want
    # a damaged cache file is a miss, encoded again and replaced (it was a SafetensorError traceback)
    (cache_file,) = (root / ".cache").glob("rfnet-enc-*.safetensors")
    for damage in (b"garbage", cache_file.read_bytes()[:100]):
        cache_file.write_bytes(damage)
        again = encode_samples(samples, cfg, cache_dir=root / ".cache", progress=False)
        assert again.sources == want and torch.equal(again.labels, live.labels)
        assert cache_file.stat().st_size > 1000  # written back whole
    train, val = live.split("train"), live.split("val")
    assert train.sources == [s.product_source for s in samples if s.split == "train"]
    assert concat([train, val]).sources == train.sources + val.sources


def test_an_interrupted_encoding_resumes_from_its_chunks_bit_for_bit(dataset: Path, tmp_path: Path) -> None:
    """A cached encoding is saved chunk by chunk; one stopped by a corrupt image keeps its whole chunks, writes no
    cache file, and once the image is mended resumes from them (the images of a saved chunk are not read again; a
    damaged chunk is encoded again) to a set equal bit for bit to one uninterrupted run, tables included."""
    import dataclasses
    import os
    import shutil

    from adcreative.core.errors import InputError
    from adcreative.inspect.data import TABLE_FIELDS, TENSOR_FIELDS, encode_samples, encoding_config
    from adcreative.inspect.datasets.formats import read_dataset
    from adcreative.inspect.model import RFNet

    root = tmp_path / "set"
    shutil.copytree(dataset, root, ignore=shutil.ignore_patterns(".cache"))
    samples = [dataclasses.replace(s, image=root / s.image.relative_to(dataset),
                                   mask=root / s.mask.relative_to(dataset) if s.mask else None,
                                   product=root / s.product.relative_to(dataset) if s.product else None)
               for s in read_dataset(dataset)[:28]]
    assert len({s.product_id for s in samples[8:16]} - {s.product_id for s in samples[:8]}) >= 1
    cfg = encoding_config(RFNet(**TINY).config)
    kw = {"batch_size": 4, "progress": False}
    whole = encode_samples(samples, cfg, cache_dir=None, **kw)
    cache = root / ".cache"

    def spoil(path: Path, data: bytes) -> None:  # new bytes, same size and time: the cache key does not change
        st = path.stat()
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    broken = samples[18].image  # in the third chunk of 8
    good = broken.read_bytes()
    spoil(broken, b"\0" * len(good))
    with pytest.raises(InputError) as err:
        encode_samples(samples, cfg, cache_dir=cache, chunk_rows=8, **kw)
    assert broken.name in str(err.value)
    assert [p.name for p in cache.iterdir() if ".chunk-" not in p.name] == []  # no cache file, whole or half
    assert len(list(cache.glob("rfnet-enc-*.chunk-*.safetensors"))) == 2
    spoil(broken, good)
    for s in samples[:8]:  # the first saved chunk's images: read again, they would fail
        spoil(s.image, b"\0" * s.image.stat().st_size)
    (second,) = cache.glob("rfnet-enc-*.chunk-0001.safetensors")
    second.write_bytes(second.read_bytes()[:1000])  # a damaged chunk is encoded again, on the tables it found
    resumed = encode_samples(samples, cfg, cache_dir=cache, chunk_rows=8, **kw)
    assert not list(cache.glob("rfnet-enc-*.chunk-*.safetensors"))  # removed once the set is written
    again = encode_samples(samples, cfg, cache_dir=cache, chunk_rows=8, **kw)  # read from the cache file
    for got in (resumed, again):
        for f in (*TENSOR_FIELDS, *TABLE_FIELDS):
            assert torch.equal(getattr(got, f), getattr(whole, f)), f
        assert (got.ids, got.product_ids, got.splits, got.sources) == (
            whole.ids, whole.product_ids, whole.splits, whole.sources)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        encode_samples(samples, cfg, cache_dir=tmp_path / "other", chunk_rows=6, **kw)
