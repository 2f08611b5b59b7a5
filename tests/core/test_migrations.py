"""Schema migrations: the models and the revisions agree, a store written before migrations (main at
b0a1a10, tables made by ``create_all``, no revision) upgrades with ``adcreative db upgrade`` keeping every
row, and a store older or newer than the code is refused with one line naming what to run.

CI runs this module on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from adcreative.cli import main
from adcreative.config import get_settings
from adcreative.core import migrations
from adcreative.core.database import Location, location, make_engine
from adcreative.core.imageio import png_bytes
from adcreative.core.migrations import StoreSchemaError
from adcreative.core.store import Base, Store
from adcreative.core.types import Event


# -- the schema as main wrote it at b0a1a10 (copied verbatim from its core/store.py; never change it) -----
class LegacyBase(DeclarativeBase):
    pass


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class LegacyProduct(LegacyBase):
    __tablename__ = "products"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), index=True)
    image_sha: Mapped[str] = mapped_column(String(64))
    logo_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    copy: Mapped[str | None] = mapped_column(Text, nullable=True)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyCreative(LegacyBase):
    __tablename__ = "creatives"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    image_sha: Mapped[str] = mapped_column(String(64))
    generator: Mapped[str] = mapped_column(String(64))
    generator_version: Mapped[str] = mapped_column(String(32))
    seed: Mapped[int] = mapped_column(Integer)
    aspect: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    layout: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    intended_label: Mapped[str | None] = mapped_column(String(32), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyVerdict(LegacyBase):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    model_id: Mapped[str] = mapped_column(String(128))
    probs: Mapped[dict[str, float]] = mapped_column(JSON)
    p_available: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyLabel(LegacyBase):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    label: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyEvent(LegacyBase):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(128))
    ad_id: Mapped[str] = mapped_column(String(128), index=True)
    creative_id: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    propensity: Mapped[float | None] = mapped_column(Float, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyFeature(LegacyBase):
    __tablename__ = "features"
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


TABLES = ("products", "creatives", "verdicts", "labels", "events", "features")


def _engine(home: Path):  # type: ignore[no-untyped-def]
    """An engine on the home's database (its schema made, on PostgreSQL), outside the store's own checks."""
    home.mkdir(parents=True, exist_ok=True)
    loc = location(get_settings(home))
    engine = make_engine(loc)
    if loc.schema is not None:
        with engine.begin() as c:
            c.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{loc.schema}"'))
    return engine


def _rows(engine, table: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every row of a legacy table (legacy columns only), in primary-key order."""
    t = LegacyBase.metadata.tables[table]
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(select(t).order_by(*t.primary_key.columns))]


def _write_legacy_store(home: Path, engine: Any = None) -> dict[str, Any]:
    """A store as main wrote it: rows in every table (duplicate events included), blobs for its images, and
    no mask for the compositor creatives. Returns what the test checks afterwards."""
    from adcreative.catalogue.sample import sample_catalogue
    from adcreative.core.blobs import BlobStore
    from adcreative.generate.compositor.generator import Compositor

    engine = engine if engine is not None else _engine(home)
    LegacyBase.metadata.create_all(engine)
    blobs = BlobStore(home / "blobs")
    products = sample_catalogue()[:2]
    gen = Compositor(scale=0.25)
    masks = {}
    with Session(engine) as s:
        for p in products:
            s.add(LegacyProduct(id=p.id, title=p.title, category=p.category, image_sha=blobs.put_image(p.image),
                                logo_sha=blobs.put_image(p.logo) if p.logo is not None else None, copy=p.copy,
                                price=p.price, attrs=p.attrs))
        s.flush()
        for i, p in enumerate(products):
            gi = gen(p, seed=i, aspect="1:1")[0]
            cid = f"legacy{i}"
            masks[cid] = np.asarray(gi.mask) > 0
            s.add(LegacyCreative(id=cid, product_id=p.id, image_sha=blobs.put_bytes(png_bytes(gi.image)),
                                 generator=gi.generator, generator_version=gi.generator_version, seed=gi.seed,
                                 aspect=gi.aspect, width=gi.image.width, height=gi.image.height,
                                 params={"generator_config": gi.config, "defect": None, "severity": 0.5,
                                         "render": gi.params},
                                 layout={k: b.as_list() for k, b in gi.layout.items()}, run_id="rec-old"))
        s.flush()
        s.add_all([LegacyVerdict(creative_id="legacy0", model_id="rfnet@old", probs={"available": 0.7, "unsuitable": 0.3},
                                 p_available=0.7, label="available"),
                   LegacyVerdict(creative_id="legacy0", model_id="rfnet@old2", probs={"available": 0.2, "unsuitable": 0.8},
                                 p_available=0.2, label="unsuitable"),
                   LegacyLabel(creative_id="legacy1", label="available", reviewer="alice", note="ok"),
                   LegacyFeature(creative_id="legacy0", name="explicit", version="1", values={"area": 0.25}),
                   LegacyFeature(creative_id="legacy1", name="explicit", version="1", values={"area": 0.5})])
        # a client that retried before events were idempotent: the same key three times, all kept
        for i, (kind, rid) in enumerate([("impression", "r1"), ("impression", "r1"), ("click", "r1"),
                                         ("impression", "r1"), ("impression", "r2")]):
            s.add(LegacyEvent(kind=kind, request_id=rid, user_id="u1", ad_id="ad", creative_id="legacy0",
                              position=i, propensity=0.5, context={"i": i}))
        s.commit()
    before = {t: _rows(engine, t) for t in TABLES}
    engine.dispose()
    return {"rows": before, "masks": masks}


def test_head_constant_is_the_newest_revision() -> None:
    assert migrations.head() == migrations.HEAD
    assert [r.revision for r in reversed(list(migrations.script().walk_revisions()))] == ["0001", "0002", "0003",
                                                                                            "0004", "0005"]


