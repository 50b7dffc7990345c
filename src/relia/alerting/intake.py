"""The intake: one adapter per source, and the pipeline they share.

An adapter reads a request body (already authenticated by its integration key), validates it, turns it into
``rules.IncomingAlert`` values and hands them to ``ingest``, which routes each alert to a service, deduplicates
it against the alert of the same key that still fires, applies silences, and puts it into an alert group, all
in the caller's transaction. The caller commits before answering: a 2xx means the alerts are stored.

Idempotent under at-least-once delivery: a repeat of a firing alert only counts an occurrence, a resolve of
an alert that no longer fires is ignored, and a stale "firing" that an Alertmanager HA peer sends after its
partner's "resolved" (same ``startsAt``) is ignored too.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from relia.alerting import groups, rules
from relia.alerting.models import Alert, AlertSuppression
from relia.alerting.schemas import AlertOutcome, GenericBatch, GenericEvent, IntakeResult
from relia.alerting.service import AlertingConfig, ConfigCache, IntegrationConfig, load_config
from relia.catalog.models import Service
from relia.core.batching import GroupCommitWriter
from relia.core.db import Database
from relia.core.errors import BadRequest, FieldError, InvalidInput, NotFound

PAGERDUTY_BODY_LIMIT = 512 * 1024  # PagerDuty's limit for an event
Outcome = Literal["created", "updated", "resolved", "acknowledged", "suppressed", "ignored"]


class IntakeGate:
    """Bounds how many intake requests one process works on at once; beyond it the intake answers 503 with
    Retry-After at once (Alertmanager retries a 5xx, but not a 429), instead of queueing requests until
    they time out. Used from the event loop only, so a plain counter suffices."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    def try_enter(self) -> bool:
        if self.in_flight >= self.limit:
            self.refused += 1
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def intake_writer(db: Database, cache: ConfigCache) -> GroupCommitWriter[AlertingConfig]:
    """The process's intake writer (``core.batching``): alerts arriving together share a transaction, and the
    alerting configuration is read once per transaction."""
    return GroupCommitWriter(db, name="alert-intake-writer", context=cache.get)


def unknown_key() -> NotFound:
    """The answer to a wrong, disabled or deleted key: the same 404 as a path that does not exist."""
    return NotFound("Not Found")


def authenticate(config: AlertingConfig, key: str, now: datetime) -> IntegrationConfig:
    integration = config.integration_for_key(key, now) if key else None
    if integration is None:
        raise unknown_key()
    return integration


def read_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.", errors=[FieldError("body", "not valid JSON")]) from None


def _invalid(exc: ValidationError | rules.PayloadInvalid) -> InvalidInput:
    if isinstance(exc, rules.PayloadInvalid):
        errors = [FieldError(path, message) for path, message in exc.problems]
    else:
        errors = [
            FieldError(
                ".".join(["body", *(str(part) for part in error["loc"])]),
                str(error["msg"]).removeprefix("Value error, "),
            )
            for error in exc.errors()[:100]
        ]
    return InvalidInput("The body is not a valid message of this source; see errors.", errors=errors)


# -------------------------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Origin:
    """Where a batch comes from: an integration (routing rules apply, its default service otherwise), or
    Relia itself (``service_id`` fixed)."""

    source: str
    policy: groups.GroupingPolicy
    default_service_id: int
    routed: bool = True


@dataclass
class AlertRow:
    """One alert as the pipeline works on it: read from the database (``id`` set) or about to be inserted
    (``id`` None until then). Changes are written in one statement per kind at the end of the batch."""

    id: int | None
    dedup_key: str
    status: str
    group_id: int | None
    service_id: int
    group_key: str
    starts_at: datetime | None
    resolved_by: str | None
    summary: str
    severity: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    links: list[Any]
    occurrences: int
    suppressed_by_silence_id: int | None
    ends_at: datetime | None = None
    resolved_at: datetime | None = None
    last_received_at: datetime | None = None
    changed: bool = False
    insert: dict[str, Any] | None = None  # the new row's other columns
    suppressed_by: rules.SilenceRule | None = None  # a new suppression record to write once it has an id


