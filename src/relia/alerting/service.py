"""Alerting use cases: integrations (and their keys), routing rules, silences, the configuration snapshot the
intake routes with, and reading alerts and groups. Group transitions are in ``relia.alerting.groups``, the
intake pipeline in ``relia.alerting.intake``.

Keyword-only functions taking a session, the actor and ``now``; the caller owns the transaction. Rights
follow the services: members of the team that owns an integration's default service manage it and its
routing rules; a silence of one service is its team's; rules and silences for everything are for
administrators. Anyone with a write credential may acknowledge, snooze or resolve a group (responders from
other teams are paged too)."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from relia.alerting import groups, rules
from relia.alerting.models import Alert, AlertGroup, AlertSuppression, Integration, RoutingRule, Silence
from relia.alerting.schemas import (
    AlertGroupOut,
    AlertOut,
    IntegrationCreate,
    IntegrationOut,
    IntegrationSpec,
    KeyInfo,
    LinkOut,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleSpec,
    SilenceCreate,
    SilenceOut,
    SilenceSpec,
    SuppressedAlertOut,
)
from relia.catalog.models import Service
from relia.catalog.service import check_version
from relia.core import audit, generations, timers
from relia.core.auth import Principal
from relia.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from relia.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor

# Bumped with every change to integrations, routing rules and silences: the intake's snapshot of them is
# valid exactly as long as this does not move.
CONFIG_GENERATION = "alerting.config"
SILENCE_TIMER = "alerting.silence-end"
MAX_KEY_GRACE = timedelta(days=7)
KEY_BYTES = 16  # 32 hex characters: the length of a PagerDuty routing key, which some clients check
ENDPOINTS = {
    "alertmanager": "/api/v1/integrations/{key}/alertmanager",
    "grafana": "/api/v1/integrations/{key}/grafana",
    "generic": "/api/v1/integrations/{key}/generic",
    "pagerduty": "/v2/enqueue (routing_key: {key})",
}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _service(session: Session, slug: str, path: str) -> Service:
    found = session.scalars(select(Service).where(Service.slug == slug)).one_or_none()
    if found is None:
        raise InvalidInput(f"There is no service {slug!r}.", errors=[FieldError(path, f"there is no service {slug!r}")])
    return found


def _slugs(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Service.id, Service.slug).where(Service.id.in_(ids))).all())


# ------------------------------------------------------------------------------------------ integrations


def get_integration(session: Session, name: str, *, for_update: bool = False) -> Integration:
    statement = select(Integration).where(Integration.name == name)
    if for_update:
        statement = statement.with_for_update(of=Integration, key_share=True)
    integration = session.scalars(statement).one_or_none()
    if integration is None:
        raise NotFound(f"There is no integration {name!r}.")
    return integration


def list_integrations(session: Session) -> list[Integration]:
    return list(session.scalars(select(Integration).order_by(Integration.name)))


def integration_spec(integration: Integration) -> dict[str, Any]:
    return IntegrationSpec.model_validate(integration.spec).model_dump(mode="json")


def integration_out(integration: Integration) -> IntegrationOut:
    spec = IntegrationSpec.model_validate(integration.spec)
    return IntegrationOut(
        name=integration.name,
        description=spec.description,
        service=spec.service,
        enabled=spec.enabled,
        group_by=spec.group_by,
        group_window=spec.group_window,
        auto_resolve_after=spec.auto_resolve_after,
        key=KeyInfo(
            hint=integration.key_hint,
            created_at=integration.key_created_at,
            previous_key_valid_until=integration.previous_key_expires_at,
        ),
        endpoints=dict(ENDPOINTS),
        version=integration.version,
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


def _new_key() -> tuple[str, str, str]:
    """(the key, its hash, its hint)."""
    key = secrets.token_hex(KEY_BYTES)
    return key, hash_key(key), key[-4:]


def upsert_integration(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: IntegrationSpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
    with_key: bool = True,
) -> tuple[Integration, bool, str | None]:
    """Create or replace an integration: (integration, created, the new key when one was made). A new
    integration gets a key unless ``with_key`` is off (config as code never carries secrets: a key is then
    made with ``rotate_key``)."""
    service = _service(session, spec.service, "service")
    actor.require_team(service.owner_team_id, f"integrations of service {service.slug!r}")
    after = spec.model_dump(mode="json")
    integration = session.scalars(
        select(Integration).where(Integration.name == name).with_for_update(of=Integration, key_share=True)
    ).one_or_none()
    if integration is None:
        if if_match is not None:
            raise NotFound(f"There is no integration {name!r} to update.")
        integration = Integration(
            name=name,
            service_id=service.id,
            enabled=spec.enabled,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        key = None
        if with_key:
            key, integration.key_hash, integration.key_hint = _new_key()
            integration.key_created_at = now
        session.add(integration)
        session.flush()
        generations.bump(session, CONFIG_GENERATION)
        audit.record(
            session, actor=actor, action="create", kind="Integration", key=name, before=None, after=after, now=now
        )
        return integration, True, key
    check_version("Integration", name, integration.version, if_match, if_match=True)
    if integration.service_id != service.id:
        old = session.get(Service, integration.service_id)
        # Moving an integration away from a service needs rights over that service too.
        actor.require_team(old.owner_team_id if old else None, f"integrations of service {old.slug if old else '?'!r}")
    before = integration_spec(integration)
    if config_managed is not None:
        integration.config_managed = config_managed
    if before != after:
        integration.service_id, integration.enabled, integration.spec = service.id, spec.enabled, after
        integration.updated_at = now
        session.flush()
        generations.bump(session, CONFIG_GENERATION)
        audit.record(
            session, actor=actor, action="update", kind="Integration", key=name, before=before, after=after, now=now
        )
    return integration, False, None


def create_integration(
    session: Session, *, actor: Principal, data: IntegrationCreate, now: datetime
) -> tuple[Integration, str]:
    if session.scalar(select(Integration.id).where(Integration.name == data.name)) is not None:
        raise Conflict(f"An integration {data.name!r} exists already.", errors=[FieldError("name", "already taken")])
    spec = IntegrationSpec.model_validate(data.model_dump(exclude={"name"}))
    integration, _, key = upsert_integration(session, actor=actor, name=data.name, spec=spec, now=now)
    assert key is not None
    return integration, key


def rotate_key(
    session: Session, *, actor: Principal, name: str, now: datetime, grace: timedelta | None = None
) -> tuple[Integration, str]:
    """A new key, shown once. The old one stops at once, or keeps working for ``grace`` (at most a week) so
    senders can be switched over without losing alerts."""
    integration = get_integration(session, name, for_update=True)
    service = session.get(Service, integration.service_id)
    actor.require_team(service.owner_team_id if service else None, f"integration {name!r}")
    if grace is not None and grace > MAX_KEY_GRACE:
        raise InvalidInput("The grace period is at most 7 days.", errors=[FieldError("grace", "at most 7d")])
    if grace and integration.key_hash is not None:
        integration.previous_key_hash = integration.key_hash
        integration.previous_key_expires_at = now + grace
    else:
        integration.previous_key_hash = None
        integration.previous_key_expires_at = None
    key, integration.key_hash, integration.key_hint = _new_key()
    integration.key_created_at = now
    integration.updated_at = now
    session.flush()
    generations.bump(session, CONFIG_GENERATION)
    audit.record(
        session,
        actor=actor,
        action="rotate-key",
        kind="Integration",
        key=name,
        before=None,
        after={"keyHint": integration.key_hint, "previousKeyValidUntil": _iso(integration.previous_key_expires_at)},
        now=now,
    )
    return integration, key


def delete_integration(
    session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None
) -> None:
    """Delete an integration (its key stops working); its alerts and groups stay, without it."""
    integration = get_integration(session, name, for_update=True)
    service = session.get(Service, integration.service_id)
    actor.require_team(service.owner_team_id if service else None, f"integration {name!r}")
    check_version("Integration", name, integration.version, if_match, if_match=True)
    session.flush()
    used = session.scalars(
        select(RoutingRule.name).where(RoutingRule.integration_id == integration.id).order_by(RoutingRule.name)
    ).all()
    if used:
        raise Conflict(f"Integration {name!r} has routing rules ({', '.join(used)}); delete them first.")
    before = integration_spec(integration)
    session.delete(integration)
    session.flush()
    generations.bump(session, CONFIG_GENERATION)
    audit.record(
        session, actor=actor, action="delete", kind="Integration", key=name, before=before, after=None, now=now
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ----------------------------------------------------------------------------------------- routing rules


def get_routing_rule(session: Session, name: str) -> RoutingRule:
    rule = session.scalars(select(RoutingRule).where(RoutingRule.name == name)).one_or_none()
    if rule is None:
        raise NotFound(f"There is no routing rule {name!r}.")
    return rule


def list_routing_rules(session: Session) -> list[RoutingRule]:
    """In the order the router tries them (``rules.sort_routes``): an integration's own rules first."""
    found = session.scalars(select(RoutingRule)).all()
    return sorted(found, key=lambda rule: (rule.integration_id is None, rule.position, rule.name))


