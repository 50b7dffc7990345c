"""SLO use cases: data sources, SLOs and objectives, pushed events, budget adjustments, status reads.

Keyword-only functions taking a session, the actor and ``now``; the caller owns the transaction. Rights
follow the service: members of the team that owns an SLO's service may change the SLO.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from relia.catalog.models import Service
from relia.catalog.service import check_version
from relia.core import audit, generations, timeline
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, InvalidInput, NotFound
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from relia.slo import rules
from relia.slo.models import (
    SLO,
    BudgetAdjustment,
    DataSource,
    EvaluatorMark,
    HourlyRollup,
    IngestBatch,
    Objective,
    ObjectiveStatus,
    Rollup,
    SourceState,
    WindowState,
)
from relia.slo.schemas import AdjustmentCreate, DataSourceSpec, EventBatch, SLOCreate, SLOSpec

# Bumped by every transaction that changes an SLO or its evaluated status (each evaluator tick): caches of
# what depends on budgets (the release gate's, in ``relia.policy.gate``) are keyed by it.
SLO_GENERATION = "slo"

# Pushed timestamps may run this far ahead of our clock (client clocks drift).
FUTURE_SKEW = timedelta(minutes=2)
# How long a batch's idempotency key is remembered.
BATCH_KEY_RETENTION = timedelta(days=7)


# ------------------------------------------------------------------------------------------ data sources


def get_data_source(session: Session, name: str) -> DataSource:
    source = session.scalars(select(DataSource).where(DataSource.name == name)).one_or_none()
    if source is None:
        raise NotFound(f"There is no data source {name!r}.")
    return source


def list_data_sources(session: Session) -> list[DataSource]:
    return list(session.scalars(select(DataSource).order_by(DataSource.name)))


def data_source_spec(source: DataSource) -> dict[str, Any]:
    return DataSourceSpec.model_validate(source.spec).model_dump(mode="json")


def redacted_spec(source: DataSource, viewer: Principal) -> dict[str, Any]:
    """Header values may hold credentials: only administrators see them."""
    spec = data_source_spec(source)
    if not viewer.acts_as_admin:
        spec["headers"] = {name: "********" for name in spec.get("headers", {})}
    return spec


def upsert_data_source(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: DataSourceSpec,
    now: datetime,
    expected_version: int | None = None,
    config_managed: bool | None = None,
) -> tuple[DataSource, bool]:
    """Create or replace a data source (administrators: it holds connection details). Returns (source, created)."""
    actor.require_admin()
    source = session.scalars(select(DataSource).where(DataSource.name == name)).one_or_none()
    after = spec.model_dump(mode="json")
    if source is None:
        source = DataSource(
            name=name,
            type=spec.type,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(source)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="create",
            kind="DataSource",
            key=name,
            before=None,
            after=_without_secrets(after),
            now=now,
        )
        return source, True
    check_version("DataSource", name, source.version, expected_version, if_match=True)
    before = data_source_spec(source)
    if config_managed is not None:
        source.config_managed = config_managed
    if before != after:
        source.type, source.spec, source.updated_at = spec.type, after, now
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="update",
            kind="DataSource",
            key=name,
            before=_without_secrets(before),
            after=_without_secrets(after),
            now=now,
        )
    return source, False


def delete_data_source(session: Session, *, actor: Principal, name: str, now: datetime) -> None:
    actor.require_admin()
    source = get_data_source(session, name)
    users = session.scalars(select(SLO.name).where(SLO.data_source_id == source.id).order_by(SLO.name)).all()
    if users:
        raise Conflict(f"Data source {name!r} feeds SLOs ({', '.join(users)}); change them first.")
    before = data_source_spec(source)
    session.delete(source)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="delete",
        kind="DataSource",
        key=name,
        before=_without_secrets(before),
        after=None,
        now=now,
    )


def _without_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    return {**spec, "headers": {name: "********" for name in spec.get("headers", {})}}


# ------------------------------------------------------------------------------------------------- SLOs


_SLO_LOADS = (selectinload(SLO.objectives), selectinload(SLO.service), selectinload(SLO.data_source))


def get_slo(session: Session, name: str) -> SLO:
    slo = session.scalars(select(SLO).where(SLO.name == name).options(*_SLO_LOADS)).one_or_none()
    if slo is None:
        raise NotFound(f"There is no SLO {name!r}.")
    return slo


def list_slos(
    session: Session,
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    service: str | None = None,
) -> tuple[list[SLO], str | None]:
    statement = select(SLO).options(*_SLO_LOADS).order_by(SLO.name)
    after = decode_cursor(cursor)
    if after is not None:
        statement = statement.where(SLO.name > str(after))
    if service:
        statement = statement.join(Service, SLO.service_id == Service.id).where(Service.slug == service)
    rows = session.scalars(statement.limit(limit + 1)).all()
    items = list(rows[:limit])
    return items, encode_cursor(items[-1].name) if len(rows) > limit and items else None


def slo_spec(slo: SLO) -> dict[str, Any]:
    return SLOSpec.model_validate(slo.spec).model_dump(mode="json")


def parsed_spec(slo: SLO) -> SLOSpec:
    return SLOSpec.model_validate(slo.spec)


def math_spec(spec: SLOSpec, objective_key: str) -> rules.SLOSpec:
    """The pure-math view of one objective of an SLO."""
    objective = next(item for item in spec.objectives if item.name == objective_key)
    if spec.window.rolling is not None:
        window: rules.Window = rules.RollingWindow(rules.parse_duration(spec.window.rolling))
    else:
        window = rules.CalendarWindow(rules.CalendarUnit(spec.window.calendar), spec.window.time_zone)
    if spec.budgeting_method == "Timeslices":
        budgeting = rules.Budgeting.timeslices(
            rules.parse_duration(objective.time_slice_window or "1m"), str(objective.time_slice_target)
        )
    elif spec.budgeting_method == "RatioTimeslices":
        budgeting = rules.Budgeting.ratio_timeslices(rules.parse_duration(objective.time_slice_window or "1m"))
    else:
        budgeting = rules.Budgeting.occurrences()
    return rules.SLOSpec(target=rules.parse_target(str(objective.target)), budgeting=budgeting, window=window)


def _resolve_references(session: Session, spec: SLOSpec) -> tuple[Service, DataSource | None]:
    service = session.scalars(select(Service).where(Service.slug == spec.service)).one_or_none()
    if service is None:
        raise InvalidInput(
            f"There is no service {spec.service!r}.",
            errors=[FieldError("service", f"there is no service {spec.service!r}")],
        )
    source = None
    if spec.indicator.source is not None:
        source = session.scalars(select(DataSource).where(DataSource.name == spec.indicator.source)).one_or_none()
        if source is None:
            raise InvalidInput(
                f"There is no data source {spec.indicator.source!r}.",
                errors=[FieldError("indicator.source", "no such data source")],
            )
        if source.type == "prometheus" and not _has_queries(spec):
            raise InvalidInput(
                "A Prometheus-fed indicator needs its queries.",
                errors=[FieldError("indicator", "give the PromQL for this indicator")],
            )
    elif _has_queries(spec):
        raise InvalidInput("Queries need a data source.", errors=[FieldError("indicator.source", "required")])
    return service, source


def _has_queries(spec: SLOSpec) -> bool:
    indicator = spec.indicator
    if indicator.ratio is not None:
        return indicator.ratio.has_queries
    if indicator.threshold is not None:
        return indicator.threshold.metric is not None
    return indicator.probe is not None and indicator.probe.query is not None


def lint(spec: SLOSpec) -> list[str]:
    """Warnings that do not stop an SLO from being saved: tiers that can never fire, windows that round
    to nothing, the minute/month shorthand trap."""
    warnings: list[str] = []
    for objective in spec.objectives:
        policy = alert_policy(spec, objective.name)
        warnings += [f"objective {objective.name}: {item.message}" for item in policy.lints()]
    return sorted(set(warnings))


def alert_policy(spec: SLOSpec, objective_key: str) -> rules.AlertPolicy:
    maths = math_spec(spec, objective_key)
    catalog = None
    if spec.alerting.windows:
        catalog = rules.AlertCatalog(
            name="custom",
            period_minutes=maths.window.nominal_minutes,
            tiers=tuple(
                rules.AlertTier(
                    name=f"{tier.severity}-{index + 1}",
                    severity=rules.Severity(tier.severity),
                    budget_percent=rules.exact(str(tier.budget_percent)),
                    long_minutes=rules.parse_duration(tier.long),
                    short_minutes=rules.parse_duration(tier.short),
                )
                for index, tier in enumerate(spec.alerting.windows)
            ),
        )
    return rules.alert_policy(maths, catalog=catalog, min_events=spec.alerting.min_events)


def _sync_objectives(slo: SLO, spec: SLOSpec) -> bool:
    """Match objectives by name: new names start without history, removed ones take theirs along.
    Returns whether any objective's counting changed (its history was counted differently before)."""
    existing = {objective.key: objective for objective in slo.objectives}
    kept: list[Objective] = []
    recount = False
    for position, item in enumerate(spec.objectives):
        objective = existing.get(item.name) or Objective(key=item.name)
        if objective.id is not None and objective.threshold != item.threshold:
            recount = True
        objective.position, objective.target, objective.threshold = position, str(item.target), item.threshold
        kept.append(objective)
    slo.objectives = kept
    return recount


