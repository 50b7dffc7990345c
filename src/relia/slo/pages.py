"""SLO pages: the list of every SLO (worst first), one SLO's definition, status, burn-down chart, burn
rates, forecast, warnings, budget adjustments and recent events, and the SLO section of a service page.

Thin routes as elsewhere: read through ``relia.slo.service`` and ``relia.slo.history``, shape the result
for the templates under ``templates/slo/``, and write only through the service functions, with the
signed-in user's rights. Every page works without JavaScript; the chart is an SVG drawn here, which
``static/relia-slo.js`` replaces with an interactive uPlot chart when it can.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.core.models import TimelineEvent
from relia.slo import history, rules, service
from relia.slo.evaluator import GRACE_MINUTES
from relia.slo.models import SLO, HourlyRollup, Rollup
from relia.slo.schemas import AdjustmentCreate, SLOSpec
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Name = Annotated[str, Path(max_length=63)]

# Worst first, as the API sorts them. Each state is shown as words, a shape and a colour (never colour alone).
STATES: dict[str, dict[str, str]] = {
    "exhausted": {"label": "exhausted", "shape": "✖", "css": "status-bad"},
    "at_risk": {"label": "at risk", "shape": "▲", "css": "status-warn"},
    "healthy": {"label": "healthy", "shape": "●", "css": "status-good"},
    "no_data": {"label": "no data", "shape": "◌", "css": "status-muted"},
    "pending": {"label": "not evaluated yet", "shape": "○", "css": "status-muted"},
}
STATE_RANK = {state: rank for rank, state in enumerate(STATES)}
templates.env.globals["slo_states"] = STATES

# An SLO list is sorted by budget, which needs every SLO; past this many the page says it shows only some.
MAX_LISTED = 1000
RECENT_EVENTS = 20
# About this many points per burn-down chart, at a step from NICE_STEPS (minutes) so points fall on round times.
CHART_POINTS = 300
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
AT_RISK_BELOW = 0.25  # the evaluator calls an objective at risk below a quarter of its budget left
NOTICES = {
    "added": "Budget adjustment added. Budgets and alerts are recounted at the next evaluation (within a minute).",
    "withdrawn": "Budget adjustment withdrawn. Budgets and alerts are recounted at the next evaluation "
    "(within a minute).",
}
OPERATORS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}


# ------------------------------------------------------------------------------------------------ shaping


@dataclass(frozen=True)
class ObjectiveRow:
    """One objective's latest evaluation as the pages show it. ``detail`` is the evaluator's JSON (see
    ``relia.slo.evaluator.detail``), None until the objective has been evaluated."""

    id: int
    key: str
    label: str
    target: float
    bound: str | None  # threshold indicators: which values are good, e.g. "≤ 0.3 s"
    state: str
    remaining: float | None
    page: bool
    ticket: bool
    no_data_alert: bool
    evaluated_at: datetime | None
    detail: dict[str, Any] | None

    @property
    def sli(self) -> float | None:
        """The measured share of good events (or slices) over the current window."""
        return (self.detail or {}).get("sli")


@dataclass(frozen=True)
class SLORow:
    slo: SLO
    spec: SLOSpec
    objectives: list[ObjectiveRow]

    @property
    def title(self) -> str:
        return self.spec.display_name or self.slo.name

    @property
    def worst_state(self) -> str:
        return min((row.state for row in self.objectives), key=STATE_RANK.__getitem__, default="pending")

    @property
    def least_remaining(self) -> float | None:
        return min((row.remaining for row in self.objectives if row.remaining is not None), default=None)

    @property
    def sort_key(self) -> tuple[int, float, str]:
        """Worst state first, then the least budget left: an objective that pages is listed above a quieter
        one with less budget left, as in the API's list."""
        least = self.least_remaining
        return STATE_RANK[self.worst_state], math.inf if least is None else least, self.slo.name


