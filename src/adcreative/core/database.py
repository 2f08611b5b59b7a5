"""Where a home's tables live, and the engine that reaches them.

A *home* (``--home DIR`` / ``ADCREATIVE_HOME``) is one store: its rows and its image blobs (``DIR/blobs/``)
belong together, because rows name blobs by their sha256.

- SQLite (the default): the rows are in ``DIR/adcreative.db``.
- PostgreSQL (``ADCREATIVE_DATABASE_URL=postgresql+psycopg://…``): the database is shared, and each home
  gets **its own schema** in it, named once at random and recorded in ``DIR/store.json``. Two homes on one
  database therefore never see each other's rows (whose blobs they do not have); a fresh home starts
  empty; moving the folder keeps its schema. To share a store between machines, share the home folder.
- Any other explicit URL (e.g. ``sqlite:////srv/x.db``) is used as given: it is the store, so use it with
  one home.

Before schemas per home, every home's rows went to the database's ``public`` schema. Such a store is
*adopted* by the home that holds its images: a home with images but no ``store.json`` on a database whose
``public`` schema holds a store without a revision opens as that (legacy) store, and ``adcreative db upgrade``
checks the home holds its images, upgrades it and records ``public`` in ``store.json``. From then on other
homes get schemas of their own. A new home (no images yet) never adopts: it starts empty in its own schema.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect

from adcreative.config import Settings
from adcreative.core.errors import InputError

STORE_FILE = "store.json"  # in the home: which PostgreSQL schema holds this home's rows
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


LEGACY_SCHEMA = "public"  # where every home's rows went before schemas per home


@dataclass(frozen=True)
class Location:
    url: str
    schema: str | None  # PostgreSQL schema of this home; None for SQLite
    adopting: bool = False  # the legacy store in ``public``, which ``db upgrade`` will record as this home's

    @property
    def dialect(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]

    def describe(self) -> str:
        """The URL without its password (for messages and ``db current``), plus the schema."""
        shown = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", self.url)
        return f"{shown} (schema {self.schema})" if self.schema else shown


SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def checked_url(url: str) -> str:
    """``url`` if SQLAlchemy can parse it and it names a database the store runs on, else an InputError naming
    ``ADCREATIVE_DATABASE_URL`` (a typo there was an ArgumentError or a missing-driver traceback)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        dialect = make_url(url).get_backend_name()
    except ArgumentError:
        raise InputError("ADCREATIVE_DATABASE_URL is not a database URL (e.g. postgresql+psycopg://user@host/db)"
                         ) from None
    if dialect not in SUPPORTED_DIALECTS:
        raise InputError(f"ADCREATIVE_DATABASE_URL names a {dialect} database; the store runs on "
                         f"{' or '.join(SUPPORTED_DIALECTS)}")
    return url


def location(settings: Settings) -> Location:
    """The database URL and, on PostgreSQL, the schema of ``settings.home`` (created on first use)."""
    url = checked_url(settings.resolved_database_url())
    if not url.startswith("postgresql"):
        return Location(url, None)
    home = Path(settings.home)
    if not (home / STORE_FILE).exists() and (home / "blobs").is_dir() and _unadopted_legacy_store(url):
        return Location(url, LEGACY_SCHEMA, adopting=True)
    return Location(url, home_schema(home))


def store_exists(settings: Settings) -> bool:
    """Whether ``settings.home`` already has a store, found without creating anything (opening one creates it):
    SQLite, the database file; PostgreSQL, the home's ``store.json``, or its blobs (a store from before schemas
    per home, which :func:`location` may adopt)."""
    from sqlalchemy.engine import make_url

    url = make_url(checked_url(settings.resolved_database_url()))
    home = Path(settings.home)
    if url.get_backend_name() == "sqlite":
        return url.database in (None, "", ":memory:") or Path(url.database).exists()
    return (home / STORE_FILE).exists() or (home / "blobs").is_dir()  # PostgreSQL


def _unadopted_legacy_store(url: str) -> bool:
    """Whether ``public`` holds a store written before schemas per home that no home has upgraded yet."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names(schema=LEGACY_SCHEMA))
    finally:
        engine.dispose()
    return {"products", "creatives"} <= names and "alembic_version" not in names


def home_schema(home: Path, new: str | None = None) -> str:
    """The home's PostgreSQL schema, from ``home/store.json``; a home without one records ``new`` (default: a
    new random name) first."""
    path = home / STORE_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / f".{STORE_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.write_text(json.dumps({"postgresql_schema": new or f"adcreative_{secrets.token_hex(8)}"}) + "\n")
        try:
            os.link(tmp, path)  # atomic and exclusive: two processes opening a fresh home agree on one schema
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        schema = json.loads(path.read_text())["postgresql_schema"]
    except (ValueError, KeyError, TypeError):
        raise InputError("not a store file (expected {\"postgresql_schema\": NAME})", source=path) from None
    if not isinstance(schema, str) or not _SCHEMA.match(schema):
        raise InputError(f"schema name {schema!r} is not a plain lower-case identifier", source=path)
    return schema


def _journal_wal(cur: Any) -> None:
    """Switch a SQLite database to WAL. On a fresh file this needs an exclusive lock, and SQLite answers "database
    is locked" at once, without its busy timeout, while another connection is creating the tables; so wait and
    retry for up to 30 s. (WAL persists in the file: once set, the pragma takes no lock.)"""
    import sqlite3
    import time

    deadline = time.monotonic() + 30.0
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_engine(loc: Location, *, migrating: bool = False) -> Engine:
    """An engine on ``loc``: SQLite with WAL, full sync and foreign keys; PostgreSQL with the home's schema
    first on the search path. ``migrating``: every transaction is explicit (SQLite: ``BEGIN IMMEDIATE``),
    so a schema change or a fresh store's creation commits whole or not at all."""
    connect_args: dict[str, Any] = {}
    if loc.schema is not None:
        connect_args["options"] = f"-c search_path={loc.schema}"
    engine = create_engine(loc.url, connect_args=connect_args)
    if loc.dialect == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _rec: Any) -> None:  # durability + concurrent readers
            cur = conn.cursor()
            _journal_wal(cur)
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            if migrating:
                conn.isolation_level = None  # pysqlite would not BEGIN before DDL; we do it below

        if migrating:
            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock up front: concurrent creators queue
    return engine
