"""Shared fixtures. Every test that takes ``db`` (or anything built on it) runs on SQLite and, when
RELIA_TEST_DATABASE_URL points at a PostgreSQL server, on PostgreSQL too.

SQLite: the schema is migrated once into a template file that each test copies. PostgreSQL: each pytest
process creates its own database from the given URL, migrates it once, and truncates every table between
tests; the database is dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from relia.api.app import create_app
from relia.core import migrate
from relia.core.clock import SimulatedClock
from relia.core.db import Base, Database
from relia.core.settings import Settings

# Property tests print a blob that replays a failure exactly (`@reproduce_failure`). CI runs the same examples
# on every run (HYPOTHESIS_PROFILE=ci, set by .ci/run), so a red build is never a roll of the dice; `make test`
# elsewhere draws new ones each time and keeps finding what those miss.
hypothesis_settings.register_profile("default", print_blob=True)
hypothesis_settings.register_profile("ci", print_blob=True, derandomize=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The CLI runner fixtures (`relia`, `server`, ...) are used by every domain's CLI tests.
pytest_plugins = ["tests.cli_fixtures"]

PG_ENV = "RELIA_TEST_DATABASE_URL"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [
        report.nodeid
        for report in terminalreporter.stats.get("skipped", [])
        if report.nodeid.endswith("[postgresql]") or "[postgresql-" in report.nodeid
    ]
    if not skipped:
        return
    by_file: dict[str, int] = {}
    for nodeid in skipped:
        by_file[nodeid.split("::")[0]] = by_file.get(nodeid.split("::")[0], 0) + 1
    terminalreporter.write_sep("-", "PostgreSQL")
    terminalreporter.write_line(
        f"Skipped the PostgreSQL runs of {len(skipped)} tests (their SQLite runs did run). "
        f"Set {PG_ENV}=postgresql+psycopg://user@host/db to run them too:"
    )
    for file, count in sorted(by_file.items()):
        terminalreporter.write_line(f"  {file}: {count} tests")


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    parsed = make_url(base)
    name = f"{parsed.database}_t_{_worker_id()}_{uuid.uuid4().hex[:6]}".lower()
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = parsed.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "relia.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    _truncate_all(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        queue_url=f"sqlite:///{tmp_path / 'data' / 'queue.db'}",
        secret_key="test-secret-key-not-for-production",
        log_json=False,
    )


@pytest.fixture
def app(settings: Settings, db: Database, clock: SimulatedClock):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db, clock=clock)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


@dataclass
class Actor:
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def org(db: Database, clock: SimulatedClock):  # type: ignore[no-untyped-def]
    """A small organisation: an admin, two teams with members, and tokens of every scope."""
    from tests.factories import build_org

    return build_org(db, clock)