def slo_rows(session: Session, slos: list[SLO]) -> list[SLORow]:
    """Each SLO with its objectives' latest status (one query for all statuses)."""
    found = service.statuses(session, [objective.id for slo in slos for objective in slo.objectives])
    rows = []
    for slo in slos:
        spec = service.parsed_spec(slo)
        by_key = {item.name: item for item in spec.objectives}
        threshold = spec.indicator.threshold
        objectives = []
        for objective in slo.objectives:
            item = by_key.get(objective.key)
            status = found.get(objective.id)
            objectives.append(
                ObjectiveRow(
                    id=objective.id,
                    key=objective.key,
                    label=(item.display_name if item and item.display_name else objective.key),
                    target=item.target if item else float(objective.target),
                    bound=None
                    if threshold is None or objective.threshold is None
                    else f"{OPERATORS[threshold.op]} {objective.threshold:g} {threshold.unit}",
                    state=status.state if status else "pending",
                    remaining=status.budget_remaining if status else None,
                    page=bool(status and status.page_active),
                    ticket=bool(status and status.ticket_active),
                    no_data_alert=bool(status and status.no_data_active),
                    evaluated_at=status.evaluated_at if status else None,
                    detail=status.detail if status else None,
                )
            )
        rows.append(SLORow(slo=slo, spec=spec, objectives=objectives))
    return rows


def service_slo_rows(session: Session, service_slug: str) -> list[SLORow]:
    """The SLOs of one service, worst first: the SLO section of the service page."""
    slos, _ = service.list_slos(session, service=service_slug, limit=MAX_LISTED)
    return sorted(slo_rows(session, slos), key=lambda row: row.sort_key)


def indicator_summary(spec: SLOSpec, slo: SLO) -> str:
    """What is measured and where it comes from, in a few words: "good/total events · pushed"."""
    indicator = spec.indicator
    if indicator.ratio is not None:
        ratio = indicator.ratio
        measured = "error ratio" if ratio.error_ratio else "bad/total events" if ratio.bad else "good/total events"
    elif indicator.threshold is not None:
        threshold = indicator.threshold
        measured = f"{threshold.metric or 'value'} {OPERATORS[threshold.op]} threshold ({threshold.unit})"
    else:
        measured = "probe up/down"
    source = slo.data_source
    return f"{measured} · {'pushed' if source is None else f'{source.type} {source.name}'}"


def percent(value: float | None, digits: int = 1) -> str:
    """0.4217 -> "42.2 %"; None -> "no data". Trailing zeros go: 0.999 -> "99.9 %", 0.5 -> "50 %"."""
    if value is None:
        return "no data"
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{'0' if text == '-0' else text} %"


def target_text(target: float) -> str:
    """Targets keep every digit they were given: 0.9995 -> "99.95 %"."""
    return f"{round(target * 100, 6):g} %"


