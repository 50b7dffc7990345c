"""One Alembic tree for both databases: it goes up, down and up again, and it matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import relia.models  # noqa: F401  (all tables on the metadata)
from relia.core import migrate
from relia.core.db import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path, postgres_url):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if postgres_url is None:
        pytest.skip("PostgreSQL: set RELIA_TEST_DATABASE_URL to run")
    parsed = make_url(postgres_url)
    name = f"{parsed.database}_mig"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield parsed.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database_url):
    migrate.upgrade(empty_database_url)
    assert _tables(empty_database_url) == set(Base.metadata.tables)
    migrate.downgrade(empty_database_url, "base")
    assert _tables(empty_database_url) == set()
    migrate.upgrade(empty_database_url)
    assert _tables(empty_database_url) == set(Base.metadata.tables)


def test_models_and_migrations_agree(empty_database_url):
    migrate.upgrade(empty_database_url)
    assert _differences(empty_database_url) == []


def test_every_revision_file_is_named_by_date_and_slug():
    import re

    names = [path.name for path in (migrate.MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names, "no migrations found"
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}_[a-z0-9_]+\.py", name) for name in names), names
