"""The huey queue, picked by URL: SQLite in its own file (embedded), PostgreSQL or Redis (scale-out).

huey carries immediate work ("tick now, an alert just arrived"); the database stays the source of truth for
time, so a lost queue message delays work by at most one engine tick and never loses it.
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from sqlalchemy.engine import make_url

from relia.core.settings import Settings

QUEUE_NAME = "relia"


def make_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    url = settings.effective_queue_url
    backend = make_url(url).get_backend_name() if "://" in url else ""
    if backend == "sqlite":
        database = make_url(url).database or str(settings.data_dir / "queue.db")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        huey: Huey = SqliteHuey(QUEUE_NAME, filename=database, results=False, utc=True, timeout=30)
    elif backend == "postgresql":
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        huey = PostgresHuey(QUEUE_NAME, dsn=dsn, results=False, utc=True)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey(QUEUE_NAME, url=url, results=False, utc=True)
    else:
        raise ValueError(f"RELIA_QUEUE_URL {url!r}: use sqlite:///path, postgresql://... or redis://...")
    huey.immediate = immediate
    return huey
