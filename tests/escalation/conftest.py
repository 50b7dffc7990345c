"""Fixtures of the paging tests: an organisation whose users are reached on a local HTTP receiver, and a
stand-in for the alerting domain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relia.notify.settings import notify_settings
from tests.escalation.support import FakeAlerting, Receiver, receiver_fixture, set_contacts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from receiver_fixture()


@pytest.fixture(autouse=True)
def fresh_notify_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the environment; each test starts from the defaults (plus what it sets)."""
    for name in (
        "RELIA_NOTIFY_THROTTLE_LIMIT",
        "RELIA_NOTIFY_BUNDLE_MAX",
        "RELIA_WATCHDOG_URL",
        "RELIA_WATCHDOG_NOTIFY",
    ):
        monkeypatch.delenv(name, raising=False)
    notify_settings.cache_clear()
    yield
    notify_settings.cache_clear()


@pytest.fixture
def paging_org(db, clock, org, receiver):  # type: ignore[no-untyped-def]
    """The shared test organisation (root; alice (manager) and bob in payments, which owns checkout; carol
    (manager) in search, which owns ranker), each user reachable by a webhook at /u/<username>."""
    for username in ("root", "alice", "bob", "carol"):
        set_contacts(
            db, clock, username, [{"name": "hook", "kind": "webhook", "address": receiver.url(f"/u/{username}")}]
        )
    return org


@pytest.fixture
def alerting(db, clock) -> FakeAlerting:  # type: ignore[no-untyped-def]
    return FakeAlerting(db, clock)
