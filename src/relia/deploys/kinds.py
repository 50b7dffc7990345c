"""Config-as-code kind of the deploys domain: DeployTarget, a service's blue-green target.

```yaml
apiVersion: relia.dev/v1
kind: DeployTarget
metadata: {name: checkout}
spec:
  service: checkout
  environments:
    blue: {upstream: "10.0.1.10:8080", healthUrl: "http://10.0.1.10:8080/healthz"}
    green: {upstream: "10.0.1.11:8080", healthUrl: "http://10.0.1.11:8080/healthz"}
  adapter: {type: nginx, upstreamFile: /etc/nginx/relia/checkout.conf, upstreamName: checkout}
```

The spec is what was declared. Which environment is live is state that deployments move; re-applying an
unchanged file never moves it back (see ``service.upsert_target``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal
from relia.deploys import service
from relia.deploys.models import DeployTarget
from relia.deploys.schemas import DeployTargetSpec, PrometheusCheck, SloBurnCheck


class DeployTargetKind(Kind):
    kind = "DeployTarget"
    order = 55  # after the services, data sources and SLOs its analysis names
    spec_model = DeployTargetSpec
    summary = "A service's blue-green target: two environments, the switch adapter, analysis and promotion."
    sensitive = True  # webhook headers may carry credentials

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: DeployTargetSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))
        for index, check in enumerate(spec.analysis.checks):
            if isinstance(check, PrometheusCheck):
                yield Reference("DataSource", check.data_source, ("analysis", "checks", index, "dataSource"))
            elif isinstance(check, SloBurnCheck):
                yield Reference("SLO", check.slo, ("analysis", "checks", index, "slo"))

    def current(self, session: Session) -> dict[str, Current]:
        return {
            target.name: Current(service.target_spec(target), target.config_managed)
            for target in service.list_targets(session)
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
        for obj in [*creates, *updates, *_adopted(session, unchanged)]:
            with blame(obj):
                service.upsert_target(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_target(session, actor=actor, name=name, now=now)


def _adopted(session: Session, unchanged: list[ConfigObject]) -> list[ConfigObject]:
    """Unchanged targets not yet managed by config: they are marked so a later --prune may remove them."""
    if not unchanged:
        return []
    managed = set(
        session.scalars(
            select(DeployTarget.name).where(
                DeployTarget.name.in_([obj.name for obj in unchanged]), DeployTarget.config_managed.is_(True)
            )
        )
    )
    return [obj for obj in unchanged if obj.name not in managed]


register(DeployTargetKind())
