"""The store: SQLAlchemy 2 tables for products, creatives, verdicts, labels, events and features,
with images in a content-addressed folder. SQLite by default, PostgreSQL by URL.

Writes validate first and commit in one transaction, so a failed import leaves no rows behind.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from adcreative.config import Settings, get_settings
from adcreative.core.blobs import BlobStore
from adcreative.core.errors import InputError
from adcreative.core.types import Creative, Event, Label, Product, Verdict, utcnow


class Base(DeclarativeBase):
    pass


class ProductRow(Base):
    __tablename__ = "products"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), index=True)
    image_sha: Mapped[str] = mapped_column(String(64))
    logo_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    copy: Mapped[str | None] = mapped_column(Text, nullable=True)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CreativeRow(Base):
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
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VerdictRow(Base):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    model_id: Mapped[str] = mapped_column(String(128))
    probs: Mapped[dict[str, float]] = mapped_column(JSON)
    p_available: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    band: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)
    ood: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


# columns added to existing tables since the first release: (table, column, SQL type), added on open when missing
ADDED_COLUMNS = (("verdicts", "band", "VARCHAR(16)"), ("verdicts", "ood", "FLOAT"))


class LabelRow(Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    label: Mapped[str] = mapped_column(String(32))
    reviewer: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRow(Base):
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
    ts: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeatureRow(Base):
    """Cached per-creative representations (explicit features, embeddings) keyed by extractor name."""

    __tablename__ = "features"
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _creative_from_row(r: CreativeRow) -> Creative:
    return Creative(
        id=r.id, product_id=r.product_id, image_sha=r.image_sha, generator=r.generator,
        generator_version=r.generator_version, seed=r.seed, aspect=r.aspect, width=r.width,
        height=r.height, params=dict(r.params or {}), layout=dict(r.layout or {}),
        intended_label=r.intended_label, run_id=r.run_id, created_at=r.created_at,
    )


def _verdict_from_row(r: VerdictRow) -> Verdict:
    return Verdict(r.creative_id, r.model_id, dict(r.probs), r.created_at, band=r.band, ood=r.ood)


class Store:
    """Products, creatives, verdicts, labels, events and features, plus the image blobs."""

    def __init__(self, settings: Settings | None = None, *, home: str | Path | None = None) -> None:
        self.settings = settings or get_settings(home)
        self.home = Path(self.settings.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.home / "blobs")
        url = self.settings.resolved_database_url()
        self.engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(conn: Any, _rec: Any) -> None:  # durability + concurrent readers
                cur = conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        Base.metadata.create_all(self.engine)
        self._add_missing_columns()
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def _add_missing_columns(self) -> None:
        """Bring a store made by an earlier version up to the current tables (nullable columns only)."""
        from sqlalchemy import inspect as sa_inspect
        from sqlalchemy import text

        insp = sa_inspect(self.engine)
        with self.engine.begin() as conn:
            for table, column, sql_type in ADDED_COLUMNS:
                if column not in {c["name"] for c in insp.get_columns(table)}:
                    conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))

    def session(self) -> Session:
        return self._session()

    # -- products ---------------------------------------------------------------------------------
    def add_products(self, products: Sequence[Product]) -> None:
        """Add products in one transaction: all or none."""
        ids = [p.id for p in products]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise InputError(f"duplicate product id(s) in the import: {', '.join(sorted(dup))}")
        for p in products:
            if not p.title or not p.title.strip():
                raise InputError("empty title", source=p.id)
            if not p.id or not p.id.strip():
                raise InputError("empty product id")
        with self.session() as s:
            existing = set(s.scalars(select(ProductRow.id).where(ProductRow.id.in_(ids))))
            if existing:
                raise InputError(f"product id(s) already in the store: {', '.join(sorted(existing))}")
            for p in products:
                image_sha = self.blobs.put_image(p.image)
                logo_sha = self.blobs.put_image(p.logo) if p.logo is not None else None
                s.add(ProductRow(id=p.id, title=p.title.strip(), category=p.category, image_sha=image_sha,
                                 logo_sha=logo_sha, copy=p.copy, price=p.price, attrs=p.attrs))
            s.commit()

    def get_product(self, product_id: str) -> Product:
        with self.session() as s:
            r = s.get(ProductRow, product_id)
            if r is None:
                raise InputError(f"no product with id {product_id!r} in the store")
            return Product(id=r.id, title=r.title, category=r.category,
                           image=self.blobs.get_image(r.image_sha).convert("RGBA"), copy=r.copy,
                           price=r.price, logo=self.blobs.get_image(r.logo_sha) if r.logo_sha else None,
                           attrs=dict(r.attrs or {}))

    def product_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ProductRow.id).order_by(ProductRow.id)))

    def products(self) -> Iterator[Product]:
        for pid in self.product_ids():
            yield self.get_product(pid)

    # -- creatives --------------------------------------------------------------------------------
    def add_creative(self, creative: Creative, image: Image.Image | None = None, *, data: bytes | None = None) -> Creative:
        """Store a creative and its image (PIL image, or its PNG bytes when already encoded)."""
        if data is None and image is None:
            raise ValueError("add_creative needs the image or its PNG bytes")
        sha = self.blobs.put_bytes(data) if data is not None else self.blobs.put_image(image)  # type: ignore[arg-type]
        if creative.image_sha and creative.image_sha != sha:
            raise ValueError(f"creative {creative.id}: image bytes do not match image_sha")
        creative.image_sha = sha
        with self.session() as s:
            s.add(CreativeRow(**{k: v for k, v in creative.__dict__.items()}))
            s.commit()
        return creative

    def get_creative(self, creative_id: str) -> Creative:
        with self.session() as s:
            r = s.get(CreativeRow, creative_id)
            if r is None:
                raise InputError(f"no creative with id {creative_id!r} in the store")
            return _creative_from_row(r)

    def creative_image(self, creative: Creative | str) -> Image.Image:
        c = self.get_creative(creative) if isinstance(creative, str) else creative
        return self.blobs.get_image(c.image_sha)

    def creatives(self, *, product_id: str | None = None, run_id: str | None = None) -> list[Creative]:
        with self.session() as s:
            q = select(CreativeRow).order_by(CreativeRow.created_at, CreativeRow.id)
            if product_id is not None:
                q = q.where(CreativeRow.product_id == product_id)
            if run_id is not None:
                q = q.where(CreativeRow.run_id == run_id)
            return [_creative_from_row(r) for r in s.scalars(q)]

    # -- verdicts and labels ----------------------------------------------------------------------
    def add_verdicts(self, verdicts: Iterable[Verdict]) -> None:
        with self.session() as s:
            for v in verdicts:
                s.add(VerdictRow(creative_id=v.creative_id, model_id=v.model_id, probs=v.probs,
                                 p_available=v.p_available, label=v.label, created_at=v.created_at, band=v.band,
                                 ood=v.ood))
            s.commit()

    def latest_verdict(self, creative_id: str) -> Verdict | None:
        with self.session() as s:
            r = s.scalars(select(VerdictRow).where(VerdictRow.creative_id == creative_id)
                          .order_by(VerdictRow.id.desc()).limit(1)).first()
            return None if r is None else _verdict_from_row(r)

    def add_label(self, label: Label) -> None:
        with self.session() as s:
            if s.get(CreativeRow, label.creative_id) is None:
                raise InputError(f"no creative with id {label.creative_id!r} in the store")
            s.add(LabelRow(creative_id=label.creative_id, label=label.label, reviewer=label.reviewer,
                           note=label.note, created_at=label.created_at))
            s.commit()

    def labels(self) -> list[Label]:
        """Every human label, latest last (a later label for the same creative overrides an earlier one)."""
        with self.session() as s:
            return [Label(r.creative_id, r.label, r.reviewer, r.note, r.created_at)
                    for r in s.scalars(select(LabelRow).order_by(LabelRow.id))]

    def latest_labels(self) -> dict[str, Label]:
        """The human verdict per creative: the latest label wins (a correction overrides)."""
        return {lb.creative_id: lb for lb in self.labels()}

    def review_queue(self, limit: int = 50) -> list[tuple[Creative, Verdict | None]]:
        """Creatives with no human label yet: those the inspector sent to a human first, then those never
        judged, then the rest; within each group the ones the inspector is least sure about first."""
        with self.session() as s:
            labelled = set(s.scalars(select(LabelRow.creative_id)))
            latest: dict[str, VerdictRow] = {}
            for v in s.scalars(select(VerdictRow).order_by(VerdictRow.id)):
                latest[v.creative_id] = v
            rows = [r for r in s.scalars(select(CreativeRow).order_by(CreativeRow.created_at)) if r.id not in labelled]

        def priority(r: CreativeRow) -> tuple[int, float]:
            v = latest.get(r.id)
            if v is None:
                return 1, 0.0
            return (0 if v.band == "human" else 2), abs(v.p_available - 0.5)

        rows.sort(key=priority)
        out: list[tuple[Creative, Verdict | None]] = []
        for r in rows[:limit]:
            vr = latest.get(r.id)
            out.append((_creative_from_row(r), None if vr is None else _verdict_from_row(vr)))
        return out

    def verdict_bands(self, creative_ids: Iterable[str] | None = None) -> dict[str, int]:
        """How many creatives' latest verdicts fall in each band (``none`` for a verdict without one)."""
        from collections import Counter

        want = None if creative_ids is None else set(creative_ids)
        with self.session() as s:
            latest: dict[str, str] = {}
            for v in s.scalars(select(VerdictRow).order_by(VerdictRow.id)):
                if want is None or v.creative_id in want:
                    latest[v.creative_id] = v.band or "none"
        return dict(Counter(latest.values()))

    # -- events -----------------------------------------------------------------------------------
    def add_events(self, events: Iterable[Event]) -> int:
        n = 0
        with self.session() as s:
            for e in events:
                s.add(EventRow(kind=e.kind, request_id=e.request_id, user_id=e.user_id, ad_id=e.ad_id,
                               creative_id=e.creative_id, position=e.position, propensity=e.propensity,
                               context=e.context, ts=e.ts))
                n += 1
            s.commit()
        return n

    def events(self, *, kind: str | None = None) -> list[Event]:
        with self.session() as s:
            q = select(EventRow).order_by(EventRow.id)
            if kind is not None:
                q = q.where(EventRow.kind == kind)
            return [Event(r.kind, r.request_id, r.user_id, r.ad_id, r.creative_id, r.position, r.propensity,
                          dict(r.context or {}), r.ts) for r in s.scalars(q)]

    # -- cached features --------------------------------------------------------------------------
    def put_features(self, name: str, version: str, values: dict[str, dict[str, Any]]) -> None:
        with self.session() as s:
            for cid, vals in values.items():
                s.merge(FeatureRow(creative_id=cid, name=name, version=version, values=json.loads(json.dumps(vals))))
            s.commit()

    def get_features(self, name: str, creative_ids: Sequence[str], version: str | None = None) -> dict[str, dict[str, Any]]:
        with self.session() as s:
            q = select(FeatureRow).where(FeatureRow.name == name, FeatureRow.creative_id.in_(list(creative_ids)))
            if version is not None:
                q = q.where(FeatureRow.version == version)
            return {r.creative_id: dict(r.values) for r in s.scalars(q)}
