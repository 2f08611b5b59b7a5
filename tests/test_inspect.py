"""RFNet: shapes, probabilities, gradients, save/load, training, splits, bad inputs, export, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from adcreative.core.errors import InputError
from adcreative.core.types import CLASSES
from adcreative.generate.dataset import Sample, read_dataset, write_manifest

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "products"
TINY = {"image_size": 64, "aux_size": 32, "dim": 32, "heads": 2, "layers": 1, "product_grid": 2,
        "max_text_tokens": 8, "dropout": 0.0}
TITLES = {"0": ("game console with two controllers", "electronics"), "1": ("matte red lipstick", "beauty"),
          "2": ("whitening toothpaste", "personal care"), "4": ("hard-shell luggage case", "luggage"),
          "5": ("electric pressure cooker", "kitchen"), "6": ("digital camera", "electronics"),
          "8": ("thin laptop", "electronics")}
SPLIT = {"0": "train", "1": "train", "2": "train", "4": "train", "5": "val", "6": "test", "8": "test"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _cutouts() -> dict[str, Image.Image]:
    """The real JD cutouts when present; otherwise RGBA shapes drawn here (so the core tests always run)."""
    out = {}
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*.png")):
            im = Image.open(p).convert("RGBA")
            im.thumbnail((160, 160))
            out[p.stem] = im
        return out
    rng = np.random.default_rng(0)
    for pid in TITLES:
        im = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        col = (*tuple(int(v) for v in rng.integers(30, 220, 3)), 255)
        d.rounded_rectangle((20, 10 + int(pid) * 3, 100, 110), radius=12, fill=col)
        d.ellipse((35, 30, 85, 70), fill=(*tuple(255 - c for c in col[:3]), 255))
        out[pid] = im
    return out


def _compose(cut: Image.Image, label: str, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    """A small ad-like image of ``cut`` with the defect ``label`` drawn in, and its placement mask."""
    W, H = [(96, 96), (96, 120), (128, 72)][int(rng.integers(3))]
    prod = cut.crop(cut.getchannel("A").getbbox())
    mean = np.asarray(prod.convert("RGB"))[np.asarray(prod.getchannel("A")) > 127].mean(0)
    if label == "indistinctiveness":
        c1 = c2 = tuple(int(np.clip(v + rng.normal(0, 6), 0, 255)) for v in mean)
    else:
        c1 = tuple(int(v) for v in 255 - mean * 0.5 - rng.integers(0, 40, 3))
        c2 = tuple(int(v * 0.6) for v in c1)
    img = Image.new("RGB", (W, H), c1)
    floor = int(H * 0.78)
    ImageDraw.Draw(img).rectangle((0, floor, W, H), fill=c2)
    s = rng.uniform(0.1, 0.16) if label == "size_mismatch" else rng.uniform(0.45, 0.6)
    h = max(8, int(H * s))
    w = max(8, int(prod.width * h / prod.height))
    p = prod.resize((w, h))
    x = int((W - w) / 2 + rng.integers(-W // 10, W // 10 + 1))
    y = floor + 2 - h
    if label == "space_mismatch":
        y -= int(H * rng.uniform(0.15, 0.25))
    if label == "unsuitable":
        x = W - int(w * rng.uniform(0.45, 0.6)) if rng.random() < 0.5 else -int(w * rng.uniform(0.4, 0.55))
    if label == "shape_hallucination":
        d = ImageDraw.Draw(img)
        col = tuple(int(v) for v in mean)
        d.rectangle((x + w // 4, y + h - 2, x + 3 * w // 4, min(H, y + h + H // 6)), fill=col)
        d.polygon([(x + w - 2, y + h // 3), (x + w + W // 6, y + h // 2), (x + w - 2, y + 2 * h // 3)], fill=col)
    img.paste(p, (x, y), p)
    mask = Image.new("L", (W, H), 0)
    mask.paste(p.getchannel("A"), (x, y))
    return img, mask


def make_dataset(root: Path, per_class: int = 2, seed: int = 0) -> Path:
    """A dataset folder in the documented format (docs/dataset.md) from the real cutouts."""
    rng = np.random.default_rng(seed)
    samples = []
    for pid, cut in _cutouts().items():
        prod_path = root / "products" / f"{pid}.png"
        prod_path.parent.mkdir(parents=True, exist_ok=True)
        cut.save(prod_path)
        title, cat = TITLES.get(pid, (f"product {pid}", "misc"))
        for label in CLASSES:
            for j in range(per_class):
                img, mask = _compose(cut, label, rng)
                sid = f"{pid}-{label}-{j}"
                (root / "images").mkdir(exist_ok=True)
                (root / "masks").mkdir(exist_ok=True)
                img.save(root / "images" / f"{sid}.png")
                mask.save(root / "masks" / f"{sid}.png")
                samples.append(Sample(id=sid, image=root / "images" / f"{sid}.png", mask=root / "masks" / f"{sid}.png",
                                      product=prod_path, product_id=pid, title=title, category=cat, label=label,
                                      split=SPLIT.get(pid, "train"), severity=0.0 if label == "available" else 0.7))
    write_manifest(root, samples)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("inspect-data"), per_class=2)


@pytest.fixture(scope="module")
def encoded(dataset: Path):  # type: ignore[no-untyped-def]
    from adcreative.inspect.data import encode_samples, encoding_config
    from adcreative.inspect.model import RFNet

    torch.set_num_threads(1)
    cfg = encoding_config(RFNet(**TINY).config)
    return encode_samples(read_dataset(dataset), cfg, cache_dir=dataset / ".cache", progress=False)


def _items(dataset: Path, n: int = 3):  # type: ignore[no-untyped-def]
    from adcreative.inspect.data import load_sample

    return [load_sample(s) for s in read_dataset(dataset)[:n]]


def test_output_shapes_and_probabilities(dataset: Path) -> None:
    from adcreative.inspect import create_inspector

    torch.manual_seed(0)
    for name in ("rfnet", "image-only"):
        model = create_inspector(name, **TINY).eval()
        items = _items(dataset)
        inputs = model.prepare(items)
        assert inputs["image"].shape == (3, 3, 64, 64) and inputs["aux"].shape == (3, 4, 32, 32)
        assert inputs["local"].shape == (3, 3, 64, 64) and inputs["local_aux"].shape == (3, 4, 32, 32)
        feats = model.forward_features(model.encode(inputs))
        assert feats.shape == (3, 32)
        logits = model.forward_head(feats)
        assert logits.shape == (3, len(CLASSES))
        probs = model.predict_proba(items)
        assert probs.shape == (3, 6)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        assert (probs >= 0).all()


def test_gradients_reach_every_branch(encoded) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY, finetune_head=True).train()
    idx = torch.arange(8)
    loss = torch.nn.functional.cross_entropy(model.forward_head(model.forward_features(encoded.batch(idx))),
                                             encoded.labels[idx])
    loss.backward()
    branches = {"img_proj", "local", "global_aux", "local_pos", "prod_proj", "text_proj", "cross", "fusion", "head",
                "head_conv", "pos", "prod_pos", "text_pos", "cls", "type_emb"}
    seen = set()
    for name, p in model.named_parameters():
        if name.startswith("backbone."):
            assert not p.requires_grad, f"frozen trunk parameter {name} is trainable"
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
        seen.add(name.split(".")[0])
    assert branches <= seen
    # the mask and structure channels of the local stage get gradients too (40 trunk channels come first)
    assert model.local[0].weight.grad[:, 40:].abs().sum(dim=(0, 2, 3)).min() > 0


def test_save_load_identical_and_small(tmp_path: Path, dataset: Path) -> None:
    from adcreative.inspect import load_inspector
    from adcreative.inspect.model import RFNet

    torch.manual_seed(1)
    model = RFNet(**TINY, use_structure=False).eval()
    items = _items(dataset, 4)
    before = model.predict_proba(items)
    model.save_pretrained(tmp_path / "m")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("backbone.") for k in keys), "the packaged trunk must not be saved"
    loaded = load_inspector(tmp_path / "m")
    assert loaded.config == model.config and not loaded.use_structure
    np.testing.assert_array_equal(before, loaded.predict_proba(items))
    # a checkpoint from another ablation is refused with a clear message
    with pytest.raises(ValueError, match=r"missing|unexpected|does not fit"):
        RFNet(**TINY).load_state_arrays(loaded.state_arrays())


def test_tiny_training_lowers_loss_and_evaluates(encoded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from adcreative.inspect.evaluate import evaluate_model
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.train import TrainConfig, split_sets, train_model

    torch.manual_seed(0)
    tr, va, te = split_sets(encoded)
    model = RFNet(**TINY)
    res = train_model(model, tr, va, TrainConfig(epochs=12, batch_size=16, lr=3e-3, patience=100, seed=0),
                      progress=False)
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] * 0.8, losses
    assert te is not None
    m = evaluate_model(model, te, out=tmp_path / "eval")
    assert set(m["per_class"]) == set(CLASSES) and 0 <= m["macro_f1"] <= 1 and 0 <= m["ap_available"] <= 1
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 1000
    assert Image.open(tmp_path / "eval" / "confusion.png").size[0] > 100
    # seeded: the same run gives the same weights
    model2 = RFNet(**TINY)
    torch.manual_seed(0)
    model2 = RFNet(**TINY)
    res2 = train_model(model2, tr, va, TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0), progress=False)
    torch.manual_seed(0)
    model3 = RFNet(**TINY)
    res3 = train_model(model3, tr, va, TrainConfig(epochs=2, batch_size=16, lr=3e-3, seed=0), progress=False)
    assert res2.history == res3.history


def test_cached_encodings_match_the_live_path(dataset: Path) -> None:
    from adcreative.inspect.data import encode_items, encoding_config
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY).eval()
    items = _items(dataset, 5)
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


def test_bad_inputs_rejected(dataset: Path, tmp_path: Path) -> None:
    from adcreative.inspect.data import load_sample
    from adcreative.inspect.model import RFNet
    from adcreative.inspect.preprocess import InspectItem

    model = RFNet(**TINY)
    s = read_dataset(dataset)[0]
    item = load_sample(s)
    # wrong sizes
    with pytest.raises(InputError, match="mask is"):
        model.prepare([InspectItem(item.image, item.title, item.mask.resize((40, 40)), item.product)])
    with pytest.raises(InputError, match="minimum side"):
        model.prepare([InspectItem(item.image.resize((20, 20)), item.title, None, item.product)])
    with pytest.raises(InputError, match="image has shape"):
        model.encode({**model.prepare([item]), "image": torch.zeros(1, 3, 32, 32)})
    # missing modality
    with pytest.raises(InputError, match="missing modality"):
        model.prepare([InspectItem(item.image, None, item.mask, item.product)])
    inputs = model.prepare([item])
    del inputs["product"]
    with pytest.raises(InputError, match="missing modality 'product'"):
        model(inputs)
    with pytest.raises(InputError, match="must be RGBA"):
        model.prepare([InspectItem(item.image, item.title, item.mask, item.image)])
    with pytest.raises(InputError, match="empty batch"):
        model.prepare([])
    # corrupt files
    bad = tmp_path / "trunc.png"
    bad.write_bytes(s.image.read_bytes()[:200])
    with pytest.raises(InputError, match=r"trunc\.png"):
        load_sample(Sample(**{**s.__dict__, "image": bad}))
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        load_sample(Sample(**{**s.__dict__, "mask": txt}))
    with pytest.raises(InputError, match="does not exist"):
        load_sample(Sample(**{**s.__dict__, "product": tmp_path / "missing.png"}))
    # the image-only baseline does not need a title, and a missing mask falls back to saliency
    io_model = RFNet(**{**TINY, "use_product": False, "use_mask": False, "use_structure": False, "use_text": False})
    p = io_model.predict_proba([InspectItem(item.image, None, None, None)])
    assert p.shape == (1, 6)


def test_saliency_stands_in_for_a_missing_mask(dataset: Path) -> None:
    from adcreative.inspect.data import load_sample
    from adcreative.inspect.preprocess import preprocess_item, saliency_map

    item = load_sample(read_dataset(dataset)[0])
    sal = saliency_map(item.image)
    assert sal.shape == item.image.size[::-1] and sal.min() >= 0 and sal.max() <= 1
    item.mask = None
    arr = preprocess_item(item, image_size=64, aux_size=32)
    assert arr["aux"].shape == (4, 32, 32) and arr["aux"][0].max() > 0


def test_colour_affinity_lights_up_product_colours_only() -> None:
    """The affinity map is high where the image has the cutout's colours and low elsewhere: a shape in the
    product's colours beside it (hallucination) shows, a contrasting background does not."""
    import numpy as np
    from PIL import Image

    from adcreative.inspect.preprocess import colour_affinity, product_palette

    cut = np.zeros((60, 40, 4), np.uint8)
    cut[..., :3] = (200, 30, 30)  # a red product with a white label
    cut[20:40, 5:35, :3] = 250
    cut[..., 3] = 255
    pal = product_palette(Image.fromarray(cut, "RGBA"))
    assert len(pal) == 2 and np.allclose(sorted(pal[:, 1]), [30 / 255, 250 / 255], atol=0.02)
    assert np.array_equal(pal, product_palette(Image.fromarray(cut, "RGBA")))  # deterministic
    scene = np.zeros((50, 80, 3), np.uint8)
    scene[:] = (20, 90, 200)  # a blue background
    scene[10:40, 10:30] = (200, 30, 30)  # the product
    scene[10:40, 30:45] = (190, 35, 32)  # a near-identical slab continuing it
    aff = colour_affinity(scene, pal)
    assert aff.shape == (50, 80) and aff.min() >= 0 and aff.max() <= 1
    assert aff[20, 20] > 0.99 and aff[20, 38] > 0.8 and aff[5, 70] < 0.01