def create_slo(
    session: Session, *, actor: Principal, data: SLOCreate, now: datetime, config_managed: bool = False
) -> SLO:
    spec = SLOSpec.model_validate(data.model_dump(exclude={"name"}))
    service, source = _resolve_references(session, spec)
    actor.require_team(service.owner_team_id, f"SLOs of service {service.slug!r}")
    if session.scalar(select(SLO.id).where(SLO.name == data.name)) is not None:
        raise Conflict(f"An SLO {data.name!r} exists already.", errors=[FieldError("name", "already taken")])
    slo = SLO(
        name=data.name,
        service=service,
        data_source=source,
        spec=spec.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        config_managed=config_managed,
    )
    slo.objectives = []
    _sync_objectives(slo, spec)
    session.add(slo)
    session.flush()
    generations.bump(session, SLO_GENERATION)
    session.add(SourceState(slo_id=slo.id, backfilled=source is None or source.type != "prometheus"))
    _reset_evaluation(session, slo)
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="SLO",
        key=slo.name,
        before=None,
        after=slo_spec(slo),
        now=now,
    )
    timeline.append(
        session,
        type="slo.created",
        at=now,
        service_id=service.id,
        actor=actor.name,
        summary=f"SLO {slo.name} created",
        data={"slo": slo.name},
    )
    return slo


