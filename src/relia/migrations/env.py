"""Alembic environment: one tree for SQLite and PostgreSQL; batch mode so SQLite can ALTER tables."""

from __future__ import annotations

from alembic import context

import relia.models  # noqa: F401  (every domain's tables on Base.metadata)
from relia.core.db import Base, create_engine_for

config = context.config
database_url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # Foreign keys off while migrating SQLite: batch mode recreates tables, which would trip them.
    engine = create_engine_for(database_url, foreign_keys=False, pool=False)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("Relia migrations run online only: relia db upgrade")
run_migrations()
