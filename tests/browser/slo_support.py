"""SLOs for the browser tests: one in each state, fed with a day of pushed minutes and evaluated once.

At the shared ``clock`` fixture's time (2026-03-02 09:00 UTC), worst first as the list sorts them:

| SLO                  | service      | team       | state             | why                                        |
| -------------------- | ------------ | ---------- | ----------------- | ------------------------------------------ |
| refunds-availability | payments-api | payments   | exhausted         | 3 % errors all day against a 99 % target   |
| checkout-submit      | checkout     | payments   | at risk           | 8 % errors in the last 20 minutes: pages   |
| search-latency       | search       | storefront | healthy (2 obj.)  | a few slow requests                        |
| identity-login       | identity     | platform   | no data           | evaluated, but nothing was ever pushed     |
| edge-synthetics      | edge-gateway | platform   | not evaluated yet | created after the evaluation               |

``checkout-submit`` is listed above ``search-latency`` although it has more budget left (79.6 % against
60 %): it is at risk because it pages. The SLOs of examples/ are evaluated too; nothing was pushed for
them, so they join ``identity-login`` in "no data" (ordered by name).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from relia.core.auth import Principal
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.slo import service
from relia.slo.evaluator import Evaluator
from relia.slo.schemas import EventBatch, SLOCreate
from tests.browser.support import examples

NOW = datetime.fromisoformat("2026-03-02T09:00:00+00:00")  # the shared ``clock`` fixture's start
DAY_OF_MINUTES = 24 * 60
OPERATOR = Principal.system("browser-tests")

SEEDED = [  # (SLO, service, state), worst first
    ("refunds-availability", "payments-api", "exhausted"),
    ("checkout-submit", "checkout", "at risk"),
    ("search-latency", "search", "healthy"),
    ("identity-login", "identity", "no data"),
    ("edge-synthetics", "edge-gateway", "not evaluated yet"),
]
STATES = ["exhausted", "at risk", "healthy", "no data", "not evaluated yet"]


def example_slos(service_slug: str | None = None) -> list[str]:
    """Names of the SLOs in examples/ (of one service), sorted."""
    return sorted(
        name for name, spec in examples("SLO").items() if service_slug is None or spec["service"] == service_slug
    )


def expected_order(service_slug: str | None = None) -> list[tuple[str, str]]:
    """(SLO, state) as the list shows them: worst state first; the examples' SLOs have no data, and SLOs
    without data are ordered by name."""
    seeded = [(name, state) for name, service_of, state in SEEDED if service_slug in (None, service_of)]
    no_data = sorted([name for name, state in seeded if state == "no data"] + example_slos(service_slug))
    ordered = [item for item in seeded if item[1] != "no data"] + [(name, "no data") for name in no_data]
    return sorted(ordered, key=lambda item: STATES.index(item[1]))  # stable: keeps the order within a state


def _create(session: Any, name: str, service_slug: str, **spec: Any) -> None:
    body = {
        "name": name,
        "service": service_slug,
        "indicator": {"ratio": {}},
        "window": {"rolling": "1d"},
        "objectives": [{"target": 0.99}],
        **spec,
    }
    service.create_slo(session, actor=OPERATOR, data=SLOCreate.model_validate(body), now=NOW)


def _push(db: Database, name: str, bad_per_minute: list[float], *, objective: str | None = None) -> None:
    """One pre-counted point per minute of 100 events, ending at the minute before NOW."""
    start = NOW - timedelta(minutes=len(bad_per_minute))
    points = [
        {"timestamp": (start + timedelta(minutes=index)).isoformat(), "bad": bad, "total": 100}
        for index, bad in enumerate(bad_per_minute)
    ]
    batch = EventBatch.model_validate({"points": points, "objective": objective})
    with db.transaction() as session:
        service.ingest(session, actor=OPERATOR, name=name, batch=batch, now=NOW)


def seed_slos(db: Database) -> None:
    with db.transaction() as session:
        _create(
            session, "refunds-availability", "payments-api", displayName="Refunds go through", window={"rolling": "7d"}
        )
        _create(
            session,
            "checkout-submit",
            "checkout",
            displayName="Checkout submissions succeed",
            description="Share of checkout submissions answered without a server error.",
        )
        _create(
            session,
            "search-latency",
            "search",
            indicator={"threshold": {"metric": None, "op": "lte", "unit": "s"}},
            objectives=[
                {"name": "fast", "displayName": "Fast searches", "target": 0.95, "threshold": 0.3},
                {"name": "ok", "target": 0.99, "threshold": 1.0},
            ],
        )
        _create(session, "identity-login", "identity")
    _push(db, "refunds-availability", [3.0] * DAY_OF_MINUTES)
    _push(db, "checkout-submit", [0.1] * (DAY_OF_MINUTES - 20) + [8.0] * 20)
    _push(db, "search-latency", [2.0] * DAY_OF_MINUTES, objective="fast")
    _push(db, "search-latency", [0.2] * DAY_OF_MINUTES, objective="ok")
    Evaluator().tick(db, SimulatedClock(NOW))
    with db.transaction() as session:
        _create(session, "edge-synthetics", "edge-gateway", indicator={"probe": {}})