def human_minutes(minutes: float) -> str:
    """A duration in its largest unit and the next one: 4380 -> "3 days 1 hour", 1445 -> "1 day",
    90 -> "1 hour 30 minutes"; under a minute -> "less than a minute"."""
    whole = int(minutes)
    if whole < 1:
        return "less than a minute"

    def count(number: int, unit: str) -> str:
        return f"{number} {unit}{'s' if number != 1 else ''}"

    days, rest = divmod(whole, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return count(days, "day") + (f" {count(hours, 'hour')}" if hours else "")
    if hours:
        return count(hours, "hour") + (f" {count(mins, 'minute')}" if mins else "")
    return count(mins, "minute")


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "never"


templates.env.filters["slo_percent"] = percent
templates.env.filters["slo_target"] = target_text
templates.env.filters["utc_minute"] = when


# ------------------------------------------------------------------------------------------------- list


@router.get("/slos", response_class=HTMLResponse)
@page
def slos_page(
    request: Request,
    session: SessionDep,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    viewer = _viewer(request, session)
    slos, more = service.list_slos(session, limit=MAX_LISTED)
    rows = sorted(slo_rows(session, slos), key=lambda row: row.sort_key)
    # The service filter offers the services that have SLOs, by name.
    services = sorted({row.slo.service.slug: row.slo.service for row in rows}.values(), key=lambda svc: svc.name)
    state = state if state in STATES else ""
    shown = [
        row
        for row in rows
        if (not service_slug or row.slo.service.slug == service_slug)
        and (not state or any(objective.state == state for objective in row.objectives))
    ]
    # htmx swaps in the results alone; a history restore (also sent with HX-Request) needs the whole page.
    headers = request.headers
    partial = bool(headers.get("hx-request")) and not headers.get("hx-history-restore-request")
    response = _render(
        request,
        "slo/_list_results.html" if partial else "slo/list.html",
        viewer,
        rows=shown,
        total=len(rows),
        truncated=more is not None,
        services=services,
        service_slug=service_slug or "",
        state=state,
        partial=partial,
    )
    response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
    return response


# ----------------------------------------------------------------------------------------------- one SLO


@router.get("/slos/{name}", response_class=HTMLResponse)
@page
def slo_page(
    request: Request,
    name: Name,
    session: SessionDep,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    viewer = _viewer(request, session)
    return _slo_page(request, session, viewer, name, notice=NOTICES.get(notice or ""))


def _slo_page(
    request: Request,
    session: Session,
    viewer: Principal,
    name: str,
    *,
    notice: str | None = None,
    form_errors: list[str] | None = None,
    form_values: dict[str, str] | None = None,
    withdraw_error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The SLO page; after a refused form, the same page with the refusal next to the form."""
    slo = service.get_slo(session, name)
    now = request.app.state.clock.now()
    [row] = slo_rows(session, [slo])
    spec = row.spec
    owner = slo.service.owner_team
    may_adjust = viewer.can_change_team(slo.service.owner_team_id)
    objectives = [
        {
            "row": objective,
            "tiers": burn_rate_tiers(spec, objective),
            "forecast": forecast_sentences(objective),
            "chart": burn_down(session, slo, spec, objective, now),
        }
        for objective in row.objectives
    ]
    return _render(
        request,
        "slo/detail.html",
        viewer,
        status_code=status_code,
        row=row,
        slo=slo,
        spec=spec,
        owner=owner,
        definition=definition(spec, slo),
        source=source_health(session, slo),
        objectives=objectives,
        lints=service.lint(spec),
        adjustments=service.adjustments(session, [slo.id], include_deleted=True).get(slo.id, []),
        may_adjust=may_adjust,
        refusal=None if may_adjust else _why_not(viewer, owner.name),
        events=recent_events(session, slo.name),
        notice=notice,
        form_errors=form_errors or [],
        form_values=form_values or {},
        withdraw_error=withdraw_error,
    )


def _why_not(viewer: Principal, team_name: str) -> str:
    if viewer.scope < Scope.write:
        return "You are signed in with a read-only credential, so you can read this SLO but not change it."
    return f"Only members of {team_name} (or an administrator) may add or withdraw budget adjustments."


def definition(spec: SLOSpec, slo: SLO) -> dict[str, str]:
    """The definition in words, for a description list."""
    window = spec.window
    if window.rolling:
        window_text = f"rolling {window.rolling}"
    else:
        window_text = f"calendar {window.calendar}, starting at midnight {window.time_zone}"
    method = spec.budgeting_method
    if method == "Occurrences":
        method_text = "Occurrences: the budget is a share of the events"
    elif method == "Timeslices":
        first = spec.objectives[0]
        method_text = (
            f"Timeslices: a {first.time_slice_window} slice is good when at least "
            f"{target_text(first.time_slice_target or 0)} of it is good; the budget is time"
        )
    else:
        method_text = f"RatioTimeslices: the mean ratio of {spec.objectives[0].time_slice_window} slices"
    alerting = spec.alerting
    alert_parts = [
        f"page {'on' if alerting.page.enabled else 'off'}",
        f"ticket {'on' if alerting.ticket.enabled else 'off'}",
        f"no-data alert after {alerting.no_data.after}" if alerting.no_data.enabled else "no-data alert off",
    ]
    if alerting.min_events:
        alert_parts.append(f"windows with fewer than {alerting.min_events} events never fire")
    return {
        "Indicator": indicator_summary(spec, slo),
        "Window": window_text,
        "Budgeting method": method_text,
        "Alerting": ", ".join(alert_parts),
    }


def source_health(session: Session, slo: SLO) -> dict[str, Any]:
    """Where events come from and how that feed is doing. ``last_data`` is the last minute holding events,
    or the source state's last sample if later: that is written only by polled sources, so pushed SLOs are
    read from their stored minutes."""
    state = service.source_state(session, slo.id)
    ids = [objective.id for objective in slo.objectives]
    last_minute = (
        session.scalar(select(func.max(Rollup.minute)).where(Rollup.objective_id.in_(ids), Rollup.total > 0))
        if ids
        else None
    )
    last_data = rules.minute_datetime(last_minute) if last_minute is not None else None
    if state is not None and state.last_sample_at is not None:
        last_data = max(last_data, state.last_sample_at) if last_data else state.last_sample_at
    source = slo.data_source
    return {
        "kind": "pushed events" if source is None else f"{source.type} data source {source.name}",
        "failing": bool(state and state.failing),
        "last_error": state.last_error if state else None,
        "last_error_at": state.last_error_at if state else None,
        "last_data": last_data,
        "backfilled": bool(state.backfilled) if state else True,
    }


def burn_rate_tiers(spec: SLOSpec, objective: ObjectiveRow) -> list[dict[str, Any]]:
    """Each alert tier: its windows and threshold from the definition, its burn rates and whether it fires
    from the latest evaluation (None for a tier the evaluation did not report, e.g. just after a change)."""
    policy = service.alert_policy(spec, objective.key)
    evaluated = {tier["name"]: tier for tier in ((objective.detail or {}).get("alerts") or {}).get("tiers", [])}
    tiers = []
    for rule in policy.rules:
        found = evaluated.get(rule.name)
        tiers.append(
            {
                "name": rule.name,
                "severity": str(rule.severity),
                "long": rules.format_duration(rule.tier.long_minutes),
                "short": rules.format_duration(rule.tier.short_minutes),
                "factor": rule.factor_float,
                "threshold": rule.threshold_float,
                "can_fire": rule.can_fire,
                "long_burn": found["longBurnRate"] if found else None,
                "short_burn": found["shortBurnRate"] if found else None,
                "firing": found["firing"] if found else None,
            }
        )
    return tiers


def forecast_sentences(objective: ObjectiveRow) -> list[str]:
    """The forecast in words: when the budget runs out and what is left at the end of the period if the
    last hour's burn rate holds."""
    detail = objective.detail
    if detail is None:
        return ["No forecast yet: this objective has not been evaluated."]
    remaining = (detail.get("budget") or {}).get("remainingFraction")
    outlook = detail.get("forecast") or {}
    window = detail.get("window") or {}
    burn = outlook.get("burnRate")
    if remaining is None:
        return ["No forecast: there are no events in the current window."]
    if remaining <= 0:
        spent = "exhausted" if remaining == 0 else f"overspent by {percent(-remaining)}"
        return [f"The error budget is {spent}; every further error counts against the objective."]
    if burn is None:
        return ["No forecast: there were no events in the last hour to take a burn rate from."]
    rate = f"{burn:.2f}".rstrip("0").rstrip(".")
    sentences = []
    to_exhaustion = outlook.get("minutesToExhaustion")
    minutes_left = window.get("minutesLeft")
    if burn <= 0 or to_exhaustion is None:
        sentences.append("Nothing was spent in the last hour: at that rate the budget lasts indefinitely.")
    else:
        evaluated = datetime.fromisoformat(window["end"]) if window.get("end") else objective.evaluated_at
        spent_in = f"about {human_minutes(to_exhaustion)}"
        if evaluated is not None:
            at = rules.minute_datetime(rules.epoch_minute(evaluated) + int(to_exhaustion))
            spent_in += f" (around {when(at)} UTC)"
        after_period = minutes_left is not None and to_exhaustion > minutes_left
        sentences.append(
            f"At the last hour's burn rate ({rate}\N{MULTIPLICATION SIGN}), the remaining budget would be spent in "
            f"{spent_in}" + (", after this period ends." if after_period else ".")
        )
    at_end = outlook.get("remainingAtPeriodEnd")
    if at_end is not None:
        if minutes_left is not None:
            ending = f"At this rate the period ends in {human_minutes(minutes_left)}"
            left = f"with {percent(at_end)} of the budget left" if at_end >= 0 else f"{percent(-at_end)} over budget"
        else:
            period = rules.format_duration(int(window.get("periodMinutes") or 0))
            # Old errors leave a rolling window as new ones enter it: at a steady rate it settles at 1 - rate.
            ending = f"The window is rolling, so old errors drop out too: after a whole {period} at this rate"
            left = (
                f"{percent(at_end)} of the budget would be left"
                if at_end >= 0
                else f"the budget would be overspent by {percent(-at_end)}"
            )
        sentences.append(f"{ending}, {left}.")
    return sentences


def recent_events(session: Session, slo_name: str) -> list[TimelineEvent]:
    """The SLO's latest ``slo.*`` timeline events, newest first. Events carry the SLO's name in their data
    (not only its service), so an SLO that moved service keeps its history."""
    return list(
        session.scalars(
            select(TimelineEvent)
            .where(
                TimelineEvent.type.startswith("slo.", autoescape=True),
                TimelineEvent.data["slo"].as_string() == slo_name,
            )
            .order_by(TimelineEvent.id.desc())
            .limit(RECENT_EVENTS)
        )
    )


# ------------------------------------------------------------------------------------------ burn-down chart

# The fallback SVG: text is laid out in pixels over a plot that stretches to the page's width (a nested SVG
# with its own viewBox), so labels stay legible however wide the chart is drawn.
SVG_HEIGHT, SVG_PLOT_TOP, SVG_PLOT_HEIGHT, SVG_PLOT_WIDTH = 230, 18, 180, 1000


def burn_down(session: Session, slo: SLO, spec: SLOSpec, objective: ObjectiveRow, now: datetime) -> dict[str, Any]:
    """The remaining budget over the current window, from ``history.series``: the points for uPlot, the
    same points drawn as an SVG (shown without JavaScript) and a sentence saying what the chart shows.
    ``note`` explains a chart that is missing or starts late."""
    maths = service.math_spec(spec, objective.key)
    # Up to the last minute the evaluator counts, so the chart ends where the status above it was taken.
    end = rules.epoch_minute(now) - GRACE_MINUTES
    span = rules.window_span(maths.window, end)
    start, note = span.start, None
    if spec.window.rolling:
        # Each point of a rolling window reads the whole window before it. Minutes older than the retention
        # are folded into hourly totals, which history.series does not read: start where it reads them all.
        complete_from = _minutes_complete_from(session, objective.id)
        if complete_from is not None and complete_from + span.period_minutes > start:
            start = complete_from + span.period_minutes
            note = (
                "The chart starts late: older minutes are kept only as hourly totals, "
                "which the burn-down does not read yet."
            )
    step = next((size for size in NICE_STEPS if (end - start) / size <= CHART_POINTS), NICE_STEPS[-1])
    count = min((end - start) // step, history.MAX_POINTS)
    if count < 2:
        return {"points": [], "note": note or "The window has only just begun: there is nothing to chart yet."}
    try:
        series = history.series(session, slo, objective.key, history.Range(end - count * step, end, step))
    except ReliaError as exc:  # a chart that cannot be drawn must not take the rest of the page with it
        return {"points": [], "note": f"No chart: {exc.detail}"}
    points = [
        (int(datetime.fromisoformat(point["at"]).timestamp()), point["budgetRemaining"]) for point in series["points"]
    ]
    return {
        "points": points,
        "step": rules.format_duration(step),
        "note": note,
        "summary": _chart_summary(points),
        "svg": _chart_svg(points),
        "data": {
            "x": [at for at, _ in points],
            "y": [None if value is None else round(value * 100, 4) for _, value in points],
            "atRisk": AT_RISK_BELOW * 100,
        },
    }


def _minutes_complete_from(session: Session, objective_id: int) -> int | None:
    """The first minute from which every minute is still stored, or None when nothing was folded away."""
    if session.scalar(select(HourlyRollup.hour).where(HourlyRollup.objective_id == objective_id).limit(1)) is None:
        return None
    return session.scalar(select(func.min(Rollup.minute)).where(Rollup.objective_id == objective_id))


def _chart_summary(points: list[tuple[int, float | None]]) -> str:
    known = [(at, value) for at, value in points if value is not None]
    if not known:
        return "No events in this window: there is no budget to chart."
    first_at, first = known[0]
    lowest_at, lowest = min(known, key=lambda item: item[1])
    last = known[-1][1]
    stamp = lambda at: when(datetime.fromtimestamp(at, UTC))  # noqa: E731
    return (
        f"Budget remaining: {percent(first)} at {stamp(first_at)} UTC, lowest {percent(lowest)} at "
        f"{stamp(lowest_at)} UTC, {percent(last)} at the latest point."
    )


def _chart_svg(points: list[tuple[int, float | None]]) -> dict[str, Any]:
    """Coordinates for the SVG fallback: the budget line (broken where there is no data) and the 100 %, 25 %
    and 0 % guides in plot units, the first and last times. The y axis always shows 0-100 %, more when
    overspent."""
    values = [value for _, value in points if value is not None]
    low, high = min([0.0, *values]), max([1.0, *values])
    first, last = points[0][0], points[-1][0]

    def x(at: int) -> float:
        return round((at - first) / max(1, last - first) * SVG_PLOT_WIDTH, 1)

    def y(value: float) -> float:
        return round((high - value) / (high - low) * SVG_PLOT_HEIGHT, 1)

    segments: list[str] = []
    pen_down = False
    for at, value in points:
        if value is None:
            pen_down = False
            continue
        segments.append(f"{'L' if pen_down else 'M'}{x(at)} {y(value)}")
        pen_down = True
    guides = [(label, y(level)) for label, level in (("100 %", 1.0), ("25 %", AT_RISK_BELOW), ("0 %", 0.0))]
    if low < 0:
        guides.append((percent(low, 0), y(low)))
    return {
        "height": SVG_HEIGHT,
        "plot_top": SVG_PLOT_TOP,
        "plot_width": SVG_PLOT_WIDTH,
        "plot_height": SVG_PLOT_HEIGHT,
        "path": " ".join(segments),
        "guides": guides,
        "start_label": when(datetime.fromtimestamp(first, UTC)),
        "end_label": when(datetime.fromtimestamp(last, UTC)),
    }


# ------------------------------------------------------------------------------------------- adjustments


def _parse_utc(text: str, field: str) -> tuple[datetime | None, str | None]:
    """A time typed as ``2026-03-02 08:00`` (UTC) or ISO 8601 with a zone; returns (time, problem)."""
    cleaned = text.strip()
    if not cleaned:
        return None, f"{field}: required, e.g. 2026-03-02 08:00"
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        return None, f"{field}: “{cleaned}” is not a time; write it as 2026-03-02 08:00 (UTC)"
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None


@router.post("/slos/{name}/adjustments", response_class=HTMLResponse)
@page
def add_adjustment_form(
    request: Request,
    name: Name,
    session: SessionDep,
    start: Annotated[str, Form(max_length=40)] = "",
    end: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    values = {"start": start, "end": end, "reason": reason}
    starts_at, start_problem = _parse_utc(start, "Start")
    ends_at, end_problem = _parse_utc(end, "End")
    problems = [problem for problem in (start_problem, end_problem) if problem]
    status_code = 422
    if not problems:
        try:
            data = AdjustmentCreate.model_validate({"start": starts_at, "end": ends_at, "reason": reason.strip()})
            service.add_adjustment(session, actor=viewer, name=name, data=data, now=request.app.state.clock.now())
            session.commit()
        except ValidationError as exc:
            problems = [_validation_message(error) for error in exc.errors()]
        except ReliaError as exc:
            session.rollback()
            problems, status_code = [f"Nothing was changed: {exc.detail}"], exc.status
    if problems:
        return _slo_page(
            request, session, viewer, name, form_errors=problems, form_values=values, status_code=status_code
        )
    return RedirectResponse(f"/slos/{quote(name)}?notice=added#adjustments-h", status_code=303)


def _validation_message(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]).capitalize() or "End"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"


@router.post("/slos/{name}/adjustments/{adjustment_id}/withdraw", response_class=HTMLResponse)
@page
def withdraw_adjustment_form(
    request: Request,
    name: Name,
    adjustment_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    try:
        service.remove_adjustment(
            session, actor=viewer, name=name, adjustment_id=adjustment_id, now=request.app.state.clock.now()
        )
        session.commit()
    except ReliaError as exc:
        session.rollback()
        message = f"Nothing was changed: {exc.detail}"
        return _slo_page(request, session, viewer, name, withdraw_error=message, status_code=exc.status)
    return RedirectResponse(f"/slos/{quote(name)}?notice=withdrawn#adjustments-h", status_code=303)


__all__ = ["STATES", "SLORow", "router", "service_slo_rows", "slo_rows"]