def test_onnx_export_matches_torch(tmp_path: Path, dataset: Path) -> None:
    pytest.importorskip("onnxruntime")
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import RFNet

    torch.manual_seed(0)
    model = RFNet(**TINY).eval()
    export_onnx(model, tmp_path / "m")  # verifies torch vs onnxruntime itself
    items = _items(dataset, 3)
    np.testing.assert_allclose(OnnxInspector(tmp_path / "m").predict_proba(items), model.predict_proba(items),
                               atol=1e-4)


def test_metrics_are_correct() -> None:
    from adcreative.inspect.evaluate import compute_metrics

    y = np.array([0, 0, 1, 2, 3, 4, 5, 5])
    probs = np.eye(6)[[0, 1, 1, 2, 3, 4, 5, 0]] * 0.9 + 0.1 / 6
    m = compute_metrics(y, probs)
    assert m["per_class"]["available"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["available"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["space_mismatch"]["f1"] == pytest.approx(1.0)
    assert m["confusion"][0][1] == 1 and m["confusion"][5][0] == 1
    perfect = compute_metrics(y, np.eye(6)[y])
    assert perfect["macro_f1"] == 1.0 and perfect["ap_available"] == 1.0


def test_consuming_split_equals_copying_split(encoded) -> None:  # type: ignore[no-untyped-def]
    """The CLIs cut the set with ``consume=True`` to save memory: the splits must be the copies' equals."""
    from adcreative.inspect.data import TENSOR_FIELDS, concat
    from adcreative.inspect.train import split_sets

    copy = concat([encoded])  # a private copy: the fixture is shared
    want = split_sets(encoded)
    got = split_sets(copy, consume=True)
    assert len(copy) == 0 and copy.ids == []
    for w, g in zip(want, got, strict=True):
        assert w is not None and g is not None and w.ids == g.ids and w.splits == g.splits
        for f in TENSOR_FIELDS:
            assert torch.equal(getattr(w, f), getattr(g, f)), f
