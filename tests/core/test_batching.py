"""Group commit (relia.core.batching) on both databases: work queued together shares a transaction, one
failing request does not undo the others, and every answer comes after the commit."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from relia.catalog.models import Service
from relia.core.batching import GroupCommitWriter, RowInserter, _Queued
from relia.policy.models import GateCheck


@pytest.fixture
def service_id(db, org) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return int(session.scalar(select(Service.id).where(Service.slug == "checkout")))


def check_row(service_id: int, at: datetime, version: str) -> dict[str, object]:
    return {
        "at": at,
        "service_id": service_id,
        "version": version,
        "change_type": "feature",
        "phase": "pre_deploy",
        "decision": "allow",
        "reasons": [{"code": "no-restrictions", "message": "nothing restricts it"}],
        "override_id": None,
        "requested_by": "ci",
        "requested_by_user_id": None,
        "via": "api",
        "request_id": None,
    }


def stored_versions(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return list(session.scalars(select(GateCheck.version).order_by(GateCheck.id)))


def test_a_batch_of_rows_is_one_insert_and_each_future_holds_its_id(db, clock, service_id):
    inserter = RowInserter(db, GateCheck.__table__, name="test-inserter")
    now = clock.now()
    batch = [_Queued(lambda *_: None, now, Future(), check_row(service_id, now, f"v{n}")) for n in range(5)]
    inserter._write(batch)
    ids = [item.future.result(timeout=0) for item in batch]
    assert ids == sorted(ids) and len(set(ids)) == 5
    with db.reader() as session:
        assert dict(session.execute(select(GateCheck.id, GateCheck.version)).all()) == {
            row_id: f"v{n}" for n, row_id in enumerate(ids)
        }


def test_a_bad_row_fails_alone_and_the_others_are_stored(db, clock, service_id):
    inserter = RowInserter(db, GateCheck.__table__, name="test-inserter")
    now = clock.now()
    rows = [check_row(service_id, now, "good-1"), check_row(10**9, now, "bad"), check_row(service_id, now, "good-2")]
    futures = [inserter.insert(row, now) for row in rows]  # through the thread: alone or batched, the same outcome
    batch = [inserter._item(row, now) for row in rows]
    inserter._write(batch)  # and as one batch for certain
    for results in ([f.exception(timeout=10) for f in futures], [item.future.exception(timeout=0) for item in batch]):
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)
    assert sorted(stored_versions(db)) == ["good-1", "good-1", "good-2", "good-2"]


def test_work_that_fails_is_undone_alone_and_answers_come_after_the_commit(db, clock, service_id):
    writer: GroupCommitWriter[None] = GroupCommitWriter(db, name="test-writer")
    now = clock.now()

    def store(version: str):  # type: ignore[no-untyped-def]
        def work(session, _context, at):  # type: ignore[no-untyped-def]
            session.execute(GateCheck.__table__.insert(), check_row(service_id, at, version))
            if version == "fails":
                raise ValueError("refused after writing")
            # Another connection does not see it yet: the answer waits for the commit.
            return session.scalar(select(func.count()).select_from(GateCheck))

        return work

    batch = [_Queued(store(version), now, Future()) for version in ("first", "fails", "second")]
    writer._write(batch)
    assert batch[0].future.result(timeout=0) == 1 and batch[2].future.result(timeout=0) == 2
    assert isinstance(batch[1].future.exception(timeout=0), ValueError)
    assert stored_versions(db) == ["first", "second"]
    assert writer.submit(store("third"), now).result(timeout=10) == 3