def update_slo(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: SLOSpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> SLO:
    slo = get_slo(session, name)
    actor.require_team(slo.service.owner_team_id, f"SLO {name!r}")
    check_version("SLO", name, slo.version, if_match, if_match=True)
    service, source = _resolve_references(session, spec)
    if service.id != slo.service_id:
        actor.require_team(service.owner_team_id, f"SLOs of service {service.slug!r}")
    before = slo_spec(slo)
    after = spec.model_dump(mode="json")
    if config_managed is not None:
        slo.config_managed = config_managed
    if before == after:
        return slo
    old = SLOSpec.model_validate(before)
    recount = _sync_objectives(slo, spec)
    slo.service, slo.data_source, slo.spec, slo.updated_at = service, source, after, now
    session.flush()
    generations.bump(session, SLO_GENERATION)
    definition_changed = (
        old.window != spec.window
        or old.budgeting_method != spec.budgeting_method
        or old.objectives != spec.objectives
        or old.alerting != spec.alerting
    )
    if definition_changed or recount:
        _reset_evaluation(session, slo)
    # A Prometheus SLO whose thresholds changed must re-read its history: stored counts used the old ones.
    refetch = (
        source is not None
        and source.type == "prometheus"
        and {o.name: o.threshold for o in old.objectives} != {o.name: o.threshold for o in spec.objectives}
    )
    if old.indicator != spec.indicator or refetch:
        state = session.get(SourceState, slo.id)
        if state is not None:
            state.backfilled = source is None or source.type != "prometheus"
            state.fetched_through_minute = None
    audit.record(session, actor=actor, action="update", kind="SLO", key=name, before=before, after=after, now=now)
    return slo


def delete_slo(session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None) -> None:
    slo = get_slo(session, name)
    actor.require_team(slo.service.owner_team_id, f"SLO {name!r}")
    check_version("SLO", name, slo.version, if_match, if_match=True)
    before = slo_spec(slo)
    service_id = slo.service_id
    session.delete(slo)
    session.flush()
    generations.bump(session, SLO_GENERATION)
    audit.record(session, actor=actor, action="delete", kind="SLO", key=name, before=before, after=None, now=now)
    timeline.append(
        session,
        type="slo.deleted",
        at=now,
        service_id=service_id,
        actor=actor.name,
        summary=f"SLO {name} deleted",
        data={"slo": name},
    )


def _reset_evaluation(session: Session, slo: SLO) -> None:
    """The definition changed: the evaluator recounts this SLO from its stored minutes at its next tick
    (marking the objectives dirty from minute 0 also wakes an evaluator that already ran this minute)."""
    session.flush()
    ids = [objective.id for objective in slo.objectives]
    if ids:
        session.execute(delete(WindowState).where(WindowState.objective_id.in_(ids)))
        session.execute(update(Objective).where(Objective.id.in_(ids)).values(dirty_from_minute=0))


# --------------------------------------------------------------------------------------------- ingestion


def ingest(session: Session, *, actor: Principal, name: str, batch: EventBatch, now: datetime) -> tuple[int, int, bool]:
    """Add pushed events to the per-minute rollups. Returns (accepted points, minutes touched, duplicate).

    Everything is checked before anything is written: one bad point refuses the whole batch.
    """
    slo = get_slo(session, name)
    actor.require_team(slo.service.owner_team_id, f"events of SLO {name!r}")
    if slo.data_source is not None and slo.data_source.type == "prometheus":
        raise Conflict(
            f"SLO {name!r} reads its events from Prometheus ({slo.data_source.name}); it takes no pushed events."
        )
    spec = parsed_spec(slo)
    if (
        batch.idempotency_key is not None
        and session.scalar(
            select(IngestBatch.id).where(IngestBatch.slo_id == slo.id, IngestBatch.key == batch.idempotency_key)
        )
        is not None
    ):
        return 0, 0, True

    oldest = now - timedelta(minutes=retention_minutes(spec, now))
    newest = now + FUTURE_SKEW
    problems: list[FieldError] = []
    for field, points in (("points", batch.points), ("events", batch.events)):
        for index, point in enumerate(points):
            if point.timestamp.tzinfo is None:
                problems.append(FieldError(f"{field}.{index}.timestamp", "needs a time zone (e.g. Z or +00:00)"))
            elif point.timestamp > newest:
                problems.append(FieldError(f"{field}.{index}.timestamp", "is in the future"))
            elif point.timestamp < oldest:
                problems.append(
                    FieldError(
                        f"{field}.{index}.timestamp",
                        f"is older than the SLO's window (before {oldest.isoformat()})",
                    )
                )
    kind = spec.indicator.kind
    objectives = list(slo.objectives)
    if batch.objective is not None:
        objectives = [objective for objective in slo.objectives if objective.key == batch.objective]
        if not objectives:
            problems.append(FieldError("objective", f"SLO {name!r} has no objective {batch.objective!r}"))
    if batch.points and kind == "threshold" and batch.objective is None and len(slo.objectives) > 1:
        problems.append(
            FieldError(
                "objective",
                "pre-counted points of a threshold SLO with several objectives "
                "must name the objective they were counted for",
            )
        )
    for index, event in enumerate(batch.events):
        if kind == "threshold" and event.value is None:
            problems.append(FieldError(f"events.{index}.value", "a threshold SLO takes values"))
        if kind != "threshold" and event.ok is None:
            problems.append(FieldError(f"events.{index}.ok", f"a {kind} SLO takes ok=true/false"))
    if problems:
        raise InvalidInput(f"Nothing was recorded: {len(problems)} problem(s) in the batch.", errors=problems[:50])

    sums: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for point in batch.points:
        minute = rules.epoch_minute(point.timestamp)
        good = point.good if point.good is not None else point.total - (point.bad or 0.0)
        for objective in objectives:
            cell = sums[(objective.id, minute)]
            cell[0] += good
            cell[1] += point.total
    for event in batch.events:
        minute = rules.epoch_minute(event.timestamp)
        for objective in objectives:
            cell = sums[(objective.id, minute)]
            cell[0] += 1.0 if _event_is_good(event.ok, event.value, objective.threshold, spec) else 0.0
            cell[1] += 1.0
    add_to_rollups(session, sums, now=now)
    newest = max(point.timestamp for point in [*batch.points, *batch.events])
    session.execute(
        update(SourceState)
        .where(SourceState.slo_id == slo.id)
        .where((SourceState.last_sample_at.is_(None)) | (SourceState.last_sample_at < newest))
        .values(last_sample_at=newest)
    )
    if batch.idempotency_key is not None:
        session.add(
            IngestBatch(
                slo_id=slo.id,
                key=batch.idempotency_key,
                received_at=now,
                accepted=len(batch.points) + len(batch.events),
                minutes=len({minute for _, minute in sums}),
            )
        )
    return len(batch.points) + len(batch.events), len({minute for _, minute in sums}), False


def _event_is_good(ok: bool | None, value: float | None, threshold: float | None, spec: SLOSpec) -> bool:
    if ok is not None:
        return ok
    assert value is not None and threshold is not None and spec.indicator.threshold is not None
    op = spec.indicator.threshold.op
    return {
        "lt": value < threshold,
        "lte": value <= threshold,
        "gt": value > threshold,
        "gte": value >= threshold,
    }[op]


def add_to_rollups(
    session: Session, sums: dict[tuple[int, int], list[float]], *, now: datetime, replace: bool = False
) -> None:
    """Upsert (objective, minute) counts: added to what is there, or replacing it (``replace``, for sources
    that re-read the same minutes). Minutes the evaluator may already have counted mark the objective
    dirty so it recounts them."""
    if not sums:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [
        {"objective_id": objective_id, "minute": minute, "good": good, "total": total}
        for (objective_id, minute), (good, total) in sorted(sums.items())
    ]
    statement = insert(Rollup)
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=["objective_id", "minute"],
            set_={"good": statement.excluded.good, "total": statement.excluded.total},
        )
    else:
        statement = statement.on_conflict_do_update(
            index_elements=["objective_id", "minute"],
            set_={
                "good": Rollup.good + statement.excluded.good,
                "total": Rollup.total + statement.excluded.total,
            },
        )
    for start in range(0, len(rows), 500):
        session.execute(statement, rows[start : start + 500])
    evaluated_before = evaluated_end(session)
    if evaluated_before is None:
        return
    earliest: dict[int, int] = {}
    for objective_id, minute in sums:
        if minute < evaluated_before:
            earliest[objective_id] = min(minute, earliest.get(objective_id, minute))
    for objective_id, minute in earliest.items():
        session.execute(
            update(Objective)
            .where(Objective.id == objective_id)
            .values(
                dirty_from_minute=func.min(func.coalesce(Objective.dirty_from_minute, minute), minute)
                if dialect == "sqlite"
                else func.least(func.coalesce(Objective.dirty_from_minute, minute), minute)
            )
        )


