"""Group commit: many requests' small writes in one transaction, each answered only after the commit.

On SQLite every write transaction takes the database's one write lock, and each pays for BEGIN and COMMIT; on
PostgreSQL each pays a commit's round trips and WAL flush. A hot route whose writes are small and independent
(an alert arriving, a gate check recorded) queues its work here instead: one thread per writer takes the
requests waiting when a transaction starts and runs them in it, each in its own savepoint (one failing request
does not undo the others). Every future is resolved only after the commit, so a 2xx still means stored. With
one request waiting, it is a transaction of its own, as before.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from relia.core.db import Database

Context = TypeVar("Context")
# work(session, context, now): runs in the shared transaction; its result is the future's.
Work = Callable[[Session, Any, datetime], Any]


@dataclass
class _Queued:
    work: Work
    now: datetime
    future: Future[Any]
    row: dict[str, Any] | None = None  # RowInserter's row, which ``work`` inserts alone


class GroupCommitWriter(Generic[Context]):
    """Runs queued work from one thread, several per transaction.

    ``context(session, now)``, when given, is computed once per transaction and handed to every work in it
    (the intake's configuration, say). The thread starts with the first request and stops after
    ``idle_seconds`` without one: soon, because while it runs it keeps its ``Database``, and the connections
    pooled there, alive (starting one again costs far less than a request)."""

    def __init__(
        self,
        db: Database,
        *,
        name: str,
        context: Callable[[Session, datetime], Context] | None = None,
        max_batch: int = 64,
        idle_seconds: float = 2.0,
    ) -> None:
        self.db = db
        self.name = name
        self.context = context
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Work, now: datetime) -> Future[Any]:
        """Queue ``work(session, context, now)``; the future holds its result once committed (or its error)."""
        return self._enqueue(_Queued(work, now, Future()))

    def _enqueue(self, item: _Queued) -> Future[Any]:
        with self._lock:
            self._queue.put(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return item.future

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write([item for item in batch if item.future.set_running_or_notify_cancel()])

    def _write(self, batch: list[_Queued]) -> None:
        if not batch:
            return
        done: list[tuple[_Queued, Any, BaseException | None]] = []
        session = self.db.session(write=True)
        try:
            context = self.context(session, batch[0].now) if self.context is not None else None
            for item in batch:
                try:
                    with session.begin_nested():
                        done.append((item, item.work(session, context, item.now), None))
                except Exception as exc:
                    done.append((item, None, exc))
            session.commit()
        except BaseException as exc:
            session.rollback()
            for item in batch:
                item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            session.close()
        for item, result, error in done:
            if error is None:
                item.future.set_result(result)
            else:
                item.future.set_exception(error)


class RowInserter(GroupCommitWriter[None]):
    """A group-commit writer whose every request is one row of ``table`` (a record of something asked, say):
    a batch is one multi-row INSERT ... RETURNING in one transaction, without a savepoint per row. Should the
    batch fail (a row naming a service deleted meanwhile), its rows are inserted again one savepoint each, so
    only the bad ones fail. Each future holds its row's id."""

    def __init__(self, db: Database, table: Table, *, name: str, max_batch: int = 256) -> None:
        super().__init__(db, name=name, max_batch=max_batch)
        self.table = table
        self._insert_many = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        self._insert_one = insert(table).returning(table.c.id)

    def insert(self, row: dict[str, Any], now: datetime) -> Future[int]:
        return self._enqueue(self._item(row, now))

    def _item(self, row: dict[str, Any], now: datetime) -> _Queued:
        def alone(session: Session, _context: None, _now: datetime) -> int:
            return int(session.execute(self._insert_one, row).scalar_one())

        return _Queued(alone, now, Future(), row)

    def _write(self, batch: list[_Queued]) -> None:
        if len(batch) <= 1:
            super()._write(batch)
            return
        session = self.db.session(write=True)
        try:
            ids = session.execute(self._insert_many, [item.row for item in batch]).scalars().all()
            session.commit()
        except Exception:
            session.rollback()
            session.close()
            super()._write(batch)
            return
        except BaseException as exc:
            session.rollback()
            session.close()
            for item in batch:
                item.future.set_exception(exc)
            raise
        session.close()
        for item, row_id in zip(batch, ids, strict=True):
            item.future.set_result(int(row_id))