@dataclass
class IngestReport:
    outcomes: list[tuple[str, Outcome, AlertRow | None]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(outcome for _, outcome, _ in self.outcomes))

    def result(self, *, truncated: int = 0) -> IntakeResult:
        return IntakeResult(
            received=len(self.outcomes),
            truncated=truncated,
            counts=self.counts,
            alerts=[
                AlertOutcome(
                    dedup_key=key,
                    outcome=outcome,
                    alert_id=row.id if row is not None else None,
                    group_id=row.group_id if row is not None else None,
                )
                for key, outcome, row in self.outcomes
            ],
        )


_ALERTS = Alert.__table__
_ROW_COLUMNS = (
    _ALERTS.c.id,
    _ALERTS.c.dedup_key,
    _ALERTS.c.status,
    _ALERTS.c.group_id,
    _ALERTS.c.service_id,
    _ALERTS.c.group_key,
    _ALERTS.c.starts_at,
    _ALERTS.c.resolved_by,
    _ALERTS.c.summary,
    _ALERTS.c.severity,
    _ALERTS.c.labels,
    _ALERTS.c.annotations,
    _ALERTS.c.links,
    _ALERTS.c.occurrences,
    _ALERTS.c.suppressed_by_silence_id,
)


def _newest(*owner: Any) -> Any:
    """The newest alert of each key (the firing one, if any: a key fires at most once at a time)."""
    newest = (
        select(func.max(_ALERTS.c.id))
        .where(*owner, _ALERTS.c.dedup_key.in_(bindparam("keys", expanding=True)))
        .group_by(_ALERTS.c.dedup_key)
    )
    return select(*_ROW_COLUMNS).where(_ALERTS.c.id.in_(newest))


# Built once (see relia.alerting.groups): an integration's alerts, and Relia's own (no integration) by source.
_LATEST_OF_INTEGRATION = _newest(_ALERTS.c.integration_id == bindparam("integration_id"))
_LATEST_OF_RELIA = _newest(_ALERTS.c.integration_id.is_(None), _ALERTS.c.source == bindparam("source"))
_INSERT_ALERTS = insert(_ALERTS).returning(_ALERTS.c.id, sort_by_parameter_order=True)
_UPDATE_ALERTS = update(_ALERTS).where(_ALERTS.c.id == bindparam("changed_id"))
_INSERT_SUPPRESSIONS = insert(AlertSuppression.__table__)


def _latest_alerts(
    connection: Connection, integration_id: int | None, source: str, keys: set[str]
) -> dict[str, AlertRow]:
    if not keys:
        return {}
    if integration_id is not None:
        rows = connection.execute(_LATEST_OF_INTEGRATION, {"integration_id": integration_id, "keys": sorted(keys)})
    else:
        rows = connection.execute(_LATEST_OF_RELIA, {"source": source, "keys": sorted(keys)})
    return {row.dedup_key: AlertRow(*row) for row in rows}


def _stale(latest: AlertRow | None, incoming: rules.IncomingAlert, source: str) -> bool:
    """A "firing" for an alert instance its sender already resolved: Alertmanager peers deliver the same
    notification independently, so one peer's older "firing" may arrive after the other's "resolved". The
    instance is known by its ``startsAt`` (a new firing of the same labels starts later)."""
    return (
        source in ("alertmanager", "grafana")
        and latest is not None
        and latest.status == "resolved"
        and latest.resolved_by == "source"
        and incoming.starts_at is not None
        and latest.starts_at == incoming.starts_at
    )