def evaluated_end(session: Session) -> int | None:
    """The minute the evaluator has counted up to (exclusive), None before its first run. On PostgreSQL the
    row is read under a share lock, so a running evaluation finishes first and the late minutes this
    transaction writes are marked for recounting against its final mark, never lost between the two."""
    return session.scalar(select(EvaluatorMark.end_minute).where(EvaluatorMark.id == 1).with_for_update(read=True))


def retention_minutes(spec: SLOSpec, now: datetime) -> int:
    """How far back per-minute data matters: the SLO's period (the current calendar period, or the rolling
    length) or its longest alert window, whichever is longer, plus a day."""
    longest = 0
    for objective in spec.objectives:
        policy = alert_policy(spec, objective.name)
        longest = max(longest, *(tier.long_minutes for tier in policy.catalog.tiers), 0)
    maths = math_spec(spec, spec.objectives[0].name)
    span = rules.window_span(maths.window, rules.epoch_minute(now))
    return max(span.end - span.start, maths.window.nominal_minutes, longest) + 24 * 60


def forget_old_batches(session: Session, *, now: datetime) -> int:
    return session.execute(delete(IngestBatch).where(IngestBatch.received_at < now - BATCH_KEY_RETENTION)).rowcount


# ---------------------------------------------------------------------------------------------- adjustments


