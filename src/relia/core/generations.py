"""Generation counters and the read cache they validate.

A collection's generation is bumped in the transaction of every change to it; a reader fetches the current
generation in its own snapshot and reuses what it rendered for that generation before. Cheap, exact (no
time-based expiry), and correct across replicas because the counter lives in the database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from relia.core.models import Generation


def bump(session: Session, name: str) -> None:
    updated = session.execute(update(Generation).where(Generation.name == name).values(value=Generation.value + 1))
    if updated.rowcount == 0:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(Generation).values(name=name, value=1)
        session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"value": Generation.value + 1}))


_CURRENT = select(Generation.value).where(Generation.name == bindparam("name"))


def current(session: Session, name: str) -> int:
    return session.connection().execute(_CURRENT, {"name": name}).scalar() or 0


class RenderCache:
    """A small, thread-safe LRU of rendered responses keyed by (generation, request parameters)."""

    def __init__(self, capacity: int = 256) -> None:
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

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
