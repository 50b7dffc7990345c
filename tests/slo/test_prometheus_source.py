"""The Prometheus source against a fake Prometheus HTTP API on a local socket: counts land in the minute each
query point covers, history is backfilled in bounded chunks, failures are recorded and the gap is filled on
recovery, transitions reach the timeline once, the data source's headers and timeout are used, and a tick's
work is bounded. Everything runs on the simulated clock."""

from __future__ import annotations

import itertools
import math
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from relia.catalog.models import Service
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.core.models import TimelineEvent
from relia.slo import prometheus, service
from relia.slo.evaluator import Evaluator
from relia.slo.models import SLO, Objective, ObjectiveStatus, Rollup, SourceState
from relia.slo.prometheus import FetchReport, PrometheusSource
from relia.slo.rules import epoch_minute
from relia.slo.schemas import DataSourceSpec, SLOCreate, SLOSpec
from tests.factories import OPERATOR, make_service, make_team
from tests.slo.fake_prometheus import FakePrometheus, Series

GOOD = 'sum(rate(http_requests_total{job="checkout",code!~"5.."}[{{.window}}]))'
BAD = 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{ .window }}]))'
TOTAL = 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))'
# What Prometheus receives: the window is one minute, so each point covers exactly one minute.
GOOD_1M = 'sum(rate(http_requests_total{job="checkout",code!~"5.."}[1m]))'
BAD_1M = 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[1m]))'
TOTAL_1M = 'sum(rate(http_requests_total{job="checkout"}[1m]))'
RATIO = {"good": GOOD, "total": TOTAL}


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


def minute_at(hour: int, minute: int) -> int:
    return epoch_minute(at(hour, minute))


def covered_minute(timestamp: int) -> int:
    """The minute a [1m] window evaluated at ``timestamp`` covers: the one ending there."""
    return timestamp // 60 - 1


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    yield server
    server.stop()


@pytest.fixture
def checkout(db: Database, clock: SimulatedClock) -> int:
    """The service the SLOs belong to; returns its id (timeline events carry it)."""
    make_team(db, clock, "payments", [])
    make_service(db, clock, "checkout", "payments")
    with db.reader() as session:
        return session.scalars(select(Service.id).where(Service.slug == "checkout")).one()


def add_source(db: Database, clock: SimulatedClock, url: str, name: str = "prom", **spec: Any) -> None:
    with db.transaction() as session:
        service.upsert_data_source(
            session,
            actor=OPERATOR,
            name=name,
            spec=DataSourceSpec.model_validate({"type": "prometheus", "url": url, **spec}),
            now=clock.now(),
        )


def slo_body(indicator: dict[str, Any], *, source: str = "prom", **spec: Any) -> dict[str, Any]:
    return {
        "service": "checkout",
        "indicator": {"source": source, **indicator},
        "window": {"rolling": "30d"},
        "objectives": [{"target": 0.99}],
        **spec,
    }


def add_slo(db: Database, clock: SimulatedClock, name: str, indicator: dict[str, Any], **spec: Any) -> None:
    with db.transaction() as session:
        service.create_slo(
            session,
            actor=OPERATOR,
            data=SLOCreate.model_validate({"name": name, **slo_body(indicator, **spec)}),
            now=clock.now(),
        )


def state_of(db: Database, name: str) -> SourceState:
    with db.reader() as session:
        slo_id = session.scalars(select(SLO.id).where(SLO.name == name)).one()
        state = session.get(SourceState, slo_id)
        assert state is not None
        return state


def stored(db: Database, name: str) -> dict[tuple[str, int], tuple[float, float]]:
    """(objective, minute) -> (good, total) of one SLO."""
    with db.reader() as session:
        rows = session.execute(
            select(Objective.key, Rollup.minute, Rollup.good, Rollup.total)
            .join(Objective, Rollup.objective_id == Objective.id)
            .join(SLO, Objective.slo_id == SLO.id)
            .where(SLO.name == name)
        ).all()
    return {(key, minute): (good, total) for key, minute, good, total in rows}


def source_events(db: Database) -> list[TimelineEvent]:
    with db.reader() as session:
        return list(
            session.scalars(
                select(TimelineEvent).where(TimelineEvent.type.like("slo.source.%")).order_by(TimelineEvent.id)
            )
        )