def add_adjustment(
    session: Session, *, actor: Principal, name: str, data: AdjustmentCreate, now: datetime
) -> BudgetAdjustment:
    slo = get_slo(session, name)
    actor.require_team(slo.service.owner_team_id, f"budget adjustments of SLO {name!r}")
    for field, value in (("start", data.start), ("end", data.end)):
        if value.tzinfo is None:
            raise InvalidInput("Times need a time zone.", errors=[FieldError(field, "needs a time zone")])
    adjustment = BudgetAdjustment(
        slo_id=slo.id,
        start=data.start,
        end=data.end,
        reason=data.reason,
        created_by=actor.name,
        created_at=now,
    )
    session.add(adjustment)
    session.flush()
    _reset_evaluation(session, slo)
    after = {
        "id": adjustment.id,
        "start": data.start.isoformat(),
        "end": data.end.isoformat(),
        "reason": data.reason,
    }
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="BudgetAdjustment",
        key=f"{name}/{adjustment.id}",
        before=None,
        after=after,
        now=now,
    )
    timeline.append(
        session,
        type="slo.adjustment.added",
        at=now,
        service_id=slo.service_id,
        actor=actor.name,
        summary=f"Excluded {data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC from SLO {name}: {data.reason}",
        data={"slo": name, **after},
    )
    return adjustment


