"""Generation counters and the read cache they validate.

A collection's generation is bumped in the transaction of every change to it; a reader fetches the current
generation in its own snapshot and reuses what it rendered for that generation before. Correct across
replicas because the counter lives in the database.

``GenerationCache`` saves the query on the hottest reads: a generation read in this process is trusted for at
most a second, and only while no transaction that bumped a generation has committed through this process's
``Database`` since (so this process always reads its own writes at once; another process's change shows within
the second).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from relia.core.db import GENERATION_BUMPED
from relia.core.models import Generation


def bump(session: Session, name: str) -> None:
    session.info[GENERATION_BUMPED] = True  # the commit invalidates this process's generation caches at once
    updated = session.execute(update(Generation).where(Generation.name == name).values(value=Generation.value + 1))
    if updated.rowcount == 0:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(Generation).values(name=name, value=1)
        session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"value": Generation.value + 1}))


_CURRENT = select(Generation.value).where(Generation.name == bindparam("name"))


def current(session: Session, name: str) -> int:
    return session.connection().execute(_CURRENT, {"name": name}).scalar() or 0


class GenerationCache:
    def __init__(self, db: Any, *, max_age: float = 1.0) -> None:
        self._db = db
        self.max_age = max_age
        self._seen: dict[str, tuple[int, float, int]] = {}  # name -> (value, read at, local commits then)

    def fresh(self, name: str) -> int | None:
        """The generation if it was read less than ``max_age`` ago and this process has committed nothing
        since; None otherwise (read it with ``read``)."""
        found = self._seen.get(name)
        if found is None:
            return None
        value, read_at, commits = found
        if commits != self._db.local_commits or time.monotonic() - read_at >= self.max_age:
            return None
        return value

    def read(self, session: Session, name: str) -> int:
        commits = self._db.local_commits  # before the query: a commit during it makes the value stale at once
        value = current(session, name)
        self._seen[name] = (value, time.monotonic(), commits)
        return value


class RenderCache:
    """A small, thread-safe LRU of rendered responses keyed by (generation, request parameters)."""

    def __init__(self, capacity: int = 256) -> None:
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def get_or_render(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        rendered = render()
        with self._lock:
            self._entries[key] = rendered
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return rendered
