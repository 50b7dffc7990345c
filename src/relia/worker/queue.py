"""The huey queue, picked by URL: SQLite in its own file (embedded), PostgreSQL or Redis (scale-out).

huey carries immediate work ("tick now, an alert just arrived"); the database stays the source of truth for
time, so a lost queue message delays work by at most one engine tick and never loses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from sqlalchemy.engine import make_url

from relia.core.settings import Settings

QUEUE_NAME = "relia"
TICK_NOW_TASK = "relia.tick_now"

log = structlog.get_logger(__name__)


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


class WorkerWaker:
    """Asks the workers to tick now (the ``relia.tick_now`` task), so work the API just made due (an alert group
    that must page) does not wait for the next scheduled tick. Debounced: at most one message per
    ``min_interval`` seconds per process, since one tick does everything due. A failure to enqueue is logged
    and otherwise ignored: the scheduled tick still comes."""

    def __init__(self, huey: Huey, *, min_interval: float = 0.25) -> None:
        self._enqueue = register_tick_now(huey, None)
        self.min_interval = min_interval
        self._last = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Claims this interval's wake-up: True at most once per ``min_interval`` (cheap; no I/O)."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.min_interval:
                return False
            self._last = now
            return True

    def send(self) -> None:
        """Enqueues the wake-up (blocking I/O: call it off the event loop)."""
        try:
            self._enqueue()
        except Exception:
            log.warning("worker.wake_failed", exc_info=True)


def register_tick_now(huey: Huey, wake: Callable[[], None] | None) -> Any:
    """The ``relia.tick_now`` task on ``huey``: the worker registers it with its loop's ``wake``, the API with
    nothing (it only enqueues). huey finds a task by its function's module and name, so both registrations
    must come from here."""

    def tick_now() -> None:
        if wake is not None:
            wake()

    return huey.task(name=TICK_NOW_TASK)(tick_now)