def remove_adjustment(session: Session, *, actor: Principal, name: str, adjustment_id: int, now: datetime) -> None:
    slo = get_slo(session, name)
    actor.require_team(slo.service.owner_team_id, f"budget adjustments of SLO {name!r}")
    adjustment = session.get(BudgetAdjustment, adjustment_id)
    if adjustment is None or adjustment.slo_id != slo.id or adjustment.deleted_at is not None:
        raise NotFound(f"SLO {name!r} has no budget adjustment {adjustment_id}.")
    adjustment.deleted_at = now
    _reset_evaluation(session, slo)
    audit.record(
        session,
        actor=actor,
        action="delete",
        kind="BudgetAdjustment",
        key=f"{name}/{adjustment_id}",
        before={
            "start": adjustment.start.isoformat(),
            "end": adjustment.end.isoformat(),
            "reason": adjustment.reason,
        },
        after=None,
        now=now,
    )
    timeline.append(
        session,
        type="slo.adjustment.withdrawn",
        at=now,
        service_id=slo.service_id,
        actor=actor.name,
        summary=f"Withdrew the exclusion of {adjustment.start:%Y-%m-%d %H:%M} to {adjustment.end:%Y-%m-%d %H:%M} "
        f"UTC from SLO {name}",
        data={"slo": name, "id": adjustment_id},
    )


def adjustments(
    session: Session, slo_ids: Iterable[int], *, include_deleted: bool = False
) -> dict[int, list[BudgetAdjustment]]:
    ids = list(slo_ids)
    statement = select(BudgetAdjustment).where(BudgetAdjustment.slo_id.in_(ids)).order_by(BudgetAdjustment.start)
    if not include_deleted:
        statement = statement.where(BudgetAdjustment.deleted_at.is_(None))
    found: dict[int, list[BudgetAdjustment]] = defaultdict(list)
    for adjustment in session.scalars(statement):
        found[adjustment.slo_id].append(adjustment)
    return found


def exclusion_ranges(items: Iterable[BudgetAdjustment]) -> list[tuple[int, int]]:
    """Adjustments as half-open epoch-minute ranges, widened to whole minutes."""
    ranges = []
    for item in items:
        start = rules.epoch_minute(item.start)
        end = rules.epoch_minute(item.end - timedelta(microseconds=1)) + 1
        ranges.append((start, end))
    return ranges


# ---------------------------------------------------------------------------------------------- reading


def statuses(session: Session, objective_ids: Iterable[int]) -> dict[int, ObjectiveStatus]:
    ids = list(objective_ids)
    return {
        row.objective_id: row
        for row in session.scalars(select(ObjectiveStatus).where(ObjectiveStatus.objective_id.in_(ids)))
    }


def source_state(session: Session, slo_id: int) -> SourceState | None:
    return session.get(SourceState, slo_id)


def rollup_series(session: Session, objective_id: int, start_minute: int, end_minute: int):  # type: ignore[no-untyped-def]
    """(good, total) numpy arrays for minutes [start, end), zeros where nothing was recorded."""
    import numpy as np

    length = max(0, end_minute - start_minute)
    good = np.zeros(length)
    total = np.zeros(length)
    rows = session.execute(
        select(Rollup.minute, Rollup.good, Rollup.total).where(
            Rollup.objective_id == objective_id, Rollup.minute >= start_minute, Rollup.minute < end_minute
        )
    ).all()
    if rows:
        # Plain tuples: numpy converts them ~25x faster than SQLAlchemy Row objects.
        data = np.array([tuple(row) for row in rows], dtype=float)
        index = data[:, 0].astype(np.int64) - start_minute
        good[index] = data[:, 1]
        total[index] = data[:, 2]
    return good, total


def hourly_series(session: Session, objective_id: int, start_minute: int, end_minute: int):  # type: ignore[no-untyped-def]
    """Like rollup_series, from the hourly rows that older minutes were folded into: each hour's counts
    sit in its first minute (good enough for charts over days; windows lose their within-hour edges)."""
    import numpy as np

    length = max(0, end_minute - start_minute)
    good = np.zeros(length)
    total = np.zeros(length)
    rows = session.execute(
        select(HourlyRollup.hour, HourlyRollup.good, HourlyRollup.total).where(
            HourlyRollup.objective_id == objective_id,
            HourlyRollup.hour >= start_minute // 60,
            HourlyRollup.hour * 60 < end_minute,
        )
    ).all()
    for hour, hour_good, hour_total in rows:
        index = hour * 60 - start_minute
        if 0 <= index < length:
            good[index] += hour_good
            total[index] += hour_total
    return good, total
