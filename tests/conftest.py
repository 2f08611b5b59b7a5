"""Shared fixtures: real classes at tiny sizes, seeded, on CPU.

The store tests run twice in CI (``scripts/test.sh``): on SQLite with the whole suite, which lists every test
that used a database (``--list-store-tests FILE``; a test that only runs on PostgreSQL is marked
``@pytest.mark.postgres``; one whose store is SQLite by design, whatever the environment says, is marked
``@pytest.mark.sqlite_only`` and not listed), then those tests again on PostgreSQL
(``ADCREATIVE_TEST_POSTGRES=URL`` of a server where databases may be created: each test module gets a fresh
database, dropped afterwards; every home in it is its own schema, see ``adcreative.core.database``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from adcreative.core.store import Store
from adcreative.core.types import Product

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
JD_META = Path(__file__).parent / "data" / "jd_products.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


PG_SERVER = os.environ.get("ADCREATIVE_TEST_POSTGRES")
if not PG_SERVER:
    os.environ.pop("ADCREATIVE_DATABASE_URL", None)  # tests make their own stores, never the user's database
_used_store: set[str] = set()  # test ids that opened a database connection
_sqlite_only: set[str] = set()  # test ids whose stores are SQLite by design (not rerun on PostgreSQL)
_current: list[str] = [""]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--list-store-tests", metavar="FILE", default=None,
                     help="write the ids of the tests that used a store's database to FILE (one per line)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--list-store-tests"):
        from sqlalchemy import Engine, event

        event.listen(Engine, "engine_connect", lambda *_: _used_store.add(_current[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    _current[0] = item.nodeid  # fixtures set up for this test count as this test's use
    if item.get_closest_marker("postgres") is not None:
        _used_store.add(item.nodeid)
    if item.get_closest_marker("sqlite_only") is not None:
        _sqlite_only.add(item.nodeid)
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist, on the controller: a worker's list of store tests joins the controller's."""
    _used_store.update(getattr(node, "workeroutput", {}).get("store_tests", []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = session.config.getoption("--list-store-tests")
    if out:
        ids = sorted(i for i in _used_store - _sqlite_only if i)
        worker = getattr(session.config, "workeroutput", None)
        if worker is not None:  # an xdist worker: the controller writes the file (pytest_testnodedown)
            worker["store_tests"] = ids
            return
        Path(out).write_text("".join(f"{i}\n" for i in ids))


@pytest.fixture(autouse=True, scope="module")
def _database_per_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """With ``ADCREATIVE_TEST_POSTGRES``: a fresh PostgreSQL database for this module's stores."""
    if not PG_SERVER:
        yield
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"adc_test_{secrets.token_hex(6)}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    before = os.environ.get("ADCREATIVE_DATABASE_URL")
    os.environ["ADCREATIVE_DATABASE_URL"] = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ADCREATIVE_DATABASE_URL", None)
        else:
            os.environ["ADCREATIVE_DATABASE_URL"] = before
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(home=tmp_path / "store")


@pytest.fixture(scope="session")
def sample_products() -> list[Product]:
    from adcreative.catalogue.sample import sample_catalogue

    return sample_catalogue()


@pytest.fixture(scope="session")
def jd_products() -> list[Product]:
    """The real JD cutouts in ../shared/data/products with descriptive titles."""
    folder = SHARED / "products"
    if not folder.is_dir():
        pytest.skip(f"real product cutouts not available ({folder} is absent)")
    from adcreative.catalogue.importer import read_catalogue_folder

    return read_catalogue_folder(folder, JD_META)


def jd_meta() -> list[dict[str, object]]:
    return list(json.loads(JD_META.read_text()))