def test_models_match_migrations(tmp_path: Path) -> None:
    """Running every revision from an empty database gives exactly the models' schema (what a fresh store
    is created with), on this database."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    home = tmp_path / "h"
    before, after = migrations.upgrade(get_settings(home))
    assert before.fresh and after.up_to_date
    engine = _engine(home)
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []
    Store(home=home)  # opens: it is at the head


def test_legacy_store_upgrades_without_losing_a_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from adcreative.generate.provenance import placement_mask

    home = tmp_path / "legacy"
    legacy = _write_legacy_store(home)
    assert all(legacy["rows"][t] for t in TABLES)  # a row in every table
    with pytest.raises(StoreSchemaError, match="predates schema migrations: run `adcreative db upgrade`"):
        Store(home=home)
    capsys.readouterr()
    assert main(["--home", str(home), "products", "list"]) == 2
    err = capsys.readouterr().err
    assert "adcreative db upgrade" in err and "Traceback" not in err
    assert main(["--home", str(home), "db", "current"]) == 0
    assert "revision none" in capsys.readouterr().out
    assert main(["--home", str(home), "db", "upgrade"]) == 0
    assert "upgraded legacy" in capsys.readouterr().out
    assert main(["--home", str(home), "db", "upgrade"]) == 0
    assert "already at revision 0005" in capsys.readouterr().out

    engine = _engine(home)
    assert {t: _rows(engine, t) for t in TABLES} == legacy["rows"]  # every row, every value
    with engine.connect() as c:
        replay = [r[0] for r in c.execute(text("SELECT replay FROM events ORDER BY id"))]
    engine.dispose()
    assert replay == [0, 1, 0, 2, 0]  # the repeats of (impression, r1, legacy0) numbered, none dropped

    store = Store(home=home)
    assert store.product_ids() == sorted(p["id"] for p in legacy["rows"]["products"])
    assert len(store.events()) == 5 and store.latest_verdict("legacy0").model_id == "rfnet@old2"  # type: ignore[union-attr]
    # from now on the key holds: a retry of a legacy event adds nothing, a new one is added
    assert store.add_events([Event("impression", "r1", "u1", "ad", "legacy0")]) == []
    assert len(store.add_events([Event("click", "r2", "u1", "ad", "legacy0")])) == 1
    # legacy creatives have no stored mask: it is rebuilt from the layout, close to the exact one
    for cid, exact in legacy["masks"].items():
        c = store.get_creative(cid)
        assert c.mask_sha is None and store.creative_mask(c) is None
        rebuilt = np.asarray(placement_mask(store, c)) > 0
        assert (rebuilt & exact).sum() / (rebuilt | exact).sum() > 0.9
    assert [c.id for c in store.available_creatives()] == ["legacy1"]  # labelled; legacy0's latest verdict rejects


def test_older_and_newer_schemas_are_refused_with_the_command_to_run(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from alembic import command

    home = tmp_path / "h"
    _write_legacy_store(home)
    engine = make_engine(location(get_settings(home)), migrating=True)
    with engine.begin() as c:
        command.stamp(migrations.config(c), "0001")
        command.upgrade(migrations.config(c), "0002")  # a store left at an older revision
    with pytest.raises(StoreSchemaError, match="is at schema revision 0002, this adcreative needs 0005: run "
                                               "`adcreative db upgrade`"):
        Store(home=home)
    with engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '0099'"))  # written by a newer adcreative
    engine.dispose()
    with pytest.raises(StoreSchemaError, match="revision 0099, newer than this adcreative"):
        Store(home=home)
    capsys.readouterr()
    assert main(["--home", str(home), "db", "upgrade"]) == 2
    assert main(["--home", str(home), "creatives", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("newer than this adcreative") == 2 and "Traceback" not in err


def test_concurrent_opens_of_a_fresh_home_create_it_once(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(home=home).close()
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrations.current(get_settings(home)).up_to_date


@pytest.mark.postgres
def test_postgresql_store_from_before_schemas_per_home_is_adopted_by_its_home(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """main kept every home's rows in the database's ``public`` schema: the home holding its images adopts it
    with ``db upgrade`` (every row kept); a new home starts empty in a schema of its own meanwhile, and a home
    without those images cannot take it."""
    from adcreative.core.blobs import BlobStore

    url = os.environ.get("ADCREATIVE_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL only (on SQLite each home has its own database file); CI runs it there")
    public = make_engine(Location(url, "public"))
    old = tmp_path / "old"
    legacy = _write_legacy_store(old, public)
    assert not (old / "store.json").exists()

    fresh = Store(home=tmp_path / "new")  # no images yet: never adopts, starts empty in its own schema
    assert fresh.product_ids() == [] and fresh.location.schema != "public"
    with pytest.raises(StoreSchemaError, match="predates schema migrations: run `adcreative db upgrade`"):
        Store(home=old)
    wrong = tmp_path / "wrong"
    BlobStore(wrong / "blobs").put_bytes(b"not this store's image")
    capsys.readouterr()
    assert main(["--home", str(wrong), "db", "upgrade"]) == 2
    assert "its images are not in" in capsys.readouterr().err

    assert main(["--home", str(old), "db", "upgrade"]) == 0
    assert json.loads((old / "store.json").read_text()) == {"postgresql_schema": "public"}
    assert {t: _rows(public, t) for t in TABLES} == legacy["rows"]
    public.dispose()
    assert Store(home=old).product_ids() == sorted(p["id"] for p in legacy["rows"]["products"])
    # adopted: an old home without store.json is now a home like any other (its own, empty schema)
    assert Store(home=wrong).product_ids() == []
