"""Config-as-code kinds of the alerting domain: Integration (never its key: keys are made and rotated through
the API or `relia alerts integrations rotate-key`, and shown once), RoutingRule and Silence."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.alerting import service
from relia.alerting.models import Integration, RoutingRule, Silence
from relia.alerting.schemas import IntegrationSpec, RoutingRuleSpec, SilenceSpec
from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal


def _unchanged_to_adopt(session: Session, model: Any, unchanged: list[ConfigObject]) -> list[ConfigObject]:
    """Unchanged objects not yet managed by config: marked so a later --prune may remove them."""
    if not unchanged:
        return []
    managed = set(
        session.scalars(
            select(model.name).where(model.name.in_([o.name for o in unchanged]), model.config_managed.is_(True))
        )
    )
    return [obj for obj in unchanged if obj.name not in managed]


class IntegrationKind(Kind):
    kind = "Integration"
    order = 60  # after the services it names
    spec_model = IntegrationSpec
    summary = "Where alerts come in (Alertmanager, Grafana, PagerDuty Events v2, generic): default service, grouping."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: IntegrationSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))

    def current(self, session: Session) -> dict[str, Current]:
        return {
            row.name: Current(service.integration_spec(row), row.config_managed)
            for row in session.scalars(select(Integration))
        }

    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None:
        for obj in [*creates, *updates, *_unchanged_to_adopt(session, Integration, unchanged)]:
            with blame(obj):
                service.upsert_integration(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                    with_key=False,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_integration(session, actor=actor, name=name, now=now)


class RoutingRuleKind(Kind):
    kind = "RoutingRule"
    order = 62
    spec_model = RoutingRuleSpec
    summary = "Label matchers that send an integration's alerts to a service (the first matching rule wins)."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: RoutingRuleSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))
        if spec.integration is not None:
            yield Reference("Integration", spec.integration, ("integration",))

    def current(self, session: Session) -> dict[str, Current]:
        return {
            row.name: Current(service.routing_rule_spec(row), row.config_managed)
            for row in session.scalars(select(RoutingRule))
        }

    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None:
        for obj in [*creates, *updates, *_unchanged_to_adopt(session, RoutingRule, unchanged)]:
            with blame(obj):
                service.upsert_routing_rule(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_routing_rule(session, actor=actor, name=name, now=now)


class SilenceKind(Kind):
    kind = "Silence"
    order = 64
    spec_model = SilenceSpec
    summary = "Suppress matching alerts (of a service, or by labels) for a while, with a record of what it kept quiet."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: SilenceSpec = obj.spec  # type: ignore[assignment]
        if spec.service is not None:
            yield Reference("Service", spec.service, ("service",))

    def current(self, session: Session) -> dict[str, Current]:
        return {
            row.name: Current(service.silence_spec(row), row.config_managed) for row in session.scalars(select(Silence))
        }

    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None:
        for obj in [*creates, *updates, *_unchanged_to_adopt(session, Silence, unchanged)]:
            with blame(obj):
                service.upsert_silence(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_silence(session, actor=actor, name=name, now=now)


register(IntegrationKind())
register(RoutingRuleKind())
register(SilenceKind())
