"""Analysis measurements: one measurement of a check is one verdict (successful, failed, inconclusive, error) with
the value it was judged on. The action runner takes them outside any write transaction; ``rules.check_phase``
and ``rules.run_phase`` turn them into the run's verdict.

- ``http``: GET the environment's health URL (or the check's own); an expected status succeeds, another fails, no
  answer (refused, timeout) is an error.
- ``prometheus``: an instant query (``/api/v1/query``) against a Prometheus data source; the one value it returns
  is judged by the check's conditions. An empty answer is "no data": an error (or inconclusive), never success;
  several series are an error (the query must aggregate to one).
- ``sloBurn``: the burn rate of an SLO fed by pushed events, over the check's window but never before the
  analysis run started (so a post-promotion check sees the candidate's traffic, not the old environment's). No
  events in that span is "no data" as above.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2
from sqlalchemy.orm import Session

from relia import __version__
from relia.core.errors import ReliaError
from relia.deploys import rules
from relia.deploys.schemas import HttpCheck, PrometheusCheck, SloBurnCheck
from relia.slo import service as slo_service
from relia.slo.schemas import DataSourceSpec

MAX_PARALLEL_CHECKS = 8
DETAIL_CHARS = 500
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    check: str
    verdict: rules.Verdict
    value: float | None
    detail: str


MeasureFunction = Callable[[], Measurement]


@dataclass(frozen=True)
class PreparedCheck:
    """A check with everything read from the database that its measurement needs, so the measurement itself
    holds no transaction: the URL or query with placeholders filled in, and the data source's connection."""

    name: str
    measure: MeasureFunction


def _no_data(check: PrometheusCheck | SloBurnCheck) -> rules.Verdict:
    return rules.Verdict.inconclusive if check.on_no_data == "inconclusive" else rules.Verdict.error


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


# ------------------------------------------------------------------------------------------------------ http


def measure_http(check: HttpCheck, url: str) -> Measurement:
    try:
        response = httpx2.get(
            url,
            timeout=check.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": f"relia/{__version__} (deployment analysis)"},
        )
    except httpx2.HTTPError as exc:
        return Measurement(check.name, rules.Verdict.error, None, _short(f"GET {url}: {type(exc).__name__}: {exc}"))
    status = response.status_code
    verdict = rules.Verdict.successful if status in check.expect_status else rules.Verdict.failed
    expected = ", ".join(str(code) for code in check.expect_status)
    return Measurement(check.name, verdict, float(status), _short(f"GET {url}: HTTP {status} (expected {expected})"))


# ------------------------------------------------------------------------------------------------ prometheus


def measure_prometheus(check: PrometheusCheck, source: DataSourceSpec, query: str, at: datetime) -> Measurement:
    assert source.url is not None  # a prometheus data source always has one (its spec says so)
    url = source.url.rstrip("/") + "/api/v1/query"
    form = {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{check.timeout_seconds:g}s"}
    headers = {"Accept": "application/json", "User-Agent": f"relia/{__version__}", **source.headers}
    timeout = min(check.timeout_seconds, source.timeout_seconds)
    try:
        response = httpx2.post(url, data=form, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx2.HTTPError as exc:
        return Measurement(check.name, rules.Verdict.error, None, _short(f"{url}: {type(exc).__name__}: {exc}"))
    if len(response.content) > MAX_ANSWER_BYTES:
        return Measurement(check.name, rules.Verdict.error, None, f"the answer from {url} is too large")
    try:
        document = json.loads(response.content)
    except ValueError:
        return Measurement(
            check.name, rules.Verdict.error, None, _short(f"HTTP {response.status_code} from {url}: not JSON")
        )
    if response.status_code != 200 or not isinstance(document, dict) or document.get("status") != "success":
        message = document.get("error") if isinstance(document, dict) else None
        return Measurement(
            check.name, rules.Verdict.error, None, _short(f"HTTP {response.status_code}: {message or response.text}")
        )
    try:
        value = _single_value(document.get("data"))
    except ValueError as exc:
        return Measurement(check.name, rules.Verdict.error, None, _short(str(exc)))
    if value is None or not math.isfinite(value):
        return Measurement(check.name, _no_data(check), None, "no data: the query returned no finite value")
    success = rules.parse_condition(check.success_condition) if check.success_condition else None
    failure = rules.parse_condition(check.failure_condition) if check.failure_condition else None
    verdict = rules.measurement_verdict(value, success, failure)
    conditions = ", ".join(
        part
        for part in (
            f"success when {success}" if success else "",
            f"failure when {failure}" if failure else "",
        )
        if part
    )
    return Measurement(check.name, verdict, value, f"value {value:g} ({conditions})")


def _single_value(data: object) -> float | None:
    """The one number of an instant query's answer; None when it is empty. ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("bad data: the answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise ValueError(f"the query returned {len(result)} series; aggregate it to one (sum, max, ...)")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
        if not isinstance(sample, list) or len(sample) != 2:
            raise ValueError("bad data: a sample that is not [timestamp, value]")
        return _number(sample[1])
    raise ValueError(f"the query returned a {kind}; give an instant vector or scalar query")


def _number(raw: object) -> float:
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"bad data: {str(raw)[:40]!r} is not a number") from None


# ---------------------------------------------------------------------------------------------------- SLO burn


def measure_slo_burn(session: Session, check: SloBurnCheck, *, since: datetime, now: datetime) -> Measurement:
    """Burn over the minutes of the last ``window`` up to and including the current one, from when the run
    started at the earliest."""
    try:
        slo = slo_service.get_slo(session, check.slo)
    except ReliaError as exc:
        return Measurement(check.name, rules.Verdict.error, None, exc.detail)
    objectives = {objective.key: objective for objective in slo.objectives}
    key = check.objective or (slo.objectives[0].key if slo.objectives else None)
    objective = objectives.get(key or "")
    if objective is None:
        return Measurement(check.name, rules.Verdict.error, None, f"SLO {check.slo!r} has no objective {key!r}")
    window = timedelta(seconds=rules.parse_seconds(check.window))
    end = _epoch_minute(now) + 1
    start = max(_epoch_minute(now - window) + 1, _epoch_minute(since))
    good, total = slo_service.rollup_series(session, objective.id, start, end)
    good_events, events = float(good.sum()), float(total.sum())
    target = float(objective.target)
    rate = rules.burn_rate(events - good_events, events, target)
    verdict = rules.burn_verdict(rate, check.max_burn_rate, no_data=_no_data(check))
    span = f"{end - start} minute(s)"
    if rate is None:
        return Measurement(check.name, verdict, None, f"no data: no events for SLO {slo.name} in the last {span}")
    return Measurement(
        check.name,
        verdict,
        rate,
        f"burn rate {rate:.3g}x over {span} ({events - good_events:g} bad of {events:g} events; "
        f"must stay below {check.max_burn_rate:g}x)",
    )


def _epoch_minute(instant: datetime) -> int:
    return int(instant.timestamp()) // 60


# ----------------------------------------------------------------------------------------------------- running


def measure_all(prepared: list[PreparedCheck]) -> list[Measurement]:
    """Measure the checks side by side (each bounded by its own timeout); a check that raises is an error."""

    def guarded(item: PreparedCheck) -> Measurement:
        try:
            return item.measure()
        except Exception as exc:  # a bug in one check must not lose the others' measurements
            return Measurement(item.name, rules.Verdict.error, None, _short(f"{type(exc).__name__}: {exc}"))

    if len(prepared) <= 1:
        return [guarded(item) for item in prepared]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHECKS, len(prepared))) as pool:
        return list(pool.map(guarded, prepared))
