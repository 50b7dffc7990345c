"""Prometheus as an SLI source: every minute, per-minute good/total counts read from the Prometheus HTTP API.

For every SLO whose indicator names a ``prometheus`` data source, each engine tick asks
``/api/v1/query_range`` (step 60 s) for the minutes after ``SourceState.fetched_through_minute`` up to the last
complete minute, turns the answers into per-minute ``(good, total)`` counts and writes them with
``service.add_to_rollups(..., replace=True)``, one transaction per SLO and chunk, advancing
``fetched_through_minute`` in the same transaction.

Minutes. A query evaluated at ``T`` over ``[1m]`` describes the minute that ends at ``T``, so minute ``m``
(``[60m, 60m + 60)``) is read at ``T = 60 (m + 1)``. A minute counts as complete ``SETTLE_SECONDS`` after it
ends: the scrape that closes it must have been ingested first.

Indicators (``{{.window}}`` becomes ``1m``):

- ratio ``good``/``total`` (or ``bad``/``total``): per-second rates, as Sloth writes them, so a minute's count
  is the rate x 60; good = total - bad for ``bad``;
- ratio ``errorRatio``: see :func:`query_plan`;
- threshold: ``sum(rate(<metric>_bucket{<selector>,le="<threshold>"}[1m]))`` per objective and
  ``sum(rate(<metric>_count{<selector>}[1m]))``; see :func:`le_matcher` for the spelling of ``le``;
- probe: ``sum_over_time(<query>[1m])`` good samples of ``count_over_time(<query>[1m])`` (Prometheus 2.x
  windows include both ends, so a sample stamped exactly on a minute boundary counts in both minutes).

History. A new SLO (or one whose indicator changed) is backfilled over ``service.retention_minutes`` in
chunks of at most ``CHUNK_MINUTES`` points per query, oldest first; each chunk is its own transaction, so a
backfill survives restarts and spreads over ticks. A chunk replaces what was stored for its minutes.

Failures (unreachable, HTTP errors, ``status: error``, malformed answers, anything unexpected) are recorded
on the SLO's ``SourceState`` (``last_error``, ``last_error_at``, ``failing``) and nothing advances, so the gap
is read once the source answers again. ``slo.source.failed`` and ``slo.source.recovered`` go to the timeline
on those transitions only. A failing SLO is retried at most every ``RETRY_FAILING_SECONDS``. Nothing here
raises out of :meth:`PrometheusSource.tick`.

Work per tick is bounded: at most ``max_fetches`` chunks (all queries of one SLO over one range) and no new
chunk after ``max_seconds`` (a chunk under way finishes, within the data source's timeout per query). SLOs are
served round robin, so whatever did not fit is first in line next tick.

Several workers may tick at once: answers are fetched without holding database locks, then written only if
the SLO's version and ``fetched_through_minute`` are still what they were when the fetch started (the state
row is locked for the write), so a chunk is written once and each transition is announced once.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx2
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.core import timeline
from relia.core.clock import Clock
from relia.core.db import Database
from relia.slo import rules, service
from relia.slo.models import SLO, DataSource, Rollup, SourceState
from relia.slo.schemas import DataSourceSpec, SLOSpec

log = structlog.get_logger("relia.slo.prometheus")

RATE_WINDOW = "1m"
"""What ``{{.window}}`` becomes: one query point per minute, each covering exactly that minute."""
STEP_SECONDS = 60
CHUNK_MINUTES = 10_000
"""Points per query_range call; Prometheus refuses more than 11,000 points per series."""
SETTLE_SECONDS = 30
"""A minute is read this long after it ended, once the scrape closing it has landed in Prometheus. Well under
the evaluator's one-minute grace, so a minute is stored before the evaluator first counts it."""
RETRY_FAILING_SECONDS = 60
"""A failing SLO is retried once a minute, not every tick, so a dead Prometheus does not eat the tick."""
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A larger answer is refused rather than held in memory (a query returning thousands of series)."""
MAX_ERROR_CHARS = 1000
ACTOR = "slo-prometheus-source"
_QUERY_IN_ERRORS_CHARS = 120

_WINDOW_VARIABLE = re.compile(r"\{\{\s*\.window\s*\}\}")
_PLAIN_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{[^{}]*\})?$")


class SourceError(Exception):
    """A query gave no usable answer. The message is what operators read in ``last_error``; it never holds
    header values."""


class SourceUnreachable(SourceError):
    """No answer at all (connection refused, timeout): the other SLOs of the data source wait for the next
    tick instead of each waiting for the same timeout."""


# ------------------------------------------------------------------------------------------------ queries


def with_window(query: str, window: str = RATE_WINDOW) -> str:
    """Sloth's ``{{.window}}`` (spaces allowed inside the braces) replaced by the rate window."""
    return _WINDOW_VARIABLE.sub(window, query)


