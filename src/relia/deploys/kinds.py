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
from typing import Any

from sqlalchemy.orm import Session

from relia.config.registry import ConfigObject, Reference, RowKind, register
from relia.core.auth import Principal
from relia.deploys import service
from relia.deploys.models import DeployTarget
from relia.deploys.schemas import DeployTargetSpec, PrometheusCheck, SloBurnCheck


class DeployTargetKind(RowKind):
    kind = "DeployTarget"
    order = 55  # after the services, data sources and SLOs its analysis names
    spec_model = DeployTargetSpec
    summary = "A service's blue-green target: two environments, the switch adapter, analysis and promotion."
    sensitive = True  # webhook headers may carry credentials
    model = DeployTarget

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: DeployTargetSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))
        for index, check in enumerate(spec.analysis.checks):
            if isinstance(check, PrometheusCheck):
                yield Reference("DataSource", check.data_source, ("analysis", "checks", index, "dataSource"))
            elif isinstance(check, SloBurnCheck):
                yield Reference("SLO", check.slo, ("analysis", "checks", index, "slo"))

    def rows(self, session: Session) -> Iterable[DeployTarget]:
        return service.list_targets(session)

    def spec_of(self, row: DeployTarget) -> dict[str, Any]:
        return service.target_spec(row)

    def save(self, session: Session, *, actor: Principal, name: str, spec: DeployTargetSpec, now: datetime) -> None:
        service.upsert_target(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_target(session, actor=actor, name=name, now=now)


register(DeployTargetKind())
