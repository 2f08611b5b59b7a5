"""The store: SQLAlchemy 2 tables for products, creatives, verdicts, labels, events and features,
with images (and creatives' placement masks) in a content-addressed folder. SQLite by default, PostgreSQL by
URL; which database and schema a home uses is :mod:`adcreative.core.database`'s rule.

Every write validates first (lengths from :mod:`adcreative.core.limits`, no NUL or lone surrogates, finite
numbers, ids free, referenced rows present) and only then writes blobs and commits the rows in one
transaction, so bad input leaves no row and no orphan blob behind. (A database failure after that, e.g. a
concurrent writer taking the same id, can leave an unreferenced blob: harmless, as blobs are content-addressed
and shared, which is also why a failed write never deletes one.) The schema is
versioned by Alembic (:mod:`adcreative.core.migrations`): opening a store whose schema is not this code's
fails with one line naming ``adcreative db upgrade``.
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
    Index,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from adcreative.config import Settings, get_settings
from adcreative.core import limits as L
from adcreative.core.blobs import BlobStore
from adcreative.core.database import checked_url, location, make_engine
from adcreative.core.errors import InputError, NotFoundError
from adcreative.core.imageio import check_folder_path, png_bytes
from adcreative.core.types import BANDS, Creative, Event, Label, Product, Verdict, utcnow

INT_MIN, INT_MAX = L.INT_MIN, L.INT_MAX


class Base(DeclarativeBase):
    pass


class ProductRow(Base):
    __tablename__ = "products"
    id: Mapped[str] = mapped_column(String(L.PRODUCT_ID_MAX), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(L.CATEGORY_MAX), index=True)
    image_sha: Mapped[str] = mapped_column(String(L.SHA_LEN))
    logo_sha: Mapped[str | None] = mapped_column(String(L.SHA_LEN), nullable=True)
    copy: Mapped[str | None] = mapped_column(Text, nullable=True)
    price: Mapped[float | None] = mapped_column(Float, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CreativeRow(Base):
    __tablename__ = "creatives"
    id: Mapped[str] = mapped_column(String(L.CREATIVE_ID_MAX), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    image_sha: Mapped[str] = mapped_column(String(L.SHA_LEN))
    generator: Mapped[str] = mapped_column(String(L.GENERATOR_MAX))
    generator_version: Mapped[str] = mapped_column(String(L.GENERATOR_VERSION_MAX))
    seed: Mapped[int] = mapped_column(Integer)
    aspect: Mapped[str] = mapped_column(String(L.ASPECT_MAX))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    layout: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    intended_label: Mapped[str | None] = mapped_column(String(L.LABEL_MAX), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(L.RUN_ID_MAX), nullable=True, index=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # 0002: the placement mask's blob (NULL on rows stored before it was kept)
    mask_sha: Mapped[str | None] = mapped_column(String(L.SHA_LEN), nullable=True)
    # 0004: "{run_id}/{product_id}/{seed}" for attempts of a resumable run: one creative per attempt
    attempt_key: Mapped[str | None] = mapped_column(String(L.ATTEMPT_KEY_MAX), nullable=True, unique=True, index=True)


class VerdictRow(Base):
    __tablename__ = "verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    model_id: Mapped[str] = mapped_column(String(L.MODEL_ID_MAX))
    probs: Mapped[dict[str, float]] = mapped_column(JSON)
    p_available: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(L.LABEL_MAX))
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    band: Mapped[str | None] = mapped_column(String(L.BAND_MAX), nullable=True, default=None)
    ood: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


class LabelRow(Base):
    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), index=True)
    label: Mapped[str] = mapped_column(String(L.LABEL_MAX))
    reviewer: Mapped[str] = mapped_column(String(L.REVIEWER_MAX))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRow(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(L.EVENT_KIND_MAX), index=True)
    request_id: Mapped[str] = mapped_column(String(L.REQUEST_ID_MAX), index=True)
    user_id: Mapped[str] = mapped_column(String(L.USER_ID_MAX))
    ad_id: Mapped[str] = mapped_column(String(L.AD_ID_MAX), index=True)
    creative_id: Mapped[str] = mapped_column(String(L.CREATIVE_ID_MAX), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    propensity: Mapped[float | None] = mapped_column(Float, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # 0003: 0 for every event; n > 0 only marks the n-th repeat of a key that a store held before 0003
    replay: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("uq_events_key", "kind", "request_id", "creative_id", "replay", unique=True),)


class FeatureRow(Base):
    """Cached per-creative representations (explicit features, embeddings) keyed by extractor name."""

    __tablename__ = "features"
    creative_id: Mapped[str] = mapped_column(ForeignKey("creatives.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(L.FEATURE_NAME_MAX), primary_key=True)
    version: Mapped[str] = mapped_column(String(L.FEATURE_VERSION_MAX))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


EVENT_KEY = ("kind", "request_id", "creative_id", "replay")  # what makes an event unique (uq_events_key)


def _creative_from_row(r: CreativeRow) -> Creative:
    return Creative(
        id=r.id, product_id=r.product_id, image_sha=r.image_sha, generator=r.generator,
        generator_version=r.generator_version, seed=r.seed, aspect=r.aspect, width=r.width,
        height=r.height, params=dict(r.params or {}), layout=dict(r.layout or {}),
        intended_label=r.intended_label, run_id=r.run_id, created_at=r.created_at, mask_sha=r.mask_sha,
        attempt_key=r.attempt_key,
    )


def _verdict_from_row(r: VerdictRow) -> Verdict:
    return Verdict(r.creative_id, r.model_id, dict(r.probs), r.created_at, band=r.band, ood=r.ood)


# -- validation: every value checked before anything (blob or row) is written ---------------------------
def _check_int(field: str, v: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not INT_MIN <= v <= INT_MAX:
        raise InputError(f"{field} must be an integer in [{INT_MIN}, {INT_MAX}], got {v!r}")


def check_product(p: Product) -> None:
    where = f"product {p.id!r}" if isinstance(p.id, str) and len(p.id) <= L.PRODUCT_ID_MAX else "product"
    L.check_text("product id", p.id, L.PRODUCT_ID_MAX)
    L.check_text(f"{where}: title", p.title)
    L.check_text(f"{where}: category", p.category, L.CATEGORY_MAX)
    if p.copy is not None:
        L.check_text(f"{where}: copy", p.copy, empty=True)
    L.check_number(f"{where}: price", p.price)
    L.check_json(f"{where}: attrs", p.attrs)


def check_creative(c: Creative) -> None:
    L.check_text("creative id", c.id, L.CREATIVE_ID_MAX)
    L.check_text("creative product_id", c.product_id, L.PRODUCT_ID_MAX)
    L.check_text("creative generator", c.generator, L.GENERATOR_MAX)
    L.check_text("creative generator_version", c.generator_version, L.GENERATOR_VERSION_MAX)
    L.check_text("creative aspect", c.aspect, L.ASPECT_MAX)
    for name, limit in (("intended_label", L.LABEL_MAX), ("run_id", L.RUN_ID_MAX), ("attempt_key", L.ATTEMPT_KEY_MAX)):
        if (v := getattr(c, name)) is not None:
            L.check_text(f"creative {name}", v, limit)
    for name in ("seed", "width", "height"):
        _check_int(f"creative {name}", getattr(c, name))
    L.check_json("creative params", c.params)
    L.check_json("creative layout", c.layout)


def check_verdict(v: Verdict) -> None:
    L.check_text("verdict creative_id", v.creative_id, L.CREATIVE_ID_MAX)
    L.check_text("verdict model_id", v.model_id, L.MODEL_ID_MAX)
    if not isinstance(v.probs, dict) or not v.probs:
        raise InputError("verdict probs must be a non-empty mapping of class → probability")
    for k, x in v.probs.items():
        L.check_text("verdict class", k, L.LABEL_MAX)
        L.check_number(f"verdict probs[{k!r}]", x)
    if v.band is not None and v.band not in BANDS:
        raise InputError(f"verdict band must be accept, human or reject, got {v.band!r}")
    if v.ood is not None:
        L.check_number("verdict ood", v.ood)


def check_event(e: Event) -> None:
    L.check_text("event kind", e.kind, L.EVENT_KIND_MAX)
    L.check_text("event request_id", e.request_id, L.REQUEST_ID_MAX)
    L.check_text("event user_id", e.user_id, L.USER_ID_MAX)
    L.check_text("event ad_id", e.ad_id, L.AD_ID_MAX)
    L.check_text("event creative_id", e.creative_id, L.CREATIVE_ID_MAX)
    _check_int("event position", e.position)
    L.check_number("event propensity", e.propensity)
    L.check_json("event context", e.context)


class Store:
    """Products, creatives, verdicts, labels, events and features, plus the image blobs."""

    def __init__(self, settings: Settings | None = None, *, home: str | Path | None = None) -> None:
        from adcreative.core import migrations

        self.settings = settings or get_settings(home)
        self.home = Path(self.settings.home)
        checked_url(self.settings.resolved_database_url())  # a bad URL is refused before the home is made
        check_folder_path(self.home, what=f"a store in {self.home}")  # a file there: one line, not mkdir's error
        self.home.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.home / "blobs")
        self.location = location(self.settings)
        self.engine = make_engine(self.location)
        try:
            migrations.ensure(self.location, self.engine, Base.metadata)  # fresh → created; other revision → refused
        except DatabaseError as e:  # not a database file, a server that refuses us: say which store, in one line
            self.engine.dispose()
            why = " ".join(str(e.orig).split())  # psycopg's hints span lines
            raise InputError(f"cannot open the store at {self.location.describe()}: {why}") from None
        except BaseException:
            self.engine.dispose()
            raise
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    def close(self) -> None:
        self.engine.dispose()

    # -- products ---------------------------------------------------------------------------------
    def add_products(self, products: Sequence[Product]) -> None:
        """Add products in one transaction: all or none (and no blob left behind when none)."""
        for p in products:
            check_product(p)
        ids = [p.id for p in products]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise InputError(f"duplicate product id(s) in the import: {', '.join(sorted(dup))}")
        with self.session() as s:
            existing = set(s.scalars(select(ProductRow.id).where(ProductRow.id.in_(ids))))
        if existing:
            raise InputError(f"product id(s) already in the store: {', '.join(sorted(existing))}")
        try:
            with self.session() as s:
                for p in products:
                    image_sha = self.blobs.put_image(p.image)
                    logo_sha = self.blobs.put_image(p.logo) if p.logo is not None else None
                    s.add(ProductRow(id=p.id, title=p.title.strip(), category=p.category, image_sha=image_sha,
                                     logo_sha=logo_sha, copy=p.copy, price=p.price, attrs=p.attrs))
                s.commit()
        except IntegrityError:
            raise InputError(f"product id(s) already in the store: {', '.join(ids)} (added concurrently)") from None

    def get_product(self, product_id: str) -> Product:
        with self.session() as s:
            r = s.get(ProductRow, product_id)
            if r is None:
                raise NotFoundError(f"no product with id {product_id!r} in the store")
            return Product(id=r.id, title=r.title, category=r.category,
                           image=self.blobs.get_image(r.image_sha).convert("RGBA"), copy=r.copy,
                           price=r.price, logo=self.blobs.get_image(r.logo_sha) if r.logo_sha else None,
                           attrs=dict(r.attrs or {}))

    def replace_product_image(self, product_id: str, image: Image.Image, attrs: dict[str, Any]) -> None:
        """Replace a product's cutout and attrs (a user's own mask over its original photo)."""
        with self.session() as s:
            r = s.get(ProductRow, product_id)
            if r is None:
                raise InputError(f"no product with id {product_id!r} in the store")
            r.image_sha = self.blobs.put_image(image.convert("RGBA"))
            r.attrs = dict(attrs)
            s.commit()

    def product_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ProductRow.id).order_by(ProductRow.id)))

    def products(self) -> Iterator[Product]:
        for pid in self.product_ids():
            yield self.get_product(pid)

    # -- creatives --------------------------------------------------------------------------------
    def add_creative(self, creative: Creative, image: Image.Image | None = None, *, data: bytes | None = None,
                     mask: Image.Image | bytes | None = None, verdict: Verdict | None = None) -> Creative:
        """Store a creative, its image (PIL image, or its PNG bytes when already encoded), its placement mask
        (L image or its PNG bytes; 255 = the product's own pixels) and, when given, its verdict — all in one
        transaction, so no crash leaves a creative stored without the verdict it was made with.

        A creative with an ``attempt_key`` that is already stored raises :class:`AttemptExists`."""
        if data is None and image is None:
            raise ValueError("add_creative needs the image or its PNG bytes")
        check_creative(creative)
        if verdict is not None:
            check_verdict(verdict)
            if verdict.creative_id != creative.id:
                raise ValueError(f"verdict is for {verdict.creative_id}, not {creative.id}")
        data = data if data is not None else png_bytes(image)  # type: ignore[arg-type]
        if creative.image_sha and creative.image_sha != self.blobs.sha(data):
            raise ValueError(f"creative {creative.id}: image bytes do not match image_sha")
        mask_data = None
        if mask is not None:
            mask_data = mask if isinstance(mask, bytes) else png_bytes(mask.convert("L"))
            if creative.mask_sha and creative.mask_sha != self.blobs.sha(mask_data):
                raise ValueError(f"creative {creative.id}: mask bytes do not match mask_sha")
        self._check_creative_is_new(creative)
        creative.image_sha = self.blobs.put_bytes(data)
        if mask_data is not None:
            creative.mask_sha = self.blobs.put_bytes(mask_data)
        try:
            with self.session() as s:
                s.add(CreativeRow(**{k: v for k, v in creative.__dict__.items()}))
                if verdict is not None:
                    s.flush()  # the creative row first: the verdict's foreign key names it
                    s.add(_verdict_row(verdict))
                s.commit()
        except IntegrityError:  # a concurrent writer got there between the check and the commit
            self._check_creative_is_new(creative)
            raise
        return creative

    def _check_creative_is_new(self, creative: Creative) -> None:
        """Its product is stored, its id and attempt key are not (checked before any blob is written)."""
        with self.session() as s:
            if s.get(ProductRow, creative.product_id) is None:
                raise InputError(f"creative {creative.id}: its product {creative.product_id!r} is not in the store")
            if creative.attempt_key is not None and s.scalars(
                    select(CreativeRow.id).where(CreativeRow.attempt_key == creative.attempt_key)).first():
                raise AttemptExists(f"attempt {creative.attempt_key} is already stored")
            if s.get(CreativeRow, creative.id) is not None:
                raise InputError(f"creative id {creative.id!r} is already in the store")

    def get_creative(self, creative_id: str) -> Creative:
        with self.session() as s:
            r = s.get(CreativeRow, creative_id)
            if r is None:
                raise NotFoundError(f"no creative with id {creative_id!r} in the store")
            return _creative_from_row(r)

    def creative_by_attempt(self, attempt_key: str) -> Creative | None:
        with self.session() as s:
            r = s.scalars(select(CreativeRow).where(CreativeRow.attempt_key == attempt_key)).first()
            return None if r is None else _creative_from_row(r)

    def creative_image(self, creative: Creative | str) -> Image.Image:
        c = self.get_creative(creative) if isinstance(creative, str) else creative
        return self.blobs.get_image(c.image_sha)

    def creative_mask(self, creative: Creative | str) -> Image.Image | None:
        """The placement mask stored with the creative (L, 255 = the product's own pixels); None for a
        creative stored before masks were kept (rebuild it: :func:`adcreative.generate.provenance.placement_mask`)."""
        c = self.get_creative(creative) if isinstance(creative, str) else creative
        return None if c.mask_sha is None else self.blobs.get_image(c.mask_sha).convert("L")

    def creatives(self, *, product_id: str | None = None, run_id: str | None = None) -> list[Creative]:
        with self.session() as s:
            q = select(CreativeRow).order_by(CreativeRow.created_at, CreativeRow.id)
            if product_id is not None:
                q = q.where(CreativeRow.product_id == product_id)
            if run_id is not None:
                q = q.where(CreativeRow.run_id == run_id)
            return [_creative_from_row(r) for r in s.scalars(q)]

    def available_creatives(self, *, product_id: str | None = None) -> list[Creative]:
        """Creatives an auditor accepted: the latest human label is ``available``, or, with no label, the
        latest inspector verdict is. A creative with neither (unaudited: e.g. stored by a run that crashed
        before its verdict) is never available."""
        cs = self.creatives(product_id=product_id)
        labels = {lb.creative_id: lb.label for lb in self.labels()}
        verdicts = self.latest_verdicts([c.id for c in cs])
        return [c for c in cs if labels.get(c.id, v.label if (v := verdicts.get(c.id)) else None) == "available"]

    # -- verdicts and labels ----------------------------------------------------------------------
    def add_verdicts(self, verdicts: Iterable[Verdict]) -> None:
        vs = list(verdicts)
        for v in vs:
            check_verdict(v)
        try:
            with self.session() as s:
                s.add_all([_verdict_row(v) for v in vs])
                s.commit()
        except IntegrityError:
            raise InputError("a verdict names a creative that is not in the store: "
                             + ", ".join(sorted({v.creative_id for v in vs}))) from None

    def latest_verdict(self, creative_id: str) -> Verdict | None:
        with self.session() as s:
            r = s.scalars(select(VerdictRow).where(VerdictRow.creative_id == creative_id)
                          .order_by(VerdictRow.id.desc()).limit(1)).first()
            return None if r is None else _verdict_from_row(r)

    def latest_verdicts(self, creative_ids: Sequence[str] | None = None) -> dict[str, Verdict]:
        """The latest verdict per creative (all creatives, or those named), in one query per 500 ids."""
        out: dict[str, Verdict] = {}
        with self.session() as s:
            if creative_ids is None:
                for r in s.scalars(select(VerdictRow).order_by(VerdictRow.id)):
                    out[r.creative_id] = _verdict_from_row(r)
                return out
            ids = list(creative_ids)
            for i in range(0, len(ids), 500):
                q = select(VerdictRow).where(VerdictRow.creative_id.in_(ids[i:i + 500])).order_by(VerdictRow.id)
                for r in s.scalars(q):
                    out[r.creative_id] = _verdict_from_row(r)
        return out

    def add_label(self, label: Label) -> None:
        L.check_text("label creative_id", label.creative_id, L.CREATIVE_ID_MAX)
        L.check_text("label reviewer", label.reviewer, L.REVIEWER_MAX)
        L.check_text("label note", label.note, empty=True)
        with self.session() as s:
            if s.get(CreativeRow, label.creative_id) is None:
                raise NotFoundError(f"no creative with id {label.creative_id!r} in the store")
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
            rows = [r for r in s.scalars(select(CreativeRow).order_by(CreativeRow.created_at)) if r.id not in labelled]
        latest = self.latest_verdicts()

        def priority(r: CreativeRow) -> tuple[int, float]:
            v = latest.get(r.id)
            if v is None:
                return 1, 0.0
            return (0 if v.band == "human" else 2), abs(v.p_available - 0.5)

        rows.sort(key=priority)
        return [(_creative_from_row(r), latest.get(r.id)) for r in rows[:limit]]

    def verdict_bands(self, creative_ids: Iterable[str] | None = None) -> dict[str, int]:
        """How many creatives' latest verdicts fall in each band (``none`` for a verdict without one)."""
        from collections import Counter

        latest = self.latest_verdicts(None if creative_ids is None else list(creative_ids))
        return dict(Counter(v.band or "none" for v in latest.values()))

    def awaiting_review(self) -> int:
        """How many creatives have no human label yet (the review queue's length), in one query."""
        with self.session() as s:
            labelled = select(LabelRow.creative_id)
            return int(s.scalar(select(func.count()).select_from(CreativeRow)
                                .where(CreativeRow.id.not_in(labelled))) or 0)

    # -- events -----------------------------------------------------------------------------------
    def add_events(self, events: Iterable[Event]) -> list[Event]:
        """Add events idempotently; returns the ones inserted, in the order given.

        An event's key is (kind, request_id, creative_id): an event whose key is already stored — a client
        retrying what it sent before, a log replayed into the store after a restart — is skipped, as is a
        repeat within ``events`` (the first wins; the stored event is never changed). So replaying the
        same events any number of times leaves one row per key, and ``len(result)`` says how many were new.
        Concurrent writers are safe: the unique index ``uq_events_key`` decides (``ON CONFLICT DO NOTHING``).
        Every event is validated before any is written."""
        todo: dict[tuple[str, str, str], Event] = {}
        for e in events:
            check_event(e)
            todo.setdefault((e.kind, e.request_id, e.creative_id), e)
        if not todo:
            return []
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        rows = [{"kind": e.kind, "request_id": e.request_id, "user_id": e.user_id, "ad_id": e.ad_id,
                 "creative_id": e.creative_id, "position": e.position, "propensity": e.propensity,
                 "context": e.context, "ts": e.ts, "replay": 0} for e in todo.values()]
        inserted: set[tuple[str, str, str]] = set()
        stmt = insert(EventRow).on_conflict_do_nothing(index_elements=list(EVENT_KEY)).returning(
            EventRow.kind, EventRow.request_id, EventRow.creative_id)
        with self.session() as s:  # one statement compiled once; SQLAlchemy batches the rows ("insertmanyvalues")
            inserted.update((r[0], r[1], r[2]) for r in s.execute(stmt, rows))
            s.commit()
        return [e for k, e in todo.items() if k in inserted]

    def events(self, *, kind: str | None = None) -> list[Event]:
        with self.session() as s:
            q = select(EventRow).order_by(EventRow.id)
            if kind is not None:
                q = q.where(EventRow.kind == kind)
            return [Event(r.kind, r.request_id, r.user_id, r.ad_id, r.creative_id, r.position, r.propensity,
                          dict(r.context or {}), r.ts) for r in s.scalars(q)]

    # -- cached features --------------------------------------------------------------------------
    def put_features(self, name: str, version: str, values: dict[str, dict[str, Any]]) -> None:
        L.check_text("feature name", name, L.FEATURE_NAME_MAX)
        L.check_text("feature version", version, L.FEATURE_VERSION_MAX)
        for cid, vals in values.items():
            L.check_text("feature creative_id", cid, L.CREATIVE_ID_MAX)
            L.check_json(f"features of {cid}", vals)
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


class AttemptExists(InputError):
    """An attempt of a resumable run is already stored (another writer made it first)."""


def _verdict_row(v: Verdict) -> VerdictRow:
    return VerdictRow(creative_id=v.creative_id, model_id=v.model_id, probs=v.probs, p_available=v.p_available,
                      label=v.label, created_at=v.created_at, band=v.band, ood=v.ood)