def go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it, which is how client_golang (and so
    most exporters) spell ``le``: ``1``, ``0.25``, ``100000``, ``1e+06``, ``1e-05``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point (may be <= 0)
    lead = point - 1  # decimal exponent of the first digit
    prefix = "-" if sign else ""
    if lead < -4 or lead >= 6:  # Go switches to exponent form outside [1e-4, 1e6) for the shortest format
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if lead < 0 else '+'}{abs(lead):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def le_spellings(threshold: float) -> list[str]:
    """The ways exporters write the bucket bound ``threshold``: Go's text format (``1``), OpenMetrics and
    Prometheus 3's normalised form (``1.0``), and Python's client (``1.0``, ``1e-05``)."""
    go = go_float(threshold)
    openmetrics = go if any(char in go for char in ".eIN") else go + ".0"
    return sorted({go, openmetrics, repr(float(threshold))})


def le_matcher(threshold: float) -> str:
    """A matcher for the bucket whose bound is ``threshold``, whichever way the exporter spelled it. A bound
    spelled one way only gives ``le="0.25"``; otherwise a regex of the spellings, ``le=~"1|1\\\\.0"``. Each
    series has one spelling, so summing over the matches counts every bucket once."""
    spellings = le_spellings(threshold)
    if len(spellings) == 1:
        return f'le="{spellings[0]}"'
    escaped = [re.sub(r"([.+])", r"\\\\\1", spelling) for spelling in spellings]
    return f'le=~"{"|".join(escaped)}"'


def _matchers(selector: str, *extra: str) -> str:
    """``{selector,extra}``, or nothing when there are no matchers."""
    parts = [part for part in (selector.strip().strip(",").strip(), *extra) if part]
    return "{" + ",".join(parts) + "}" if parts else ""


def threshold_queries(metric: str, selector: str, threshold: float) -> tuple[str, str]:
    """(events at or below ``threshold`` per second, all events per second) of a classic histogram."""
    bucket = f"sum(rate({metric}_bucket{_matchers(selector, le_matcher(threshold))}[{RATE_WINDOW}]))"
    count = f"sum(rate({metric}_count{_matchers(selector)}[{RATE_WINDOW}]))"
    return bucket, count


def probe_queries(query: str) -> tuple[str, str]:
    """(up samples, all samples) in each minute of a 0/1 gauge. A plain selector takes a range directly; any
    other expression is read as a subquery at the default resolution."""
    query = query.strip()
    ranged = f"{query}[{RATE_WINDOW}]" if _PLAIN_SELECTOR.match(query) else f"({query})[{RATE_WINDOW}:]"
    return f"sum_over_time({ranged})", f"count_over_time({ranged})"


@dataclass(frozen=True)
class Recipe:
    """How one objective's minute counts come from query answers.

    ``counted`` answers the good events (or the bad ones, ``counted_is_bad``) and ``total`` all events, both
    multiplied by ``scale`` (60 for per-second rates, 1 for sample counts). With ``total`` None, ``counted`` is
    an error ratio."""

    objective_id: int
    counted: str
    total: str | None
    counted_is_bad: bool = False
    scale: float = float(STEP_SECONDS)

    @property
    def is_error_ratio(self) -> bool:
        return self.total is None


@dataclass(frozen=True)
class QueryPlan:
    queries: tuple[str, ...]
    recipes: tuple[Recipe, ...]


def query_plan(spec: SLOSpec, objectives: Iterable[tuple[int, str]]) -> QueryPlan:
    """The PromQL one SLO needs per chunk (each distinct query once) and a recipe per objective
    (``objectives``: (objective id, objective name)).

    An ``errorRatio`` query answers a ratio, not counts, so each minute with an answer is stored as
    ``good = 1 - ratio`` out of ``total = 1``: Occurrences then weighs every minute equally, whatever its
    traffic (a quiet minute at 50 % errors burns as much as a busy one).
    """
    indicator = spec.indicator
    recipes: list[Recipe] = []
    for objective_id, key in objectives:
        if indicator.ratio is not None:
            ratio = indicator.ratio
            if ratio.error_ratio:
                recipes.append(Recipe(objective_id, counted=with_window(ratio.error_ratio), total=None))
            elif ratio.total and (ratio.good or ratio.bad):
                counted = ratio.good or ratio.bad or ""
                recipes.append(
                    Recipe(
                        objective_id,
                        counted=with_window(counted),
                        total=with_window(ratio.total),
                        counted_is_bad=ratio.good is None,
                    )
                )
            else:
                raise SourceError("the ratio indicator has no PromQL (give good or bad with total, or errorRatio)")
        elif indicator.threshold is not None:
            histogram = indicator.threshold
            objective = next((item for item in spec.objectives if item.name == key), None)
            if histogram.metric is None or objective is None or objective.threshold is None:
                raise SourceError(f"objective {key}: a Prometheus threshold indicator needs metric and threshold")
            bucket, count = threshold_queries(histogram.metric, histogram.selector, objective.threshold)
            # The bucket holds events <= threshold: good for lte/lt (lt then also counts events equal to the
            # bound, which a histogram cannot tell apart), bad for gt/gte (likewise for gte).
            recipes.append(
                Recipe(objective_id, counted=bucket, total=count, counted_is_bad=histogram.op in ("gt", "gte"))
            )
        elif indicator.probe is not None and indicator.probe.query:
            good, total = probe_queries(indicator.probe.query)
            recipes.append(Recipe(objective_id, counted=good, total=total, scale=1.0))
        else:
            raise SourceError("the indicator has no PromQL for a Prometheus data source")
    queries: dict[str, None] = {}
    for recipe in recipes:
        queries[recipe.counted] = None
        if recipe.total is not None:
            queries[recipe.total] = None
    return QueryPlan(queries=tuple(queries), recipes=tuple(recipes))


@dataclass
class Answer:
    """One query's answer: the value per minute summed over the returned series (NaN and infinite samples
    left out), and how many series there were."""

    values: dict[int, float] = field(default_factory=dict)
    series: int = 0


def minute_counts(plan: QueryPlan, answers: dict[str, Answer]) -> dict[tuple[int, int], list[float]]:
    """(objective id, minute) -> [good, total] from the answers; minutes without events are left out.

    Values are clamped into range rather than refused: two rate queries extrapolate separately, so good can
    exceed total by a hair, and a counted query without series (no 5xx series at all) means none counted."""
    sums: dict[tuple[int, int], list[float]] = {}
    for recipe in plan.recipes:
        counted = answers[recipe.counted]
        if recipe.is_error_ratio:
            if counted.series > 1:
                raise SourceError(
                    f"the errorRatio query returned {counted.series} series; aggregate it to one ratio "
                    "(e.g. sum(errors) / sum(requests))"
                )
            for minute, ratio in counted.values.items():
                sums[(recipe.objective_id, minute)] = [1.0 - min(max(ratio, 0.0), 1.0), 1.0]
            continue
        assert recipe.total is not None
        for minute, rate in answers[recipe.total].values.items():
            total = rate * recipe.scale
            if not total > 0:
                continue
            part = min(max(counted.values.get(minute, 0.0) * recipe.scale, 0.0), total)
            sums[(recipe.objective_id, minute)] = [total - part if recipe.counted_is_bad else part, total]
    return sums


# ----------------------------------------------------------------------------------------------- HTTP API


def _short(query: str) -> str:
    return query if len(query) <= _QUERY_IN_ERRORS_CHARS else query[: _QUERY_IN_ERRORS_CHARS - 3] + "..."


class PrometheusClient:
    """``/api/v1/query_range`` of one data source, with its headers and timeout. The timeout bounds each whole
    call (connecting, waiting and reading), not just each network operation."""

    def __init__(
        self,
        spec: DataSourceSpec,
        *,
        transport: httpx2.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not spec.url:
            raise SourceError("the data source has no url")
        self.url = spec.url.rstrip("/") + "/api/v1/query_range"
        self.timeout = spec.timeout_seconds
        self._monotonic = monotonic
        self._client = httpx2.Client(
            headers={"Accept": "application/json", "User-Agent": "relia", **spec.headers},
            timeout=spec.timeout_seconds,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def query_range(self, query: str, first_minute: int, last_minute: int) -> Answer:
        """The query at the end of every minute in [first_minute, last_minute]. Raises SourceError."""
        form = {
            "query": query,
            "start": str((first_minute + 1) * STEP_SECONDS),
            "end": str((last_minute + 1) * STEP_SECONDS),
            "step": str(STEP_SECONDS),
            # Plain seconds: Prometheus refuses fractional unit durations such as "2.5s".
            "timeout": f"{self.timeout:g}",
        }
        # POST (form-encoded) so long PromQL never meets URL length limits; Prometheus documents both.
        status, body = self._post(form)
        try:
            document = json.loads(body)
        except ValueError:
            if status != 200:
                raise SourceError(f"HTTP {status} from {self.url}: {_snippet(body)}") from None
            raise SourceError(f"bad data from {self.url}: the answer is not JSON ({_snippet(body)})") from None
        if not isinstance(document, dict):
            raise SourceError(f"bad data from {self.url}: the answer is not a JSON object")
        if status != 200 or document.get("status") != "success":
            kind = document.get("errorType") or "error"
            message = document.get("error") or _snippet(body)
            raise SourceError(f"HTTP {status} {kind} for {_short(query)}: {message}")
        return _parse_matrix(document.get("data"), first_minute, last_minute)

    def _post(self, form: dict[str, str]) -> tuple[int, bytes]:
        deadline = self._monotonic() + self.timeout
        try:
            with self._client.stream("POST", self.url, data=form) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise SourceError(f"the answer from {self.url} exceeds {MAX_RESPONSE_BYTES // 2**20} MiB")
                    if self._monotonic() > deadline:
                        raise SourceUnreachable(f"{self.url} timed out after {self.timeout:g} s")
                return response.status_code, bytes(body)
        except httpx2.TimeoutException:
            raise SourceUnreachable(f"{self.url} timed out after {self.timeout:g} s") from None
        except httpx2.HTTPError as error:
            raise SourceUnreachable(f"cannot reach {self.url}: {type(error).__name__}: {error}") from None


def _snippet(body: bytes) -> str:
    text = body[:200].decode("utf-8", errors="replace").strip()
    return text or "(empty body)"


def _parse_matrix(data: Any, first_minute: int, last_minute: int) -> Answer:
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise SourceError(f"bad data: expected a matrix from query_range, got {kind!r}")
    answer = Answer(series=len(data["result"]))
    for series in data["result"]:
        points = series.get("values") if isinstance(series, dict) else None
        if not isinstance(points, list):
            raise SourceError("bad data: a series without a list of values")
        for point in points:
            try:
                timestamp, raw = point
                value = float(raw)
                seconds = float(timestamp)
            except (TypeError, ValueError):
                raise SourceError(f"bad data: a sample that is not [timestamp, value]: {str(point)[:80]}") from None
            minute = round(seconds / STEP_SECONDS) - 1
            # Points off the requested grid (a proxy that re-aligns steps) cannot be placed in a minute.
            if abs(seconds - (minute + 1) * STEP_SECONDS) > 1e-3 or not first_minute <= minute <= last_minute:
                continue
            if math.isfinite(value):
                answer.values[minute] = answer.values.get(minute, 0.0) + value
    return answer


# ------------------------------------------------------------------------------------------------- the feed


def last_complete_minute(now: datetime) -> int:
    """The newest minute Prometheus should have in full at ``now``."""
    return rules.epoch_minute(now - timedelta(seconds=SETTLE_SECONDS)) - 1


@dataclass(frozen=True)
class SLORef:
    """Which SLO, at which version: writes are dropped when the SLO changed while its data was fetched."""

    slo_id: int
    slo_name: str
    slo_version: int
    service_id: int
    source_name: str


@dataclass
class Feed:
    """One Prometheus-fed SLO as read at the start of a tick."""

    ref: SLORef
    source_id: int
    source_spec: DataSourceSpec
    plan: QueryPlan
    oldest_minute: int
    fetched_through: int | None

    def next_range(self, target: int) -> tuple[int, int] | None:
        """The next chunk of minutes to read, or None when caught up. After a gap longer than the retention
        only the retained minutes are read."""
        first = self.oldest_minute
        if self.fetched_through is not None:
            first = max(first, self.fetched_through + 1)
        if first > target:
            return None
        return first, min(target, first + CHUNK_MINUTES - 1)


@dataclass
class FetchReport:
    """What one tick did: SLOs due, chunks and queries sent, minutes stored, failures, and SLOs left for the
    next tick by the work bounds."""

    slos: int = 0
    fetches: int = 0
    queries: int = 0
    minutes_written: int = 0
    failures: int = 0
    stale: int = 0
    deferred: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


class PrometheusSource:
    """The Prometheus poller of one worker process. Keeps only its round-robin position between ticks; all
    progress lives in ``slo_source_state``.

    ``max_fetches`` bounds the chunks read per tick (one chunk = every query of one SLO over at most
    ``CHUNK_MINUTES`` minutes) and ``max_seconds`` the time spent; ``transport`` replaces the HTTP transport
    (tests); ``monotonic`` measures elapsed time for those bounds and HTTP deadlines (never for minutes)."""

    def __init__(
        self,
        *,
        max_fetches: int = 200,
        max_seconds: float = 10.0,
        transport: httpx2.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_fetches = max_fetches
        self.max_seconds = max_seconds
        self.transport = transport
        self._monotonic = monotonic
        self._cursor = 0  # the SLO id served last; the next tick starts after it

    def tick(self, db: Database, clock: Clock) -> FetchReport:
        started = self._monotonic()
        report = FetchReport()
        now = clock.now()
        target = last_complete_minute(now)
        try:
            pending = self._due_feeds(db, now, target, report)
        except Exception:
            log.exception("slo.prometheus.load_failed")
            return report
        report.slos = len(pending)
        clients: dict[int, PrometheusClient] = {}
        unreachable: set[int] = set()
        try:
            # Each pass gives every due SLO one chunk; SLOs still behind (backfills) get more in later passes.
            while pending:
                behind: list[Feed] = []
                for index, feed in enumerate(pending):
                    if report.fetches >= self.max_fetches or self._monotonic() - started >= self.max_seconds:
                        report.deferred = len({item.ref.slo_id for item in [*pending[index:], *behind]})
                        return report
                    if feed.source_id in unreachable:
                        continue
                    self._cursor = feed.ref.slo_id
                    outcome = self._fetch_chunk(db, feed, target, now, clients, report)
                    if outcome == "unreachable":
                        unreachable.add(feed.source_id)
                    elif outcome == "written" and feed.next_range(target) is not None:
                        behind.append(feed)
                pending = behind
            return report
        finally:
            for client in clients.values():
                client.close()
            report.seconds = self._monotonic() - started

    # ----------------------------------------------------------------------------------------- reading

    def _due_feeds(self, db: Database, now: datetime, target: int, report: FetchReport) -> list[Feed]:
        """Prometheus-fed SLOs with a minute to read, round robin from the cursor. An SLO whose definition
        cannot be turned into queries is recorded as failing here."""
        retry_before = now - timedelta(seconds=RETRY_FAILING_SECONDS)
        with db.reader() as session:
            rows = session.execute(
                select(SLO.id, SourceState.fetched_through_minute, SourceState.failing, SourceState.last_error_at)
                .join(DataSource, SLO.data_source_id == DataSource.id)
                .outerjoin(SourceState, SourceState.slo_id == SLO.id)
                .where(DataSource.type == "prometheus")
                .order_by(SLO.id)
            ).all()
            due = [
                slo_id
                for slo_id, fetched_through, failing, last_error_at in rows
                if (fetched_through is None or fetched_through < target)
                and not (failing and last_error_at is not None and last_error_at > retry_before)
            ]
            if not due:
                return []
            slos = session.scalars(
                select(SLO)
                .where(SLO.id.in_(due))
                .options(selectinload(SLO.objectives), selectinload(SLO.data_source))
                .order_by(SLO.id)
            ).all()
            states = {
                state.slo_id: state for state in session.scalars(select(SourceState).where(SourceState.slo_id.in_(due)))
            }
        feeds: list[Feed] = []
        for slo in slos:
            state = states.get(slo.id)
            fetched_through = state.fetched_through_minute if state else None
            ref = SLORef(
                slo_id=slo.id,
                slo_name=slo.name,
                slo_version=slo.version,
                service_id=slo.service_id,
                source_name=slo.data_source.name if slo.data_source else "",
            )
            try:
                feeds.append(self._feed(ref, slo, fetched_through, now, target))
            except Exception as error:  # a stored definition we cannot query must not stop the others
                message = str(error) if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"
                self._record_failure(db, ref, f"cannot build the queries: {message}", now, report)
        ahead = [feed for feed in feeds if feed.ref.slo_id > self._cursor]
        return ahead + [feed for feed in feeds if feed.ref.slo_id <= self._cursor]

    @staticmethod
    def _feed(ref: SLORef, slo: SLO, fetched_through: int | None, now: datetime, target: int) -> Feed:
        assert slo.data_source is not None
        spec = service.parsed_spec(slo)
        objectives = [(objective.id, objective.key) for objective in slo.objectives]
        if fetched_through is None or target - fetched_through > 24 * 60:
            # Only a backfill or a long gap needs the retention (always more than a day).
            oldest = target - service.retention_minutes(spec, now) + 1
        else:
            oldest = fetched_through + 1
        return Feed(
            ref=ref,
            source_id=slo.data_source.id,
            source_spec=DataSourceSpec.model_validate(slo.data_source.spec),
            plan=query_plan(spec, objectives),
            oldest_minute=oldest,
            fetched_through=fetched_through,
        )

    # --------------------------------------------------------------------------------------- fetching

    def _fetch_chunk(
        self,
        db: Database,
        feed: Feed,
        target: int,
        now: datetime,
        clients: dict[int, PrometheusClient],
        report: FetchReport,
    ) -> str:
        """Read and store one chunk. Returns written, stale, failed or unreachable."""
        chunk = feed.next_range(target)
        if chunk is None:
            return "stale"
        first, last = chunk
        report.fetches += 1
        try:
            client = clients.get(feed.source_id)
            if client is None:
                client = clients[feed.source_id] = PrometheusClient(
                    feed.source_spec, transport=self.transport, monotonic=self._monotonic
                )
            answers: dict[str, Answer] = {}
            for query in feed.plan.queries:
                report.queries += 1
                answers[query] = client.query_range(query, first, last)
            sums = minute_counts(feed.plan, answers)
        except SourceError as error:
            self._record_failure(db, feed.ref, str(error), now, report)
            return "unreachable" if isinstance(error, SourceUnreachable) else "failed"
        except Exception as error:  # a bug or an answer we did not foresee: recorded, never raised
            log.exception("slo.prometheus.fetch_crashed", slo=feed.ref.slo_name)
            self._record_failure(db, feed.ref, f"{type(error).__name__}: {error}", now, report)
            return "failed"
        try:
            written = self._write(db, feed, first, last, sums, now)
        except Exception as error:
            log.exception("slo.prometheus.write_failed", slo=feed.ref.slo_name)
            message = f"storing minutes failed: {type(error).__name__}: {error}"
            self._record_failure(db, feed.ref, message, now, report)
            return "failed"
        if not written:
            report.stale += 1
            return "stale"
        feed.fetched_through = last
        report.minutes_written += len({minute for (_, minute), (_, total) in sums.items() if total > 0})
        return "written"

    @staticmethod
    def _write(
        db: Database,
        feed: Feed,
        first: int,
        last: int,
        sums: dict[tuple[int, int], list[float]],
        now: datetime,
    ) -> bool:
        """Store one chunk and advance, unless another worker or an edit got there first (returns False)."""
        with db.transaction() as session:
            state = _locked_state(session, feed.ref)
            if state is None or state.fetched_through_minute != feed.fetched_through:
                return False
            objective_ids = [recipe.objective_id for recipe in feed.plan.recipes]
            # The chunk replaces its minutes: a minute stored earlier (under a previous indicator) that has
            # no events now is zeroed, through add_to_rollups so the evaluator recounts it.
            for objective_id, minute in session.execute(
                select(Rollup.objective_id, Rollup.minute).where(
                    Rollup.objective_id.in_(objective_ids), Rollup.minute >= first, Rollup.minute <= last
                )
            ):
                sums.setdefault((objective_id, minute), [0.0, 0.0])
            service.add_to_rollups(session, sums, now=now, replace=True)
            state.fetched_through_minute = last
            if last >= last_complete_minute(now):
                state.backfilled = True
            newest = max((minute for (_, minute), (_, total) in sums.items() if total > 0), default=None)
            if newest is not None:
                sample_at = rules.minute_datetime(newest + 1)  # the query point that covered that minute
                if state.last_sample_at is None or state.last_sample_at < sample_at:
                    state.last_sample_at = sample_at
            if state.failing:
                state.failing = False
                timeline.append(
                    session,
                    type="slo.source.recovered",
                    at=now,
                    service_id=feed.ref.service_id,
                    actor=ACTOR,
                    summary=f"SLO {feed.ref.slo_name} reads Prometheus data source {feed.ref.source_name} again",
                    data={"slo": feed.ref.slo_name, "dataSource": feed.ref.source_name, "lastError": state.last_error},
                )
        return True

    @staticmethod
    def _record_failure(db: Database, ref: SLORef, message: str, now: datetime, report: FetchReport) -> None:
        report.failures += 1
        report.failed.append(ref.slo_name)
        message = message[:MAX_ERROR_CHARS]
        log.warning("slo.prometheus.fetch_failed", slo=ref.slo_name, data_source=ref.source_name, error=message)
        try:
            with db.transaction() as session:
                state = _locked_state(session, ref)
                if state is None:
                    return
                state.last_error, state.last_error_at = message, now
                if not state.failing:
                    state.failing = True
                    timeline.append(
                        session,
                        type="slo.source.failed",
                        at=now,
                        service_id=ref.service_id,
                        actor=ACTOR,
                        summary=f"SLO {ref.slo_name} cannot read Prometheus data source {ref.source_name}: "
                        f"{message[:300]}",
                        data={"slo": ref.slo_name, "dataSource": ref.source_name, "error": message},
                    )
        except Exception:
            log.exception("slo.prometheus.record_failure_failed", slo=ref.slo_name)


def _locked_state(session: Session, ref: SLORef) -> SourceState | None:
    """The SLO's source state, locked, if the SLO still has the definition the fetch used. The lock comes
    first, so an edit that reset the state (a new indicator) is seen whole."""
    state = session.scalars(select(SourceState).where(SourceState.slo_id == ref.slo_id).with_for_update()).one_or_none()
    if session.scalar(select(SLO.version).where(SLO.id == ref.slo_id)) != ref.slo_version:
        return None
    if state is None:  # an SLO without a state row (created before they existed): start one
        state = SourceState(slo_id=ref.slo_id, backfilled=False, failing=False)
        session.add(state)
        session.flush()
    return state


__all__ = [
    "CHUNK_MINUTES",
    "Answer",
    "FetchReport",
    "PrometheusClient",
    "PrometheusSource",
    "QueryPlan",
    "Recipe",
    "SourceError",
    "SourceUnreachable",
    "go_float",
    "last_complete_minute",
    "le_matcher",
    "le_spellings",
    "minute_counts",
    "probe_queries",
    "query_plan",
    "threshold_queries",
    "with_window",
]