def routing_rule_spec(rule: RoutingRule) -> dict[str, Any]:
    return RoutingRuleSpec.model_validate(rule.spec).model_dump(mode="json")


def routing_rule_out(rule: RoutingRule) -> RoutingRuleOut:
    spec = RoutingRuleSpec.model_validate(rule.spec)
    return RoutingRuleOut(
        name=rule.name,
        description=spec.description,
        integration=spec.integration,
        order=spec.order,
        matchers=spec.matchers,
        service=spec.service,
        version=rule.version,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _require_rule_rights(session: Session, actor: Principal, integration_id: int | None, name: str) -> None:
    if integration_id is None:
        actor.require_write()
        if not actor.acts_as_admin:
            raise Forbidden("Only administrators may write routing rules for every integration; name one.")
        return
    integration = session.get(Integration, integration_id)
    service = session.get(Service, integration.service_id) if integration else None
    actor.require_team(service.owner_team_id if service else None, f"routing rule {name!r}")


def upsert_routing_rule(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: RoutingRuleSpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> tuple[RoutingRule, bool]:
    target = _service(session, spec.service, "service")
    integration_id = None
    if spec.integration is not None:
        found = session.scalar(select(Integration.id).where(Integration.name == spec.integration))
        if found is None:
            raise InvalidInput(
                f"There is no integration {spec.integration!r}.",
                errors=[FieldError("integration", f"there is no integration {spec.integration!r}")],
            )
        integration_id = found
    _require_rule_rights(session, actor, integration_id, name)
    after = spec.model_dump(mode="json")
    rule = session.scalars(
        select(RoutingRule).where(RoutingRule.name == name).with_for_update(of=RoutingRule, key_share=True)
    ).one_or_none()
    if rule is None:
        if if_match is not None:
            raise NotFound(f"There is no routing rule {name!r} to update.")
        rule = RoutingRule(
            name=name,
            integration_id=integration_id,
            service_id=target.id,
            position=spec.order,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(rule)
        session.flush()
        generations.bump(session, CONFIG_GENERATION)
        audit.record(
            session, actor=actor, action="create", kind="RoutingRule", key=name, before=None, after=after, now=now
        )
        return rule, True
    check_version("RoutingRule", name, rule.version, if_match, if_match=True)
    if rule.integration_id != integration_id:
        _require_rule_rights(session, actor, rule.integration_id, name)
    before = routing_rule_spec(rule)
    if config_managed is not None:
        rule.config_managed = config_managed
    if before != after:
        rule.integration_id, rule.service_id, rule.position, rule.spec = integration_id, target.id, spec.order, after
        rule.updated_at = now
        session.flush()
        generations.bump(session, CONFIG_GENERATION)
        audit.record(
            session, actor=actor, action="update", kind="RoutingRule", key=name, before=before, after=after, now=now
        )
    return rule, False


def create_routing_rule(session: Session, *, actor: Principal, data: RoutingRuleCreate, now: datetime) -> RoutingRule:
    if session.scalar(select(RoutingRule.id).where(RoutingRule.name == data.name)) is not None:
        raise Conflict(f"A routing rule {data.name!r} exists already.", errors=[FieldError("name", "already taken")])
    spec = RoutingRuleSpec.model_validate(data.model_dump(exclude={"name"}))
    rule, _ = upsert_routing_rule(session, actor=actor, name=data.name, spec=spec, now=now)
    return rule


def delete_routing_rule(
    session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None
) -> None:
    rule = get_routing_rule(session, name)
    _require_rule_rights(session, actor, rule.integration_id, name)
    check_version("RoutingRule", name, rule.version, if_match, if_match=True)
    before = routing_rule_spec(rule)
    session.delete(rule)
    session.flush()
    generations.bump(session, CONFIG_GENERATION)
    audit.record(
        session, actor=actor, action="delete", kind="RoutingRule", key=name, before=before, after=None, now=now
    )


# ---------------------------------------------------------------------------------------------- silences


def get_silence(session: Session, name: str) -> Silence:
    silence = session.scalars(select(Silence).where(Silence.name == name)).one_or_none()
    if silence is None:
        raise NotFound(f"There is no silence {name!r}.")
    return silence


def list_silences(session: Session, *, state: str | None, now: datetime) -> list[Silence]:
    statement = select(Silence).order_by(Silence.starts_at.desc(), Silence.name)
    if state == "active":
        statement = statement.where(Silence.starts_at <= now, Silence.ends_at > now)
    elif state == "pending":
        statement = statement.where(Silence.starts_at > now)
    elif state == "expired":
        statement = statement.where(Silence.ends_at <= now)
    return list(session.scalars(statement))


def silence_spec(silence: Silence) -> dict[str, Any]:
    return SilenceSpec.model_validate(silence.spec).model_dump(mode="json")


def suppressed_counts(session: Session, silence_ids: Sequence[int]) -> dict[int, int]:
    if not silence_ids:
        return {}
    rows = session.execute(
        select(AlertSuppression.silence_id, func.count())
        .where(AlertSuppression.silence_id.in_(list(silence_ids)))
        .group_by(AlertSuppression.silence_id)
    ).all()
    return {silence_id: count for silence_id, count in rows if silence_id is not None}


def silence_out(silence: Silence, now: datetime, suppressed: int) -> SilenceOut:
    spec = SilenceSpec.model_validate(silence.spec)
    return SilenceOut(
        name=silence.name,
        service=spec.service,
        matchers=spec.matchers,
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        comment=spec.comment,
        created_by=silence.created_by,
        state=rules.silence_state(silence.starts_at, silence.ends_at, now),
        suppressed=suppressed,
        version=silence.version,
        created_at=silence.created_at,
        updated_at=silence.updated_at,
    )


def suppressed_alerts(session: Session, silence: Silence, limit: int = 500) -> list[SuppressedAlertOut]:
    """The record of what a silence suppressed, newest first."""
    rows = session.execute(
        select(AlertSuppression, Alert, Service.slug)
        .join(Alert, AlertSuppression.alert_id == Alert.id)
        .join(Service, Alert.service_id == Service.id)
        .where(AlertSuppression.silence_id == silence.id)
        .order_by(AlertSuppression.id.desc())
        .limit(limit)
    ).all()
    return [
        SuppressedAlertOut(
            alert_id=alert.id,
            summary=alert.summary,
            service=slug,
            at=record.at,
            released_at=record.released_at,
            outcome=record.outcome,
            group_id=alert.group_id,
        )
        for record, alert, slug in rows
    ]


def _require_silence_rights(actor: Principal, service: Service | None, name: str) -> None:
    if service is None:
        actor.require_write()
        if not actor.acts_as_admin:
            raise Forbidden("Only administrators may silence alerts of every service; name a service.")
        return
    actor.require_team(service.owner_team_id, f"silences of service {service.slug!r}")


def upsert_silence(
    session: Session,
    *,
    actor: Principal,
    name: str,
    spec: SilenceSpec,
    now: datetime,
    if_match: int | None = None,
    config_managed: bool | None = None,
) -> tuple[Silence, bool]:
    service = _service(session, spec.service, "service") if spec.service else None
    _require_silence_rights(actor, service, name)
    after = spec.model_dump(mode="json")
    silence = session.scalars(
        select(Silence).where(Silence.name == name).with_for_update(of=Silence, key_share=True)
    ).one_or_none()
    created = silence is None
    if silence is None:
        if if_match is not None:
            raise NotFound(f"There is no silence {name!r} to update.")
        silence = Silence(
            name=name,
            service_id=service.id if service else None,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            created_by=actor.name,
            spec=after,
            created_at=now,
            updated_at=now,
            config_managed=bool(config_managed),
        )
        session.add(silence)
        session.flush()
        before = None
    else:
        check_version("Silence", name, silence.version, if_match, if_match=True)
        old_service = session.get(Service, silence.service_id) if silence.service_id else None
        if silence.service_id != (service.id if service else None):
            _require_silence_rights(actor, old_service, name)
        before = silence_spec(silence)
        if config_managed is not None:
            silence.config_managed = config_managed
        if before == after:
            return silence, False
        silence.service_id = service.id if service else None
        silence.starts_at, silence.ends_at, silence.spec, silence.updated_at = spec.starts_at, spec.ends_at, after, now
        session.flush()
    # Alerts it suppressed are looked at again when it ends (they join groups if they still fire).
    timers.schedule(
        session,
        kind=SILENCE_TIMER,
        key=f"silence:{silence.id}",
        due_at=max(silence.ends_at, now),
        payload={"silence_id": silence.id},
        now=now,
    )
    generations.bump(session, CONFIG_GENERATION)
    audit.record(
        session,
        actor=actor,
        action="create" if created else "update",
        kind="Silence",
        key=name,
        before=before,
        after=after,
        now=now,
    )
    return silence, created


def create_silence(session: Session, *, actor: Principal, data: SilenceCreate, now: datetime) -> Silence:
    name = data.name or f"silence-{secrets.token_hex(4)}"
    if session.scalar(select(Silence.id).where(Silence.name == name)) is not None:
        raise Conflict(f"A silence {name!r} exists already.", errors=[FieldError("name", "already taken")])
    starts_at = data.starts_at or now
    if (data.ends_at is None) == (data.duration is None):
        raise InvalidInput(
            "Give either endsAt or duration.", errors=[FieldError("endsAt", "give either endsAt or duration")]
        )
    ends_at = data.ends_at or starts_at + rules.parse_duration(data.duration or "")
    try:
        spec = SilenceSpec.model_validate(
            {
                "service": data.service,
                "matchers": data.matchers,
                "startsAt": starts_at,
                "endsAt": ends_at,
                "comment": data.comment,
            }
        )
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        raise InvalidInput(
            "The silence is not valid.",
            errors=[
                FieldError(".".join(str(part) for part in error["loc"]) or "body", str(error["msg"]))
                for error in (errors() if callable(errors) else [])
            ],
        ) from None
    silence, _ = upsert_silence(session, actor=actor, name=name, spec=spec, now=now)
    return silence


def expire_silence(session: Session, *, actor: Principal, name: str, now: datetime) -> Silence:
    """End a silence now (it stays, with its record). The alerts it kept quiet join groups at once."""
    silence = get_silence(session, name)
    spec = SilenceSpec.model_validate(silence.spec)
    if silence.ends_at <= now:
        return silence
    starts_at = min(spec.starts_at, now - timedelta(seconds=1))
    ended = spec.model_copy(update={"starts_at": starts_at, "ends_at": now})
    silence, _ = upsert_silence(session, actor=actor, name=name, spec=ended, now=now)
    return silence


def delete_silence(
    session: Session, *, actor: Principal, name: str, now: datetime, if_match: int | None = None
) -> None:
    """Delete a silence. An active one ends first (its alerts join groups); the record of what it suppressed
    stays, under its name."""
    silence = get_silence(session, name)
    service = session.get(Service, silence.service_id) if silence.service_id else None
    _require_silence_rights(actor, service, name)
    check_version("Silence", name, silence.version, if_match, if_match=True)
    release_silenced(session, silence_id=silence.id, now=now, ignore_silence=silence.id)
    before = silence_spec(silence)
    timers.cancel(session, kind=SILENCE_TIMER, key=f"silence:{silence.id}")
    session.delete(silence)
    session.flush()
    generations.bump(session, CONFIG_GENERATION)
    audit.record(session, actor=actor, action="delete", kind="Silence", key=name, before=before, after=None, now=now)


# ------------------------------------------------------------------------------------------ the snapshot


@dataclass(frozen=True)
class IntegrationConfig:
    id: int
    name: str
    service_id: int
    enabled: bool
    policy: groups.GroupingPolicy


@dataclass(frozen=True)
class AlertingConfig:
    """What the intake needs of the configuration, read once per change (see ``ConfigCache``)."""

    generation: int
    integrations: dict[int, IntegrationConfig]
    by_key_hash: dict[str, int]
    previous_keys: dict[str, tuple[int, datetime]]
    routes: list[rules.Route]
    silences: list[rules.SilenceRule]

    def integration_for_key(self, key: str, now: datetime) -> IntegrationConfig | None:
        """The enabled integration this key belongs to (its current key, or a rotated one still in grace)."""
        digest = hash_key(key)
        found = self.by_key_hash.get(digest)
        if found is None:
            previous = self.previous_keys.get(digest)
            if previous is not None and previous[1] > now:
                found = previous[0]
        integration = self.integrations.get(found) if found is not None else None
        return integration if integration is not None and integration.enabled else None

    def policy_for(self, integration_id: int | None) -> groups.GroupingPolicy:
        integration = self.integrations.get(integration_id) if integration_id is not None else None
        return integration.policy if integration is not None else groups.SLO_POLICY


def load_config(session: Session, *, generation: int, now: datetime) -> AlertingConfig:
    integrations: dict[int, IntegrationConfig] = {}
    by_key_hash: dict[str, int] = {}
    previous_keys: dict[str, tuple[int, datetime]] = {}
    for row in session.scalars(select(Integration)):
        spec = IntegrationSpec.model_validate(row.spec)
        policy = groups.GroupingPolicy(
            integration_id=row.id,
            integration_name=row.name,
            group_by=tuple(spec.group_by) if spec.group_by else None,
            window=rules.parse_duration(spec.group_window),
            auto_resolve_after=rules.parse_duration(spec.auto_resolve_after) if spec.auto_resolve_after else None,
        )
        integrations[row.id] = IntegrationConfig(row.id, row.name, row.service_id, row.enabled, policy)
        if row.key_hash:
            by_key_hash[row.key_hash] = row.id
        if row.previous_key_hash and row.previous_key_expires_at and row.previous_key_expires_at > now:
            previous_keys[row.previous_key_hash] = (row.id, row.previous_key_expires_at)
    routes = rules.sort_routes(
        rules.Route(
            name=rule.name,
            order=rule.position,
            integration_id=rule.integration_id,
            matchers=tuple(rules.parse_matcher(text) for text in rule.spec.get("matchers", [])),
            service_id=rule.service_id,
        )
        for rule in session.scalars(select(RoutingRule))
    )
    silences = [
        rules.SilenceRule(
            id=row.id,
            name=row.name,
            service_id=row.service_id,
            matchers=tuple(rules.parse_matcher(text) for text in row.spec.get("matchers", [])),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )
        for row in session.scalars(select(Silence).where(Silence.ends_at > now))
    ]
    return AlertingConfig(generation, integrations, by_key_hash, previous_keys, routes, silences)


class ConfigCache:
    """The snapshot for the current generation, shared by a process' requests. Keys that rotated with a
    grace period stop matching when the grace ends, whatever the cache holds (checked against ``now``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: AlertingConfig | None = None

    def get(self, session: Session, now: datetime) -> AlertingConfig:
        generation = generations.current(session, CONFIG_GENERATION)
        with self._lock:
            config = self._config
        if config is not None and config.generation == generation:
            return config
        config = load_config(session, generation=generation, now=now)
        with self._lock:
            self._config = config
        return config


# --------------------------------------------------------------------------------- silences ending: release


def release_silenced(session: Session, *, silence_id: int, now: datetime, ignore_silence: int | None = None) -> int:
    """Alerts a silence kept quiet that still fire, once it has ended (or is being deleted): each joins a
    group (or stays quiet under another active silence that matches it). Returns how many joined a group."""
    alerts = Alert.__table__
    suppressed = session.execute(
        select(
            alerts.c.id,
            alerts.c.integration_id,
            alerts.c.source,
            alerts.c.service_id,
            alerts.c.group_key,
            alerts.c.labels,
            alerts.c.summary,
            alerts.c.severity,
        )
        .where(alerts.c.suppressed_by_silence_id == silence_id, alerts.c.status == "firing")
        .order_by(alerts.c.id)
    ).all()
    if not suppressed:
        return 0
    config = load_config(session, generation=-1, now=now)
    silences = [silence for silence in config.silences if silence.id != ignore_silence]
    groups.take_locks(session, [groups.group_lock(row.service_id, row.group_key) for row in suppressed])
    placement = groups.Placement(session, now)
    changes: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    for row in suppressed:
        other = rules.silencing(silences, row.service_id, row.labels, now)
        placement.release([(row.id, "grouped" if other is None else "silenced")])
        if other is not None:
            changes.append({"changed_id": row.id, "group_id": None, "suppressed_by_silence_id": other.id})
            records.append({"silence_id": other.id, "silence_name": other.name, "alert_id": row.id, "at": now})
            continue
        policy = config.policy_for(row.integration_id)
        group = placement.place(
            service_id=row.service_id,
            key=row.group_key,
            policy=policy,
            title=row.summary,
            severity=row.severity,
            source=row.source,
            group_labels={name: row.labels.get(name, "") for name in policy.group_by or ()},
            source_url=None,
        )
        changes.append({"changed_id": row.id, "group_id": group.id, "suppressed_by_silence_id": None})
    connection = session.connection()
    connection.execute(update(alerts).where(alerts.c.id == bindparam("changed_id")), changes)
    if records:
        connection.execute(insert(AlertSuppression.__table__), records)
    placement.finish()
    return sum(1 for change in changes if change["group_id"] is not None)


def silence_ended(session: Session, *, silence_id: int, now: datetime) -> datetime | None:
    """The silence timer: release what it suppressed, or come back at its (moved) end."""
    silence = session.get(Silence, silence_id)
    if silence is None:
        return None
    if silence.ends_at > now:
        return silence.ends_at
    release_silenced(session, silence_id=silence_id, now=now)
    return None


# ----------------------------------------------------------------------------------------- alerts, groups

GROUP_STATE_FILTERS = {
    "open": rules.OPEN_STATES,
    "triggered": ("triggered",),
    "acknowledged": ("acknowledged",),
    "snoozed": ("snoozed",),
    "resolved": ("resolved",),
}


def _before_id(cursor: str | None) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput("The cursor is not one this server issued.", errors=[FieldError("query.cursor", "bad")])
    return value


def list_groups(
    session: Session,
    *,
    state: str | None = "open",
    service: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[AlertGroup], str | None]:
    """Groups, newest first; ``state`` is open (triggered, acknowledged or snoozed), one state, or None."""
    statement = select(AlertGroup).order_by(AlertGroup.id.desc())
    if state:
        statement = statement.where(AlertGroup.state.in_(GROUP_STATE_FILTERS[state]))
    if service:
        statement = statement.join(Service, AlertGroup.service_id == Service.id).where(Service.slug == service)
    before = _before_id(cursor)
    if before is not None:
        statement = statement.where(AlertGroup.id < before)
    rows = list(session.scalars(statement.limit(limit + 1)))
    items = rows[:limit]
    return items, encode_cursor(items[-1].id) if len(rows) > limit and items else None


def group_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(AlertGroup.state, func.count()).group_by(AlertGroup.state)).all())


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    service: str | None = None,
    integration: str | None = None,
    group_id: int | None = None,
    suppressed: bool | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> tuple[list[Alert], str | None]:
    statement = select(Alert).order_by(Alert.id.desc())
    if status:
        statement = statement.where(Alert.status == status)
    if service:
        statement = statement.join(Service, Alert.service_id == Service.id).where(Service.slug == service)
    if integration:
        statement = statement.join(Integration, Alert.integration_id == Integration.id).where(
            Integration.name == integration
        )
    if group_id is not None:
        statement = statement.where(Alert.group_id == group_id)
    if suppressed is not None:
        statement = statement.where(
            Alert.suppressed_by_silence_id.is_not(None) if suppressed else Alert.suppressed_by_silence_id.is_(None)
        )
    before = _before_id(cursor)
    if before is not None:
        statement = statement.where(Alert.id < before)
    rows = list(session.scalars(statement.limit(limit + 1)))
    items = rows[:limit]
    return items, encode_cursor(items[-1].id) if len(rows) > limit and items else None


def get_alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"There is no alert {alert_id}.")
    return alert


def group_alerts(session: Session, group_id: int) -> list[Alert]:
    """A group's alerts: firing first, then newest first."""
    return list(
        session.scalars(
            select(Alert).where(Alert.group_id == group_id).order_by((Alert.status == "firing").desc(), Alert.id.desc())
        )
    )


class Names:
    """Slugs and names for the ids in a set of rows, fetched in one query each."""

    def __init__(self, session: Session, rows: Sequence[Alert | AlertGroup]) -> None:
        self.services = _slugs(session, {row.service_id for row in rows})
        integration_ids = {row.integration_id for row in rows if row.integration_id is not None}
        self.integrations: dict[int, str] = (
            dict(
                session.execute(
                    select(Integration.id, Integration.name).where(Integration.id.in_(integration_ids))
                ).all()
            )
            if integration_ids
            else {}
        )
        silence_ids = {
            row.suppressed_by_silence_id for row in rows if isinstance(row, Alert) and row.suppressed_by_silence_id
        }
        self.silences: dict[int, str] = (
            dict(session.execute(select(Silence.id, Silence.name).where(Silence.id.in_(silence_ids))).all())
            if silence_ids
            else {}
        )


def alert_out(alert: Alert, names: Names) -> AlertOut:
    return AlertOut(
        id=alert.id,
        group_id=alert.group_id,
        service=names.services.get(alert.service_id, "?"),
        integration=names.integrations.get(alert.integration_id) if alert.integration_id else None,
        source=alert.source,
        dedup_key=alert.dedup_key,
        status=alert.status,
        summary=alert.summary,
        severity=alert.severity,
        labels=alert.labels,
        annotations=alert.annotations,
        links=[LinkOut(href=link["href"], text=link["text"]) for link in alert.links],
        details=alert.details,
        routed_by=alert.routed_by,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        received_at=alert.received_at,
        last_received_at=alert.last_received_at,
        occurrences=alert.occurrences,
        resolved_at=alert.resolved_at,
        resolved_by=alert.resolved_by,
        suppressed_by=names.silences.get(alert.suppressed_by_silence_id) if alert.suppressed_by_silence_id else None,
    )


def group_out(group: AlertGroup, names: Names) -> AlertGroupOut:
    return AlertGroupOut(
        id=group.id,
        service=names.services.get(group.service_id, "?"),
        integration=names.integrations.get(group.integration_id) if group.integration_id else None,
        source=group.source,
        title=group.title,
        severity=group.severity,
        state=group.state,
        alert_count=group.alert_count,
        firing_count=group.firing_count,
        group_labels=group.group_labels,
        opened_at=group.opened_at,
        last_alert_at=group.last_alert_at,
        acknowledged_at=group.acknowledged_at,
        acknowledged_by=group.acknowledged_by,
        snoozed_until=group.snoozed_until,
        resolved_at=group.resolved_at,
        resolved_by=group.resolved_by,
        resolution=group.resolution,
        source_url=group.source_url,
    )
