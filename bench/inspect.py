"""Inspection throughput on CPU: images per second at batch 1 and 32, RFNet and the image-only baseline
side by side, for torch (eager) and the ONNX export (onnxruntime); then ``inspect run``'s store path per
creative: read from a store, item built, scored — with the placement mask stored at generation (now), rebuilt
from the layout (legacy rows) and re-rendered by the compositor (what ``inspect run`` did before masks were
stored), side by side.

    PYTHONPATH=src python bench/inspect.py [--model DIR] [--threads 1] [--reps 3]   (median of the repeats)
    PYTHONPATH=src python bench/inspect.py --only store                             (the store path alone)
    PYTHONPATH=src python bench/inspect.py --only placement       (images without a mask: locate vs saliency)
    PYTHONPATH=src python bench/inspect.py --only cues            (the measured cues, each cue set side by side)
    PYTHONPATH=src python bench/inspect.py --only encode  (a dataset's cached encoding: one piece vs chunks)

"model" columns time the network on prepared tensors; "end-to-end" adds preprocessing from PIL images
(letterbox, edges, masks, cached title embeddings) and the three-way decision (``judge``: calibrated
probabilities, out-of-distribution score, band). Inputs are compositor creatives of the sample catalogue.
Throughput does not depend on the weights, so the image-only column uses the default model's config
with its auxiliary inputs removed (trained weights are loaded when --image-only DIR is given).
"""

from __future__ import annotations

import os
import sys

# this file is named like the stdlib module ``inspect``: keep its folder off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def creatives(n: int) -> list[Any]:
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.generate.compositor.generator import Compositor
    from adcreative.inspect.preprocess import InspectItem

    products = sample_catalogue()
    gen = Compositor(scale=1.0)  # what generation delivers (512 px long side)
    out = []
    for i in range(n):
        p = products[i % len(products)]
        gi = gen(p, seed=i, aspect=["1:1", "4:5", "16:9", "9:16"][i % 4])[0]
        out.append(InspectItem(gi.image, p.title, gi.mask, p.image, id=str(i)))
    return out


def rate(fn: Any, n_images: int, reps: int) -> float:
    """Images per second of the median repeat (one slow repeat, e.g. a page-in, does not drag the figure)."""
    fn()  # warm-up (allocations, title cache)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / statistics.median(times)