def ingest(
    session: Session,
    *,
    config: AlertingConfig,
    origin: Origin,
    batch: rules.Batch,
    now: datetime,
) -> IngestReport:
    """Store a batch of alerts of one origin; returns what happened to each."""
    policy = origin.policy
    integration_id = policy.integration_id
    prepared = []
    for incoming in batch.alerts:
        if origin.routed:
            service_id, rule = rules.choose_service(
                config.routes, integration_id, incoming.labels, origin.default_service_id
            )
        else:
            service_id, rule = origin.default_service_id, None
        key, shown = rules.group_key(incoming, policy.group_by, integration_id)
        prepared.append((incoming, service_id, rule, key, shown))
    held: set[int] = set()
    groups.take_locks(
        session,
        [groups.alert_lock(integration_id, incoming.dedup_key) for incoming, *_ in prepared]
        + [groups.group_lock(service_id, key) for _, service_id, _, key, _ in prepared],
        held,
    )
    placement = groups.Placement(session, now)
    connection = placement.connection
    latest = _latest_alerts(connection, integration_id, batch.source, {incoming.dedup_key for incoming, *_ in prepared})
    firing = [row for row in latest.values() if row.status == "firing"]
    # Alerts that fire already may sit in a group of another key (the routing rules changed since): lock it.
    groups.take_locks(session, [groups.group_lock(row.service_id, row.group_key) for row in firing], held)
    placement.load(row.group_id for row in firing if row.group_id is not None)
    report = IngestReport()
    released: list[tuple[int, str]] = []
    written: dict[int, AlertRow] = {}  # by id(): a key may fire, resolve and fire again within one batch
    for incoming, service_id, rule, key, shown in prepared:
        current = latest.get(incoming.dedup_key)
        if current is not None and current.status == "firing":
            outcome = _update(current, incoming, config, policy, placement, batch, now, released)
            written[id(current)] = current
            report.outcomes.append((incoming.dedup_key, outcome, current))
            continue
        if incoming.status != "firing" or _stale(current, incoming, batch.source):
            report.outcomes.append((incoming.dedup_key, "ignored", None))
            continue
        row = AlertRow(
            id=None,
            dedup_key=incoming.dedup_key,
            status="firing",
            group_id=None,
            service_id=service_id,
            group_key=key,
            starts_at=incoming.starts_at,
            resolved_by=None,
            summary=incoming.summary,
            severity=incoming.severity,
            labels=incoming.labels,
            annotations=incoming.annotations,
            links=[link.as_dict() for link in incoming.links],
            occurrences=1,
            suppressed_by_silence_id=None,
            last_received_at=now,
            insert={
                "integration_id": integration_id,
                "source": batch.source,
                "details": incoming.details,
                "routed_by": rule,
                "received_at": now,
            },
        )
        latest[incoming.dedup_key] = written[id(row)] = row
        silence = rules.silencing(config.silences, service_id, incoming.labels, now)
        if silence is not None:
            row.suppressed_by_silence_id, row.suppressed_by = silence.id, silence
            report.outcomes.append((incoming.dedup_key, "suppressed", row))
            continue
        row.group_id = placement.place(
            service_id=service_id,
            key=key,
            policy=policy,
            title=incoming.summary,
            severity=incoming.severity,
            source=batch.source,
            group_labels=shown,
            source_url=batch.external_url,
        ).id
        report.outcomes.append((incoming.dedup_key, "created", row))
    # Suppression records of existing alerts close before new ones are written (a re-silenced alert has both).
    placement.release(released)
    _write(connection, list(written.values()), now)
    placement.finish()
    return report


def _write(connection: Connection, rows: list[AlertRow], now: datetime) -> None:
    """Insert the new alerts (and their suppression records) and update the changed ones, a statement each."""
    new = [row for row in rows if row.insert is not None]
    if new:
        ids = connection.execute(_INSERT_ALERTS, [_columns(row) | (row.insert or {}) for row in new]).scalars().all()
        for row, alert_id in zip(new, ids, strict=True):
            row.id, row.insert, row.changed = alert_id, None, False
        suppressed = [row for row in new if row.suppressed_by is not None]
        if suppressed:
            connection.execute(
                _INSERT_SUPPRESSIONS,
                [
                    {
                        "silence_id": row.suppressed_by.id,
                        "silence_name": row.suppressed_by.name,
                        "alert_id": row.id,
                        "at": now,
                    }
                    for row in suppressed
                    if row.suppressed_by is not None
                ],
            )
    changed = [row for row in rows if row.changed]
    if changed:
        connection.execute(_UPDATE_ALERTS, [{"changed_id": row.id, **_columns(row)} for row in changed])


def _columns(row: AlertRow) -> dict[str, Any]:
    """The columns an alert's report may change (all of them written at once: one statement shape)."""
    return {
        "dedup_key": row.dedup_key,
        "status": row.status,
        "group_id": row.group_id,
        "service_id": row.service_id,
        "group_key": row.group_key,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "resolved_by": row.resolved_by,
        "resolved_at": row.resolved_at,
        "summary": row.summary,
        "severity": row.severity,
        "labels": row.labels,
        "annotations": row.annotations,
        "links": row.links,
        "occurrences": row.occurrences,
        "last_received_at": row.last_received_at,
        "suppressed_by_silence_id": row.suppressed_by_silence_id,
    }


