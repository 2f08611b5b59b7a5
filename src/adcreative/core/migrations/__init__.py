"""Schema migrations (Alembic), shipped inside the package.

Revisions live in ``versions/``: ``0001`` is the schema every store had before migrations (the baseline),
each later one a change. The store's revision is kept in its ``alembic_version`` table.

- A fresh store is created at the newest revision (the head): tables from the models, then stamped.
- Opening any other store checks its revision first (:func:`ensure`) and refuses one that is older (or has
  tables but no revision: a store from before migrations) or newer than this code, naming the command to
  run; nothing is changed behind the user's back.
- ``adcreative db upgrade`` (:func:`upgrade`) brings a store to the head, a legacy store by stamping the
  baseline first; each upgrade runs in one transaction (SQLite and PostgreSQL both have transactional DDL).

To change the schema: change the models in :mod:`adcreative.core.store`, add ``versions/000N_what.py``
(template: ``script.py.mako``; SQLite needs ``op.batch_alter_table`` to drop or alter a column) and set
:data:`HEAD` to it. The test
``tests/core/test_migrations.py::test_models_match_migrations`` fails until the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, inspect, text

from adcreative.core.errors import InputError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from adcreative.config import Settings
    from adcreative.core.database import Location

HERE = Path(__file__).resolve().parent
HEAD = "0005"  # the newest revision in versions/ (a test checks); opening a store at HEAD needs no Alembic import
BASELINE = "0001"
BASELINE_TABLES = ("products", "creatives", "verdicts", "labels", "events", "features")
_LOCK = 0x61646372  # PostgreSQL advisory lock id ("adcr"): one creator or migrator per database at a time


class StoreSchemaError(InputError):
    """The store's schema is not the one this code was written for; the message says what to run."""


@dataclass(frozen=True)
class Status:
    where: str  # the database (password hidden) and schema
    current: str | None  # the store's revision; None when fresh or legacy
    head: str
    legacy: bool  # tables from before migrations, no revision recorded
    fresh: bool  # no tables at all

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def config(connection: Connection) -> Config:
    """An Alembic config that runs this package's scripts on ``connection`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE))


def head() -> str:
    h = script().get_current_head()
    assert h is not None, "no migrations shipped"
    return h


def known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script().get_revision(revision) is not None
    except CommandError:
        return False


def revision(conn: Connection) -> str | None:
    """The store's revision (Alembic's ``alembic_version`` row), None when it has none."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def status(conn: Connection, where: str) -> Status:
    current = revision(conn)
    tables = set(inspect(conn).get_table_names()) if current is None else set()
    return Status(where, current, HEAD, legacy=current is None and bool(tables & set(BASELINE_TABLES)),
                  fresh=current is None and not tables)


def refusal(st: Status) -> StoreSchemaError:
    """The one line that says why a store cannot be opened and what to run."""
    if st.legacy:
        return StoreSchemaError(f"store {st.where} predates schema migrations: run `adcreative db upgrade` "
                                "(it keeps every row)")
    if st.current is not None and not known(st.current):
        return StoreSchemaError(f"store {st.where} is at schema revision {st.current}, newer than this "
                                f"adcreative ({st.head}): upgrade adcreative (`pip install -U adcreative`)")
    return StoreSchemaError(f"store {st.where} is at schema revision {st.current or 'none'}, this adcreative "
                            f"needs {st.head}: run `adcreative db upgrade`")


def ensure(loc: Location, engine: Engine, metadata: MetaData) -> None:
    """Open check: a store at the head passes (one query, no Alembic import); a fresh one is created at the
    head (tables from ``metadata``, stamped) in one transaction; anything else is refused (:func:`refusal`)."""
    from adcreative.core.database import make_engine

    with engine.connect() as conn:
        # one read decides: reading the revision twice let a creator commit in between, and a store it had
        # just made at the head was refused as "at 0005, needs 0005" (seen once in CI, concurrent opens)
        st = status(conn, loc.describe())
    if st.up_to_date:
        return
    # Outside the lock ``status`` reads twice (is there a version? which tables?), and a creator may commit in
    # between: it then looks like a store from before migrations. So that case, like a fresh one, is decided
    # again under the lock; a store at another known revision has no creator to race with.
    if not st.fresh and not st.legacy:
        raise refusal(st)
    creator = make_engine(loc, migrating=True)
    try:
        with creator.begin() as conn:
            _lock(conn, loc.schema)
            st = status(conn, loc.describe())  # again, under the lock: another process may have just made it
            if st.fresh:
                from alembic.runtime.migration import MigrationContext

                metadata.create_all(conn)
                MigrationContext.configure(conn).stamp(script(), "head")
            elif not st.up_to_date:
                raise refusal(st)
    finally:
        creator.dispose()


def upgrade(settings: Settings) -> tuple[Status, Status]:
    """``adcreative db upgrade``: the store of ``settings`` brought to the head; (before, after)."""
    from alembic import command

    from adcreative.core.database import home_schema, location, make_engine

    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    loc = location(settings)
    engine = make_engine(loc, migrating=True)
    try:
        with engine.begin() as conn:
            _lock(conn, loc.schema)
            before = status(conn, loc.describe())
            if before.current is not None and not known(before.current):
                raise refusal(before)
            if loc.adopting:
                _check_images_here(conn, home, before.where)
            if not before.up_to_date:
                cfg = config(conn)
                if before.legacy:
                    missing = sorted(set(BASELINE_TABLES) - set(inspect(conn).get_table_names()))
                    if missing:
                        raise StoreSchemaError(f"the store at {before.where} lacks table(s) {', '.join(missing)}"
                                               " of the baseline schema; it is not an adcreative store")
                    command.stamp(cfg, BASELINE)
                command.upgrade(cfg, "head")
            after = status(conn, loc.describe())
    finally:
        engine.dispose()
    if loc.adopting and loc.schema is not None:
        home_schema(home, loc.schema)  # committed: from now on this home's rows are the legacy schema's
    return before, after


def _check_images_here(conn: Connection, home: Path, where: str) -> None:
    """Before a home adopts the legacy store: it must hold the store's images (some home on this database
    wrote them; only that one may take its rows)."""
    from adcreative.core.blobs import BlobStore

    blobs = BlobStore(home / "blobs")
    shas = [r[0] for r in conn.execute(text("SELECT image_sha FROM products ORDER BY id LIMIT 20"))]
    missing = [s for s in shas if not blobs.exists(s)]
    if missing:
        raise StoreSchemaError(f"store {where} was written before homes had their own schemas, and its images "
                               f"are not in {blobs.root} (e.g. {missing[0][:12]}…): run `adcreative --home DIR db "
                               "upgrade` with the home that wrote it")


def current(settings: Settings) -> Status:
    """``adcreative db current``: where the store is and its revision against the code's head."""
    from adcreative.core.database import location, make_engine

    if not Path(settings.home).is_dir():  # nothing to look at, and nothing is created by looking
        return Status(f"{settings.home} (no such folder)", None, HEAD, legacy=False, fresh=True)
    loc = location(settings)
    engine = make_engine(loc)
    try:
        with engine.connect() as conn:
            return status(conn, loc.describe())
    finally:
        engine.dispose()


def _lock(conn: Connection, schema: str | None) -> None:
    """Serialise creators and migrators: PostgreSQL takes an advisory lock (and makes the home's schema);
    SQLite already holds the write lock (``BEGIN IMMEDIATE``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        if schema is not None:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