def seconds(fn: Any, reps: int) -> float:
    """Seconds of the median repeat, after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rerendered_item(store: Any, creative: Any, product: Any) -> Any:
    """``creative_item`` as ``inspect run`` built it before masks were stored (inspect.data.regenerated_mask at
    b0a1a10): re-run the compositor from the manifest, check the bytes, take its mask."""
    from adcreative.core.imageio import png_bytes, sha256
    from adcreative.generate.base import create_generator
    from adcreative.inspect.preprocess import InspectItem

    gen = create_generator(creative.generator, **dict(creative.params.get("generator_config", {})))
    gi = gen(product, seed=creative.seed, aspect=creative.aspect, n=1, defect=creative.params.get("defect"),
             severity=float(creative.params.get("severity", 0.5)))[0]
    mask = gi.mask if sha256(png_bytes(gi.image)) == creative.image_sha else None
    image = store.creative_image(creative).convert("RGB")
    return InspectItem(image=image, title=product.title, mask=mask, product=product.image, product_id=product.id,
                       id=creative.id)


def store_path(model: Any, n: int, reps: int) -> None:
    """Per-creative time of ``inspect run`` on a store of ``n`` compositor creatives (512 px), batch 32."""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.store import Store
    from adcreative.generate.compositor.generator import Compositor
    from adcreative.generate.provenance import generate_and_store, layout_mask
    from adcreative.inspect.data import creative_item
    from adcreative.inspect.preprocess import InspectItem

    store = Store(home=tempfile.mkdtemp(prefix="bench-inspect-store-"))
    products = sample_catalogue()
    store.add_products(products)
    gen = Compositor(scale=1.0)
    aspects = ["1:1", "4:5", "16:9", "9:16"]
    for i in range(n):
        generate_and_store(store, gen, products[i % len(products)], n=1, aspects=[aspects[i % 4]], seed=i)
    cs = store.creatives()
    prods = {p.id: store.get_product(p.id) for p in products}

    def stored() -> list[Any]:
        return [creative_item(store, c, prods[c.product_id]) for c in store.creatives()]

    def layout() -> list[Any]:
        out = []
        for c in store.creatives():
            p = prods[c.product_id]
            out.append(InspectItem(store.creative_image(c).convert("RGB"), p.title, layout_mask(c, p), p.image,
                                   product_id=p.id, id=c.id))
        return out

    def rerendered() -> list[Any]:
        return [rerendered_item(store, c, prods[c.product_id]) for c in store.creatives()]

    rows = []
    for name, build in (("stored mask (now)", stored), ("layout rebuild (legacy rows)", layout),
                        ("re-render (before)", rerendered)):
        items = build()
        assert all(it.mask is not None for it in items), name
        t_build = seconds(build, reps) / len(cs)
        with torch.no_grad():
            t_score = seconds(lambda x=items: model.predict_proba(x, batch_size=32), reps) / len(cs)
        rows.append((name, t_build, t_score))
    exact = [np.asarray(a.mask) for a in stored()]
    same = all(np.array_equal(a, np.asarray(b.mask)) for a, b in zip(exact, rerendered(), strict=True))
    print(f"inspect run, store path: {len(cs)} creatives read from a store, item built, scored at batch 32 "
          f"(torch, ms per creative; stored mask == re-rendered mask: {same})")
    head = f"{'placement mask':<30}{'build item':>12}{'score':>9}{'total':>9}"
    print(head)
    print("-" * len(head))
    for name, b, sc in rows:
        print(f"{name:<30}{1000 * b:>12.1f}{1000 * sc:>9.1f}{1000 * (b + sc):>9.1f}")
    before, now = rows[2], rows[0]
    print(f"item build, re-render / stored: {before[1] / now[1]:.1f}×; "
          f"per creative end to end: {1000 * (before[1] + before[2]):.1f} ms → {1000 * (now[1] + now[2]):.1f} ms "
          f"({(before[1] + before[2]) / (now[1] + now[2]):.2f}×)")


def placement_path(rfnet: Any, n: int, reps: int) -> None:
    """Images that come without a placement mask: the mask found from the cutout (``inspect.locate``) against the
    saliency map it replaced and against a given mask — ms per image for the mask alone, and ``judge`` end to end."""
    import dataclasses

    from adcreative.inspect.locate import locate_product
    from adcreative.inspect.preprocess import saliency_map

    items = creatives(n)
    bare = [dataclasses.replace(it, mask=None) for it in items]
    rgb = [it.image.convert("RGB") for it in items]
    found = [locate_product(im, it.product) for im, it in zip(rgb, items, strict=True)]
    ms_locate = 1000 / rate(lambda: [locate_product(im, it.product) for im, it in zip(rgb, items, strict=True)], n, reps)
    ms_saliency = 1000 / rate(lambda: [saliency_map(im) for im in rgb], n, reps)
    # where the product is not there (a photograph): every search runs, the extra ones for tiny and cut products too
    from PIL import Image
    from skimage import data as skdata

    photos = [Image.fromarray(getattr(skdata, name)()).resize((512, 512)) for name in ("astronaut", "chelsea")]
    cut = [it.product for it in items[:4]]
    pairs = [(ph, c) for ph in photos for c in cut]
    missed = [locate_product(ph, c) for ph, c in pairs]
    ms_missing = 1000 / rate(lambda: [locate_product(ph, c) for ph, c in pairs], len(pairs), reps)
    with torch.no_grad():
        ms_given = 1000 / rate(lambda: rfnet.judge(items, batch_size=n), n, reps)
        ms_bare = 1000 / rate(lambda: rfnet.judge(bare, batch_size=n), n, reps)
    print(f"placement without a mask, ms per image ({n} compositor creatives, 512 px long side; "
          f"{sum(f.found for f in found)} of {n} found)")
    head = f"{'path':<44}{'ms/img':>9}"
    print(head)
    print("-" * len(head))
    print(f"{'mask: saliency map (before)':<44}{ms_saliency:>9.1f}")
    print(f"{'mask: found from the cutout (locate)':<44}{ms_locate:>9.1f}")
    print(f"{f'locate, product absent ({sum(not m.found for m in missed)}/{len(pairs)} photos not found)':<44}"
          f"{ms_missing:>9.1f}")
    print(f"{'judge end to end, mask given':<44}{ms_given:>9.1f}")
    print(f"{'judge end to end, no mask (found)':<44}{ms_bare:>9.1f}")
    print(f"locate / saliency: {ms_locate / ms_saliency:.1f}×; judge without / with a mask: {ms_bare / ms_given:.2f}×")


def cue_sets_path(n: int, reps: int) -> None:
    """The measured cues alone, ms per image for each cue set, side by side on the same images (set 6 adds the
    learned prop finder: Felzenszwalb segments and their candidates' trees; set 7 the under-the-base cues again,
    on log luminance)."""
    from adcreative.inspect.cues import CUE_SETS, observe
    from adcreative.inspect.prop_finder import shipped_prop_finder

    items = creatives(n)
    args = [(np.asarray(it.image.convert("RGB")), np.asarray(it.mask.convert("L"), np.float32) / 255.0,
             np.asarray(it.product.convert("RGBA"))) for it in items]
    shipped_prop_finder()  # loaded once per process, not timed
    ms = {v: 1000 / rate(lambda v=v: [observe(*a, version=v, height_cm=20.0) for a in args], n, reps)
          for v in sorted(CUE_SETS)}
    print(f"measured cues, ms per image ({n} compositor creatives, 512 px long side, one process)")
    head = f"{'cue set':<10}{'cues':>6}{'ms/img':>9}"
    print(head)
    print("-" * len(head))
    for v, t in ms.items():
        print(f"{v:<10}{len(CUE_SETS[v]):>6}{t:>9.1f}")
    print(f"set 6 / set 5: {ms['6'] / ms['5']:.2f}×")
    print(f"set 7 / set 6: {ms['7'] / ms['6']:.2f}×")


def encode_path(n: int, reps: int) -> None:
    """A dataset folder's cached encoding (what ``inspect train`` runs once per set), ms per image: saved in one
    piece at the end, as before, and chunk by chunk (the default, 1,024 rows; here 32, the most chunks a set can
    have), each into a fresh cache. What chunks buy (a stopped encoding resumes from its last whole chunk) is
    tested in tests/inspect/test_data.py; this is what they cost."""
    import shutil

    from adcreative.inspect.data import encode_samples, encoding_config
    from adcreative.inspect.datasets.formats import Sample, read_dataset, write_manifest
    from adcreative.inspect.model import RFNet

    root = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    (root / "images").mkdir()
    (root / "masks").mkdir()
    (root / "products").mkdir()
    samples = []
    for it in creatives(n):
        it.image.save(root / "images" / f"{it.id}.png")
        it.mask.save(root / "masks" / f"{it.id}.png")
        product = root / "products" / f"{it.title[:40].replace('/', ' ')}.png"
        it.product.save(product)
        samples.append(Sample(id=it.id, image=root / "images" / f"{it.id}.png", mask=root / "masks" / f"{it.id}.png",
                              product=product, product_id=product.stem, title=it.title, category="", label="available",
                              split="train"))
    write_manifest(root, samples)
    samples = read_dataset(root)
    cfg = encoding_config(RFNet(tokens="block", local_width=32, use_cues=True, cue_set="6").config)

    def run(chunk_rows: int) -> None:
        cache = root / ".cache"
        shutil.rmtree(cache, ignore_errors=True)
        encode_samples(samples, cfg, cache_dir=cache, chunk_rows=chunk_rows, progress=False)

    one = 1000 / rate(lambda: run(len(samples) + 32 - len(samples) % 32), n, reps)
    chunked = 1000 / rate(lambda: run(32), n, reps)
    print(f"cached encoding of a {n}-image folder (cue set 6), ms per image, one process")
    head = f"{'saved':<34}{'ms/img':>9}"
    print(head)
    print("-" * len(head))
    print(f"{'in one piece at the end':<34}{one:>9.1f}")
    print(f"{'chunk by chunk (32 rows)':<34}{chunked:>9.1f}")
    print(f"chunks / one piece: {chunked / one:.3f}×")
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="RFNet folder (default: the shipped model)")
    ap.add_argument("--image-only", type=Path, default=None, help="Trained image-only folder (optional)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["throughput", "store", "placement", "cues", "encode"], default=None, help="one of the tables")
    ap.add_argument("--store-n", type=int, default=32, help="creatives in the store-path measurement")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from adcreative.inspect.base import load_inspector
    from adcreative.inspect.export import OnnxInspector, export_onnx
    from adcreative.inspect.model import PER_MEMBER, image_only

    if args.only == "encode":
        encode_path(64, args.reps)
        return 0
    if args.only in (None, "cues"):
        cue_sets_path(16, args.reps)
        if args.only == "cues":
            return 0
        print()
    rfnet = load_inspector(args.model)
    if args.only in (None, "placement"):
        placement_path(rfnet, 16, args.reps)
        if args.only == "placement":
            return 0
        print()
    if args.only != "throughput":
        store_path(rfnet, args.store_n, args.reps)
        if args.only == "store":
            return 0
        print()
    if args.image_only is not None:
        base = load_inspector(args.image_only)
    else:
        cfg = {k: v for k, v in rfnet.config.items()
               if not k.startswith("use_") and k not in PER_MEMBER}
        torch.manual_seed(0)
        base = image_only(**cfg).eval()
    compared = [("RFNet", rfnet), ("image-only", base)]
    if rfnet.members > 1:  # a seed ensemble: one member alone beside it (a whole RFNet), what the others cost
        compared.insert(1, ("RFNet 1 of " + str(rfnet.members), rfnet.other_members[0].eval()))
    items = creatives(32)
    tmp = Path(tempfile.mkdtemp(prefix="bench-inspect-"))
    rows = []
    results: dict[tuple[str, str, int], tuple[float, float]] = {}
    for name, model in compared:
        d = tmp / name
        model.save_pretrained(d)
        export_onnx(model, d)
        ort = OnnxInspector(d, threads=args.threads)
        for bs in (1, 32):
            batch = items[:bs]
            model.onnx_trunk = False  # the torch rows are eager torch end to end
            with torch.no_grad():
                prepared = model.prepare(batch)
                t_model = rate(lambda m=model, x=prepared: m(x), bs, args.reps)
                t_e2e = rate(lambda m=model, b=batch, n=bs: m.judge(b, batch_size=n), bs, args.reps)
            arrays = ort.prepare(batch)
            o_model = rate(lambda o=ort, a=arrays: o.run_arrays(a), bs, args.reps)
            o_e2e = rate(lambda o=ort, b=batch, n=bs: o.judge(b, batch_size=n), bs, args.reps)
            results[(name, "torch", bs)] = (t_model, t_e2e)
            results[(name, "onnx", bs)] = (o_model, o_e2e)
            # both backends agree
            np.testing.assert_allclose(ort.run_arrays(arrays), torch.softmax(model(prepared), -1).detach().numpy(),
                                       atol=1e-4)
    print(f"inspection throughput, images/s (CPU, {args.threads} thread(s); input {rfnet.image_size}² image, "
          f"{rfnet.aux_size}² aux maps)")
    head = f"{'model':<15}{'backend':<9}{'batch':>6}{'model img/s':>13}{'end-to-end img/s':>18}"
    print(head)
    print("-" * len(head))
    for (name, backend, bs), (m, e) in results.items():
        rows.append((name, backend, bs, m, e))
        print(f"{name:<15}{backend:<9}{bs:>6}{m:>13.1f}{e:>18.1f}")
    print()
    print("ratio RFNet / image-only (model img/s; <1 means RFNet is slower):")
    for backend in ("torch", "onnx"):
        for bs in (1, 32):
            r = results[("RFNet", backend, bs)][0] / results[("image-only", backend, bs)][0]
            print(f"  {backend:<6} batch {bs:>2}: {r:.2f}")
    if len(compared) == 3:
        print(f"ratio RFNet (ensemble) / {compared[1][0]} (end-to-end img/s, the members' cost):")
        for backend in ("torch", "onnx"):
            for bs in (1, 32):
                r = results[("RFNet", backend, bs)][1] / results[(compared[1][0], backend, bs)][1]
                print(f"  {backend:<6} batch {bs:>2}: {r:.2f}")
    for bs in (1, 32):
        r = results[("RFNet", "onnx", bs)][0] / results[("RFNet", "torch", bs)][0]
        print(f"ONNX / torch speed-up for RFNet at batch {bs}: {r:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