def _update(
    current: AlertRow,
    incoming: rules.IncomingAlert,
    config: AlertingConfig,
    policy: groups.GroupingPolicy,
    placement: groups.Placement,
    batch: rules.Batch,
    now: datetime,
    released: list[tuple[int, str]],
) -> Outcome:
    """A report about the alert of this key that fires now: a repeat, its resolution, or an acknowledgement."""
    current.last_received_at = now
    current.changed = current.insert is None
    if incoming.status == "resolved":
        current.status = "resolved"
        current.resolved_at = now
        current.resolved_by = "source"
        current.ends_at = incoming.ends_at or now
        if current.group_id is not None:
            placement.ended(current.group_id)
        elif current.insert is not None:
            current.suppressed_by = None  # it comes and goes in one batch: nothing was kept quiet for long
            current.suppressed_by_silence_id = None
        else:
            current.suppressed_by_silence_id = None
            released.append((current.id, "resolved"))  # type: ignore[arg-type]
        return "resolved"
    if incoming.status == "acknowledged":
        if current.group_id is not None and placement.acknowledge(current.group_id, by=policy.actor_name):
            return "acknowledged"
        return "ignored"
    current.occurrences += 1
    # Senders re-render annotations (current values, say) on every notification: keep the latest.
    current.summary = incoming.summary
    current.annotations = incoming.annotations
    current.links = [link.as_dict() for link in incoming.links]
    current.severity = incoming.severity
    if current.group_id is not None:
        placement.repeated(current.group_id, current.severity)
        return "updated"
    # Suppressed: it joins a group once no silence covers it any more (the silence ended, or was deleted).
    silence = rules.silencing(config.silences, current.service_id, current.labels, now)
    if silence is not None and silence.id == current.suppressed_by_silence_id:
        return "suppressed"
    if current.id is not None:
        released.append((current.id, "grouped" if silence is None else "silenced"))
    if silence is not None:
        current.suppressed_by_silence_id, current.suppressed_by = silence.id, silence
        return "suppressed"
    current.suppressed_by_silence_id = current.suppressed_by = None
    shown = {name: current.labels.get(name, "") for name in policy.group_by or ()}
    current.group_id = placement.place(
        service_id=current.service_id,
        key=current.group_key,
        policy=policy,
        title=current.summary,
        severity=current.severity,
        source=batch.source,
        group_labels=shown,
        source_url=batch.external_url,
    ).id
    return "updated"


def origin_for(integration: IntegrationConfig, source: str) -> Origin:
    return Origin(source=source, policy=integration.policy, default_service_id=integration.service_id)


# ------------------------------------------------------------------------------------------------ adapters


def accept_alertmanager(
    session: Session,
    *,
    config: AlertingConfig,
    integration: IntegrationConfig,
    body: bytes,
    now: datetime,
    source: Literal["alertmanager", "grafana"] = "alertmanager",
) -> IntakeResult:
    """An Alertmanager webhook (v4) or Grafana webhook (v1) message."""
    # Validated by the normalisation itself (the pydantic models of these messages document them in OpenAPI;
    # running them too would read every alert twice).
    try:
        batch = rules.normalise_alertmanager(read_json(body), source=source)
    except rules.PayloadInvalid as exc:
        raise _invalid(exc) from None
    report = ingest(session, config=config, origin=origin_for(integration, source), batch=batch, now=now)
    return report.result(truncated=batch.truncated)


def generic_alert(event: GenericEvent) -> rules.IncomingAlert:
    labels = rules.clean_labels(event.labels)
    if event.source and "source" not in labels:
        labels["source"] = rules.clean_text(event.source, rules.LABEL_LIMIT)
    summary = rules.clean_text(event.summary or "", rules.SUMMARY_LIMIT)
    dedup_key = event.dedup_key or rules.generic_dedup_key(summary, event.source or "", labels)
    links = [rules.safe_link(link.href, link.text) for link in event.links]
    details = rules.clean_json(event.details) if event.details else {}
    if event.source:
        details["source"] = rules.clean_text(event.source, 255)
    return rules.IncomingAlert(
        dedup_key=rules.clean_text(dedup_key, rules.DEDUP_KEY_LIMIT),
        status=event.status,
        summary=summary,
        severity=event.severity,
        labels=labels,
        annotations=rules.clean_labels(event.annotations, rules.ANNOTATION_LIMIT),
        links=[link for link in links if link is not None],
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        source_group=rules.clean_text(event.group, 255) if event.group else None,
        details=details,
    )


