"""The services list's read cache: a process reads its own writes at once (commits through its Database
invalidate the generation it holds), and another process's change shows within the cache's second."""

from __future__ import annotations

from sqlalchemy import text

from relia.core import generations
from relia.core.db import Database
from tests.api.support import API
from tests.factories import make_service


def slugs(client, headers) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(f"{API}/services?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    return [item["slug"] for item in response.json()["items"]]


def test_a_write_in_this_process_is_seen_by_the_next_list(client, org, db, clock):
    headers = org.headers("root:read")
    before = slugs(client, headers)
    make_service(db, clock, "fresh-service", "payments")  # through the same Database, without the API
    assert slugs(client, headers) == sorted([*before, "fresh-service"])


def test_another_process_s_write_shows_once_the_generation_ages(client, app, org, database_url, clock, monkeypatch):
    headers = org.headers("root:read")
    before = slugs(client, headers)
    other = Database(database_url)  # another process's Database: its commits are not counted here
    try:
        make_service(other, clock, "elsewhere", "payments")
    finally:
        other.dispose()
    assert slugs(client, headers) == before  # at most a second stale
    monkeypatch.setattr(app.state.generation_cache, "max_age", 0.0)
    assert slugs(client, headers) == sorted([*before, "elsewhere"])


def test_generation_cache_rules(db):
    cache = generations.GenerationCache(db, max_age=60.0)
    assert cache.fresh("things") is None
    with db.reader() as session:
        assert cache.read(session, "things") == 0
    assert cache.fresh("things") == 0
    with db.transaction() as session:
        generations.bump(session, "things")
    assert cache.fresh("things") is None  # a commit through this Database
    with db.reader() as session:
        assert cache.read(session, "things") == 1
    cache.max_age = 0.0
    assert cache.fresh("things") is None


def test_only_commits_that_bump_a_generation_invalidate(db):
    cache = generations.GenerationCache(db, max_age=60.0)
    with db.reader() as session:
        cache.read(session, "things")
    with db.transaction() as session:
        generations.bump(session, "other-things")
        session.rollback()  # undone: nothing changed
        session.execute(text("SELECT 1"))
    with db.transaction() as session:
        session.execute(text("SELECT 1"))  # a write that changes no cached collection (a recorded gate check)
    assert cache.fresh("things") == 0
    with db.transaction() as session:
        generations.bump(session, "other-things")
    assert cache.fresh("things") is None
