"""Config-as-code kinds of the alerting domain: Integration (never its key: keys are made and rotated through
the API or `relia alerts integrations rotate-key`, and shown once), RoutingRule and Silence."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.alerting import service
from relia.alerting.models import Integration, RoutingRule, Silence
from relia.alerting.schemas import IntegrationSpec, RoutingRuleSpec, SilenceSpec
from relia.config.registry import ConfigObject, Reference, RowKind, register
from relia.core.auth import Principal


class IntegrationKind(RowKind):
    kind = "Integration"
    order = 60  # after the services it names
    spec_model = IntegrationSpec
    summary = "Where alerts come in (Alertmanager, Grafana, PagerDuty Events v2, generic): default service, grouping."
    model = Integration

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: IntegrationSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))

    def spec_of(self, row: Integration) -> dict[str, Any]:
        return service.integration_spec(row)

    def save(self, session: Session, *, actor: Principal, name: str, spec: IntegrationSpec, now: datetime) -> None:
        service.upsert_integration(
            session, actor=actor, name=name, spec=spec, now=now, config_managed=True, with_key=False
        )

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_integration(session, actor=actor, name=name, now=now)


class RoutingRuleKind(RowKind):
    kind = "RoutingRule"
    order = 62
    spec_model = RoutingRuleSpec
    summary = "Label matchers that send an integration's alerts to a service (the first matching rule wins)."
    model = RoutingRule

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: RoutingRuleSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))
        if spec.integration is not None:
            yield Reference("Integration", spec.integration, ("integration",))

    def spec_of(self, row: RoutingRule) -> dict[str, Any]:
        return service.routing_rule_spec(row)

    def save(self, session: Session, *, actor: Principal, name: str, spec: RoutingRuleSpec, now: datetime) -> None:
        service.upsert_routing_rule(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_routing_rule(session, actor=actor, name=name, now=now)


class SilenceKind(RowKind):
    kind = "Silence"
    order = 64
    spec_model = SilenceSpec
    summary = "Suppress matching alerts (of a service, or by labels) for a while, with a record of what it kept quiet."
    model = Silence

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: SilenceSpec = obj.spec  # type: ignore[assignment]
        if spec.service is not None:
            yield Reference("Service", spec.service, ("service",))

    def spec_of(self, row: Silence) -> dict[str, Any]:
        return service.silence_spec(row)

    def save(self, session: Session, *, actor: Principal, name: str, spec: SilenceSpec, now: datetime) -> None:
        service.upsert_silence(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_silence(session, actor=actor, name=name, now=now)


register(IntegrationKind())
register(RoutingRuleKind())
register(SilenceKind())