def accept_generic(
    session: Session, *, config: AlertingConfig, integration: IntegrationConfig, body: bytes, now: datetime
) -> IntakeResult:
    """Relia's generic webhook: one event object, or ``{"alerts": [...]}`` with up to 1,000."""
    message = read_json(body)
    try:
        if isinstance(message, dict) and "alerts" in message:
            events = GenericBatch.model_validate(message).alerts
        else:
            events = [GenericEvent.model_validate(message)]
    except ValidationError as exc:
        raise _invalid(exc) from None
    batch = rules.Batch(source="generic", alerts=[generic_alert(event) for event in events])
    return ingest(session, config=config, origin=origin_for(integration, "generic"), batch=batch, now=now).result()


@dataclass(frozen=True)
class PagerDutyAnswer:
    status_code: int
    body: dict[str, Any]


def pagerduty_error(status_code: int, errors: list[str], *, status: str = "invalid event") -> PagerDutyAnswer:
    message = "Event object is invalid" if status == "invalid event" else status.capitalize()
    return PagerDutyAnswer(status_code, {"status": status, "message": message, "errors": errors})


def accept_pagerduty(session: Session, *, config: AlertingConfig, body: bytes, now: datetime) -> PagerDutyAnswer:
    """A PagerDuty Events API v2 event: answered as PagerDuty answers (202 with the dedup key; 400 with
    ``status``, ``message`` and ``errors`` for an invalid event), except that an unknown routing key is a 404
    that says nothing more."""
    if len(body) > PAGERDUTY_BODY_LIMIT:
        return pagerduty_error(
            413, [f"The event is larger than {PAGERDUTY_BODY_LIMIT} bytes."], status="payload too large"
        )
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return pagerduty_error(400, ["The request body is not valid JSON."], status="invalid request")
    if not isinstance(event, dict):
        return pagerduty_error(400, ["Event object must be a JSON object"])
    routing_key = event.get("routing_key")
    if not isinstance(routing_key, str) or not routing_key.strip():
        return pagerduty_error(400, ["'routing_key' is missing or blank"])
    integration = config.integration_for_key(routing_key.strip(), now)
    if integration is None:
        return pagerduty_error(404, ["Not found"], status="not found")
    try:
        parsed = rules.normalise_pagerduty(event)
    except rules.PayloadInvalid as exc:
        return pagerduty_error(400, [message for _, message in exc.problems])
    dedup_key = parsed.dedup_key or uuid.uuid4().hex
    if parsed.alert is not None:
        parsed.alert.dedup_key = dedup_key
        incoming = parsed.alert
    else:
        status: rules.AlertStatus = "resolved" if parsed.action == "resolve" else "acknowledged"
        incoming = rules.IncomingAlert(dedup_key=dedup_key, status=status, summary="")
    batch = rules.Batch(source="pagerduty", alerts=[incoming])
    ingest(session, config=config, origin=origin_for(integration, "pagerduty"), batch=batch, now=now)
    return PagerDutyAnswer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})


def accept_slo_event(
    session: Session,
    *,
    fired: bool,
    service_id: int,
    slo: str,
    objective: str,
    summary: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> IngestReport | None:
    """Relia's own burn-rate alert (``slo.alert.fired`` / ``slo.alert.resolved``): page and ticket alerts of
    each objective become alerts of the SLO's service, grouped, silenced and resolved like any other."""
    data = dict(data or {})
    severity_word = str(data.get("severity") or "page")
    service = session.get(Service, service_id)
    if service is None:
        return None
    incoming = rules.slo_alert(
        slo=slo,
        objective=objective,
        service=service.slug,
        summary=summary,
        severity_word=severity_word,
        fired=fired,
        data=data,
    )
    config = load_config(session, generation=-1, now=now)
    origin = Origin(source="slo", policy=groups.SLO_POLICY, default_service_id=service_id, routed=False)
    return ingest(session, config=config, origin=origin, batch=rules.Batch(source="slo", alerts=[incoming]), now=now)