def tick(db: Database, clock: SimulatedClock, source: PrometheusSource | None = None) -> FetchReport:
    return (source or PrometheusSource()).tick(db, clock)


def steady(rate: float, since: int = minute_at(8, 0), until: int | None = None) -> Series:
    """A constant per-second rate for every minute in [since, until)."""

    def series(timestamp: int) -> float | None:
        minute = covered_minute(timestamp)
        return rate if minute >= since and (until is None or minute < until) else None

    return series


# ------------------------------------------------------------------------------------------- minute counts


def test_counts_land_in_the_minute_each_query_point_covers(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    point_a, point_b = int(at(8, 55).timestamp()), int(at(9, 0).timestamp())
    total = {point_a: 2.0, point_b: 5.0}
    good = {point_a: 1.5, point_b: 4.0}
    fake.answer(TOTAL_1M, total.get)
    fake.answer(GOOD_1M, good.get)

    clock.set(at(9, 0, 40))  # 08:59 ended 40 s ago: complete, since the scrape closing it has landed
    report = tick(db, clock)

    assert report.failures == 0 and report.minutes_written == 2
    # A rate over [08:54, 08:55] is minute 08:54; rate x 60 s = the minute's events.
    assert stored(db, "checkout-availability") == {
        ("default", minute_at(8, 54)): (90.0, 120.0),
        ("default", minute_at(8, 59)): (240.0, 300.0),
    }
    state = state_of(db, "checkout-availability")
    assert state.fetched_through_minute == minute_at(8, 59)
    assert state.backfilled and not state.failing and state.last_error is None
    assert state.last_sample_at == at(9, 0)
    for request in fake.requests:
        assert request.method == "POST" and request.path == "/api/v1/query_range"
        assert request.params["step"] == "60" and request.start % 60 == 0
    assert fake.requests[-1].end == int(at(9, 0).timestamp())  # the point covering 08:59
    assert {request.query for request in fake.requests} == {GOOD_1M, TOTAL_1M}


def test_each_new_minute_is_read_once_after_it_settles(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(2.0))
    fake.answer(GOOD_1M, steady(2.0))
    clock.set(at(9, 0, 40))
    tick(db, clock)
    backfill_requests = len(fake.requests)

    clock.set(at(9, 0, 55))  # nothing new yet
    assert tick(db, clock).fetches == 0
    clock.set(at(9, 1, 20))  # 09:00 ended, but only 20 s ago
    assert tick(db, clock).fetches == 0
    clock.set(at(9, 1, 30))
    report = tick(db, clock)

    assert report.fetches == 1 and report.minutes_written == 1
    new = fake.requests[backfill_requests:]
    assert len(new) == 2
    assert all(request.start == request.end == int(at(9, 1).timestamp()) for request in new)
    assert stored(db, "checkout-availability")[("default", minute_at(9, 0))] == (120.0, 120.0)
    assert state_of(db, "checkout-availability").fetched_through_minute == minute_at(9, 0)


def test_bad_over_total_counts_good_as_the_rest(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-errors", {"ratio": {"bad": BAD, "total": TOTAL}})
    minutes = [minute_at(8, 50 + index) for index in range(4)]
    totals = dict(zip(minutes, [10.0, 10.0, 10.0, 0.0], strict=True))
    # No 5xx series at all in the first minute; more bad than total (two extrapolations) in the third.
    bads = dict(zip(minutes[1:], [1.0, 12.0, 0.0], strict=True))
    fake.answer(TOTAL_1M, lambda timestamp: totals.get(covered_minute(timestamp)))
    fake.answer(BAD_1M, lambda timestamp: bads.get(covered_minute(timestamp)))
    clock.set(at(9, 0, 40))
    tick(db, clock)

    assert stored(db, "checkout-errors") == {
        ("default", minutes[0]): (600.0, 600.0),
        ("default", minutes[1]): (540.0, 600.0),
        ("default", minutes[2]): (0.0, 600.0),
        # minutes[3]: no events, nothing stored
    }


def test_error_ratio_minutes_weigh_equally(db, clock, checkout, fake):
    query = "sum(rate(errors_total[{{.window}}])) / sum(rate(requests_total[{{.window}}]))"
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-raw", {"ratio": {"errorRatio": query}})
    minutes = [minute_at(8, 50 + index) for index in range(5)]
    ratios = dict(zip(minutes, [0.25, "NaN", 1.5, "+Inf", -0.1], strict=True))
    fake.answer(query.replace("{{.window}}", "1m"), lambda timestamp: ratios.get(covered_minute(timestamp)))
    clock.set(at(9, 0, 40))
    tick(db, clock)

    # good = 1 - ratio out of 1 per minute; 0/0 (NaN) and x/0 (+Inf) are minutes without traffic; out-of-range
    # ratios are clamped.
    assert stored(db, "checkout-raw") == {
        ("default", minutes[0]): (0.75, 1.0),
        ("default", minutes[2]): (0.0, 1.0),
        ("default", minutes[4]): (1.0, 1.0),
    }


def test_threshold_objectives_share_the_count_query(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(
        db,
        clock,
        "checkout-latency",
        {"threshold": {"metric": "http_request_duration_seconds", "selector": 'job="checkout"', "op": "lte"}},
        objectives=[{"name": "fast", "target": 0.9, "threshold": 0.25}, {"name": "ok", "target": 0.99, "threshold": 1}],
    )
    fast = 'sum(rate(http_request_duration_seconds_bucket{job="checkout",le="0.25"}[1m]))'
    # "1" in Go's text format, "1.0" from Python clients and Prometheus 3: either is the same bucket.
    ok = 'sum(rate(http_request_duration_seconds_bucket{job="checkout",le=~"1|1\\\\.0"}[1m]))'
    count = 'sum(rate(http_request_duration_seconds_count{job="checkout"}[1m]))'
    only = minute_at(8, 58)
    fake.answer(fast, lambda timestamp: 6.0 if covered_minute(timestamp) == only else None)
    fake.answer(ok, lambda timestamp: 9.5 if covered_minute(timestamp) == only else None)
    fake.answer(count, lambda timestamp: 10.0 if covered_minute(timestamp) == only else None)
    clock.set(at(9, 0, 40))
    report = tick(db, clock)

    assert report.failures == 0, state_of(db, "checkout-latency").last_error
    assert stored(db, "checkout-latency") == {("fast", only): (360.0, 600.0), ("ok", only): (570.0, 600.0)}
    assert {request.query for request in fake.requests} == {count, fast, ok}
    assert len(fake.requests) == 3 * len(fake.requests_for(count))  # per chunk: one count query for both


def test_threshold_above_counts_the_bucket_as_bad(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(
        db,
        clock,
        "checkout-payload",
        {"threshold": {"metric": "response_size_bytes", "op": "gt"}},
        objectives=[{"target": 0.9, "threshold": 1024}],
    )
    only = minute_at(8, 58)
    fake.answer(
        'sum(rate(response_size_bytes_bucket{le=~"1024|1024\\\\.0"}[1m]))',
        lambda timestamp: 1.0 if covered_minute(timestamp) == only else None,
    )
    fake.answer(
        "sum(rate(response_size_bytes_count[1m]))", lambda timestamp: 4.0 if covered_minute(timestamp) == only else None
    )
    clock.set(at(9, 0, 40))
    tick(db, clock)

    assert stored(db, "checkout-payload") == {("default", only): (180.0, 240.0)}


def test_probe_counts_up_samples(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-probe", {"probe": {"query": 'probe_success{job="blackbox"}'}})
    only = minute_at(8, 58)
    fake.answer(
        'sum_over_time(probe_success{job="blackbox"}[1m])',
        lambda timestamp: 3.0 if covered_minute(timestamp) == only else None,
    )
    fake.answer(
        'count_over_time(probe_success{job="blackbox"}[1m])',
        lambda timestamp: 4.0 if covered_minute(timestamp) == only else None,
    )
    clock.set(at(9, 0, 40))
    tick(db, clock)

    assert stored(db, "checkout-probe") == {("default", only): (3.0, 4.0)}  # samples, not rates: no x 60


# ------------------------------------------------------------------------------------------------ backfill


def test_backfill_reads_the_retention_in_chunks_of_at_most_10000_points(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    clock.set(at(9, 0, 40))
    last = minute_at(8, 59)
    with db.reader() as session:
        spec = SLOSpec.model_validate(service.get_slo(session, "checkout-availability").spec)
    first = last - service.retention_minutes(spec, clock.now()) + 1
    marked = {first, first + 9_999, first + 10_000, first + 25_000, last}
    fake.answer(TOTAL_1M, lambda timestamp: 1.0 if covered_minute(timestamp) in marked else None)
    fake.answer(GOOD_1M, lambda timestamp: 1.0 if covered_minute(timestamp) in marked else None)

    report = tick(db, clock)

    assert report.failures == 0
    assert report.fetches == math.ceil((last - first + 1) / 10_000) > 1
    for query in (GOOD_1M, TOTAL_1M):
        chunks = fake.requests_for(query)
        assert max(request.points for request in chunks) == 10_000
        assert covered_minute(chunks[0].start) == first and covered_minute(chunks[-1].end) == last
        for before, after in itertools.pairwise(chunks):
            assert after.start == before.end + 60  # contiguous, no minute read twice
    assert {minute for _, minute in stored(db, "checkout-availability")} == marked
    state = state_of(db, "checkout-availability")
    assert state.backfilled and state.fetched_through_minute == last


def test_a_backfill_spreads_over_ticks_when_the_tick_budget_is_small(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(1.0, since=minute_at(8, 50)))
    fake.answer(GOOD_1M, steady(1.0, since=minute_at(8, 50)))
    clock.set(at(9, 0, 40))
    source = PrometheusSource(max_fetches=2)

    first = source.tick(db, clock)
    assert first.fetches == 2 and first.deferred == 1
    assert not state_of(db, "checkout-availability").backfilled
    reports = [source.tick(db, clock) for _ in range(3)]

    assert [report.fetches for report in reports] == [2, 1, 0]
    state = state_of(db, "checkout-availability")
    assert state.backfilled and state.fetched_through_minute == minute_at(8, 59)
    assert len(stored(db, "checkout-availability")) == 10


def test_work_per_tick_is_bounded_and_shared_round_robin(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    queries = {}
    for name in ("a", "b", "c"):
        total = f'sum(rate(http_requests_total{{job="{name}"}}[{{{{.window}}}}]))'
        add_slo(db, clock, name, {"ratio": {"good": total, "total": total}})
        queries[total.replace("{{.window}}", "1m")] = name
        fake.answer(total.replace("{{.window}}", "1m"), steady(1.0))
    clock.set(at(9, 0, 40))
    PrometheusSource().tick(db, clock)  # all three backfilled
    source = PrometheusSource(max_fetches=2)

    def served(report_from: int) -> list[str]:
        return [queries[request.query] for request in fake.requests[report_from:]]

    clock.set(at(9, 1, 40))
    seen = len(fake.requests)
    assert source.tick(db, clock).deferred == 1
    assert served(seen) == ["a", "b"]
    clock.set(at(9, 1, 45))
    seen = len(fake.requests)
    assert source.tick(db, clock).fetches == 1
    assert served(seen) == ["c"]  # whoever waited goes first
    clock.set(at(9, 2, 40))
    seen = len(fake.requests)
    source.tick(db, clock)
    assert served(seen) == ["a", "b"]  # the turn passes on from c
    clock.set(at(9, 2, 45))
    source.tick(db, clock)
    assert {state_of(db, name).fetched_through_minute for name in "abc"} == {minute_at(9, 1)}


def test_a_new_indicator_replaces_the_history(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    old, both = minute_at(8, 50), minute_at(8, 55)
    fake.answer(TOTAL_1M, lambda timestamp: 1.0 if covered_minute(timestamp) in (old, both) else None)
    fake.answer(GOOD_1M, lambda timestamp: 1.0 if covered_minute(timestamp) in (old, both) else None)
    clock.set(at(9, 0, 40))
    tick(db, clock)
    new_total = 'sum(rate(http_requests_total{job="checkout",path!="/health"}[{{.window}}]))'
    with db.transaction() as session:
        spec = SLOSpec.model_validate(slo_body({"ratio": {"good": GOOD, "total": new_total}}))
        service.update_slo(session, actor=OPERATOR, name="checkout-availability", spec=spec, now=clock.now())
    fake.answer(
        new_total.replace("{{.window}}", "1m"), lambda timestamp: 2.0 if covered_minute(timestamp) == both else None
    )

    tick(db, clock)

    # The minute the new query has no events for no longer keeps the old query's counts.
    assert stored(db, "checkout-availability") == {("default", old): (0.0, 0.0), ("default", both): (60.0, 120.0)}
    assert state_of(db, "checkout-availability").backfilled


# --------------------------------------------------------------------------------------- failure, recovery


def test_failure_then_recovery_fills_the_gap(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO}, window={"rolling": "7d"})
    fake.answer(TOTAL_1M, steady(2.0))
    fake.answer(GOOD_1M, steady(1.5))
    evaluator = Evaluator()
    clock.set(at(9, 0, 40))
    tick(db, clock)
    evaluator.tick(db, clock)

    fake.fail(503, "Service Unavailable", content_type="text/plain")
    for outage_minute in range(3):
        clock.set(at(9, 1 + outage_minute, 40))
        report = tick(db, clock)
        evaluator.tick(db, clock)
        assert report.failures == 1
        state = state_of(db, "checkout-availability")
        assert state.failing and state.fetched_through_minute == minute_at(8, 59)
        assert state.last_error == f"HTTP 503 from {fake.url}/api/v1/query_range: Service Unavailable"
        assert state.last_error_at == clock.now()
    requests_while_failing = len(fake.requests)
    clock.set(at(9, 3, 50))
    assert tick(db, clock).fetches == 0  # a failing source is retried once a minute, not every tick
    assert len(fake.requests) == requests_while_failing

    fake.recover()
    clock.set(at(9, 4, 40))
    report = tick(db, clock)
    evaluator.tick(db, clock)

    assert report.failures == 0 and report.minutes_written == 4
    state = state_of(db, "checkout-availability")
    assert not state.failing and state.fetched_through_minute == minute_at(9, 3)
    assert "HTTP 503" in (state.last_error or "")  # kept for the record
    minutes = stored(db, "checkout-availability")
    assert [minutes[("default", minute_at(9, gap))] for gap in range(4)] == [(90.0, 120.0)] * 4
    # The evaluator counted the late minutes too: its period holds every stored minute before its end.
    with db.reader() as session:
        status = session.scalars(select(ObjectiveStatus)).one()
    counted = [total for (_, minute), (_, total) in minutes.items() if minute < status.through_minute]
    assert status.detail["events"]["total"] == pytest.approx(sum(counted))


def test_failure_and_recovery_reach_the_timeline_once_each(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(2.0))
    fake.answer(GOOD_1M, steady(2.0))
    clock.set(at(9, 0, 40))
    tick(db, clock)

    fake.fail(500, {"status": "error", "errorType": "internal", "error": "out of memory"})
    for minute in range(1, 5):
        clock.set(at(9, minute, 40))
        tick(db, clock)
    fake.recover()
    for minute in range(5, 8):
        clock.set(at(9, minute, 40))
        tick(db, clock)

    events = source_events(db)
    assert [event.type for event in events] == ["slo.source.failed", "slo.source.recovered"]
    failed, recovered = events
    assert failed.service_id == recovered.service_id == checkout
    assert failed.at == at(9, 1, 40) and recovered.at == at(9, 5, 40)
    assert failed.data == {
        "slo": "checkout-availability",
        "dataSource": "prom",
        "error": f"HTTP 500 internal for {GOOD_1M}: out of memory",
    }
    assert recovered.data["slo"] == "checkout-availability"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


MATRIX_WITHOUT_VALUES = {
    "status": "success",
    "data": {"resultType": "matrix", "result": [{"metric": {}, "values": None}]},
}
BROKEN_ANSWERS = {
    "prometheus error": (500, {"status": "error", "errorType": "internal", "error": "boom"}, "HTTP 500 internal"),
    "bad query": (400, {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}, "parse error"),
    "error with 200": (200, {"status": "error", "errorType": "timeout", "error": "query timed out"}, "timeout"),
    "proxy page": (502, "<html>Bad Gateway</html>", "HTTP 502"),
    "not json": (200, "hello", "not JSON"),
    "json list": (200, [1, 2], "not a JSON object"),
    "a vector": (200, {"status": "success", "data": {"resultType": "vector", "result": []}}, "expected a matrix"),
    "no data": (200, {"status": "success", "data": None}, "expected a matrix"),
    "series without values": (200, MATRIX_WITHOUT_VALUES, "without a list of values"),
    "garbage samples": (
        200,
        {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [["x", "1"]]}]}},
        "not [timestamp, value]",
    ),
    "redirect": (302, "", "HTTP 302"),
}


@pytest.mark.parametrize("kind", [*BROKEN_ANSWERS, "refused"])
def test_a_broken_source_is_recorded_and_the_others_go_on(db, clock, checkout, fake, kind):
    broken = FakePrometheus()
    try:
        if kind == "refused":
            url, expected = f"http://127.0.0.1:{_closed_port()}", "cannot reach"
        else:
            status, body, expected = BROKEN_ANSWERS[kind]
            broken.fail(status, body, content_type="text/html" if isinstance(body, str) else "application/json")
            url = broken.url
        add_source(db, clock, url, name="broken")
        add_source(db, clock, fake.url, name="prom")
        add_slo(db, clock, "checkout-broken", {"ratio": RATIO}, source="broken")
        add_slo(db, clock, "checkout-fine", {"ratio": RATIO})
        fake.answer(TOTAL_1M, steady(1.0))
        fake.answer(GOOD_1M, steady(1.0))
        clock.set(at(9, 0, 40))

        report = tick(db, clock)
    finally:
        broken.stop()

    assert report.failed == ["checkout-broken"]
    state = state_of(db, "checkout-broken")
    assert state.failing and state.fetched_through_minute is None and not state.backfilled
    assert expected in (state.last_error or ""), state.last_error
    assert stored(db, "checkout-broken") == {}
    assert [event.data["slo"] for event in source_events(db)] == ["checkout-broken"]
    assert state_of(db, "checkout-fine").fetched_through_minute == minute_at(8, 59)


def test_the_engine_tick_runs_the_source_before_the_evaluator(db, clock, checkout):
    from relia import domains
    from relia.core import engine

    domains.load_jobs()
    names = engine.step_names()
    assert names.index("slo.prometheus") < names.index("slo.evaluate")
    add_source(db, clock, f"http://127.0.0.1:{_closed_port()}")
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    clock.set(at(9, 0, 40))

    report = engine.run_tick(db, clock)

    assert report.errors == {}
    assert isinstance(report.results["slo.prometheus"], FetchReport)
    assert state_of(db, "checkout-availability").failing


# -------------------------------------------------------------------------------------- headers, timeout


def test_the_data_source_headers_and_timeout_are_used(db, clock, checkout, fake):
    secret = "Bearer s3cret-token"
    add_source(db, clock, fake.url, headers={"Authorization": secret, "X-Scope-OrgID": "tenant-a"}, timeoutSeconds=2.5)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(1.0))
    fake.answer(GOOD_1M, steady(1.0))
    clock.set(at(9, 0, 40))
    tick(db, clock)

    assert fake.requests
    for request in fake.requests:
        assert request.headers["authorization"] == secret
        assert request.headers["x-scope-orgid"] == "tenant-a"
        assert request.params["timeout"] == "2.5"  # Prometheus stops evaluating when we stop waiting


def test_a_slow_source_times_out_without_leaking_headers(db, clock, checkout, fake):
    secret = "Bearer s3cret-token"
    add_source(db, clock, fake.url, headers={"Authorization": secret}, timeoutSeconds=0.2)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(1.0))
    fake.answer(GOOD_1M, steady(1.0))
    fake.delay_seconds = 0.6
    clock.set(at(9, 0, 40))

    report = tick(db, clock)

    assert report.failures == 1
    state = state_of(db, "checkout-availability")
    assert state.failing and state.last_error == f"{fake.url}/api/v1/query_range timed out after 0.2 s"
    assert all("s3cret" not in str(event.data) + event.summary for event in source_events(db))


# ------------------------------------------------------------------------------------- several workers


def test_a_chunk_another_worker_stored_first_is_not_written_twice(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(1.0))
    fake.answer(GOOD_1M, steady(1.0))
    clock.set(at(9, 0, 40))
    other_worker: list[FetchReport] = []
    # While this worker waits for Prometheus, another one reads and stores the same chunk.
    fake.on_request = lambda request: other_worker.append(PrometheusSource().tick(db, clock))

    report = tick(db, clock)

    assert other_worker[0].minutes_written == 60 and other_worker[0].stale == 0
    assert report.fetches == report.stale == 1 and report.minutes_written == 0
    assert state_of(db, "checkout-availability").fetched_through_minute == minute_at(8, 59)


def test_two_workers_failing_at_once_announce_it_once(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.fail(503, {"status": "error", "errorType": "unavailable", "error": "starting"})
    clock.set(at(9, 0, 40))
    fake.on_request = lambda request: PrometheusSource().tick(db, clock)

    report = tick(db, clock)

    assert report.failures == 1
    assert [event.type for event in source_events(db)] == ["slo.source.failed"]


def test_an_slo_edited_while_its_data_was_fetched_is_fetched_again(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO})
    fake.answer(TOTAL_1M, steady(1.0))
    fake.answer(GOOD_1M, steady(1.0))
    clock.set(at(9, 0, 40))

    def edit(request: object) -> None:
        with db.transaction() as session:
            spec = SLOSpec.model_validate(slo_body({"ratio": RATIO}, objectives=[{"target": 0.995}]))
            service.update_slo(session, actor=OPERATOR, name="checkout-availability", spec=spec, now=clock.now())

    fake.on_request = edit
    assert tick(db, clock).stale == 1
    assert state_of(db, "checkout-availability").fetched_through_minute is None
    assert tick(db, clock).minutes_written == 60


def test_query_planning_refuses_what_it_cannot_query():
    spec = SLOSpec.model_validate(slo_body({"ratio": {"good": "x", "total": "y"}}))
    plan = prometheus.query_plan(spec, [(1, "default")])
    assert plan.queries == ("x", "y")
    answers = {"x": prometheus.Answer({5: 2.0}, 2), "y": prometheus.Answer({5: 1.0, 6: -3.0}, 1)}
    assert prometheus.minute_counts(plan, answers) == {(1, 5): [60.0, 60.0]}
    raw = SLOSpec.model_validate(slo_body({"ratio": {"errorRatio": "r"}}))
    with pytest.raises(prometheus.SourceError, match="aggregate it to one"):
        prometheus.minute_counts(prometheus.query_plan(raw, [(1, "default")]), {"r": prometheus.Answer({5: 0.1}, 2)})


@pytest.mark.parametrize(
    ("threshold", "spellings"),
    [
        (0.25, ["0.25"]),
        (1.0, ["1", "1.0"]),
        (0.0, ["0", "0.0"]),
        (100000.0, ["100000", "100000.0"]),
        (1e6, ["1000000.0", "1e+06"]),
        (2.5e-05, ["2.5e-05"]),
    ],
)
def test_bucket_bounds_match_every_client_spelling(threshold, spellings):
    assert prometheus.le_spellings(threshold) == spellings


def test_probe_expressions_that_are_not_selectors_become_subqueries():
    assert prometheus.probe_queries("max by (instance) (probe_success)") == (
        "sum_over_time((max by (instance) (probe_success))[1m:])",
        "count_over_time((max by (instance) (probe_success))[1m:])",
    )


def test_minutes_after_a_long_outage_start_at_the_retention(db, clock, checkout, fake):
    add_source(db, clock, fake.url)
    add_slo(db, clock, "checkout-availability", {"ratio": RATIO}, window={"rolling": "7d"})
    fake.answer(TOTAL_1M, steady(1.0, until=minute_at(9, 0)))
    fake.answer(GOOD_1M, steady(1.0, until=minute_at(9, 0)))
    clock.set(at(9, 0, 40))
    tick(db, clock)
    before = len(fake.requests)

    clock.advance(timedelta(days=40))
    tick(db, clock)

    last = epoch_minute(clock.now() - timedelta(seconds=30)) - 1
    with db.reader() as session:
        spec = SLOSpec.model_validate(service.get_slo(session, "checkout-availability").spec)
    oldest = last - service.retention_minutes(spec, clock.now()) + 1
    after_outage = [request for request in fake.requests[before:] if request.query == TOTAL_1M]
    assert covered_minute(after_outage[0].start) == oldest  # not the 40 days in between
    assert covered_minute(after_outage[-1].end) == last
