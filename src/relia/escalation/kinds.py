"""Config-as-code kind of the escalation domain: EscalationPolicy.

```yaml
apiVersion: relia.dev/v1
kind: EscalationPolicy
metadata: {name: platform-default}
spec:
  team: platform
  default: true
  repeat: 1
  ackTimeout: 30m
  steps:
    - notify: {schedules: [platform-primary]}
    - wait: 5m
    - notify: {users: [ada], teams: [platform]}
    - wait: 15m
```
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.config.documents import ConfigProblem
from relia.config.registry import ConfigObject, Current, Reference, RowKind, get_kind, register
from relia.core.auth import Principal
from relia.escalation import rules, service
from relia.escalation.models import EscalationPolicy
from relia.escalation.schemas import EscalationPolicySpec, canonical


class EscalationPolicyKind(RowKind):
    kind = "EscalationPolicy"
    order = 60  # after the users, teams, services (and schedules) it names
    spec_model = EscalationPolicySpec
    summary = "Who is paged, in which order, for a team's services: notify and wait steps, repeats, ack timeout."
    model = EscalationPolicy

    def normalise(self, spec: dict[str, Any]) -> dict[str, Any]:
        spec = canonical(spec)
        return {**spec, "services": sorted(spec.get("services", []))}

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: EscalationPolicySpec = obj.spec  # type: ignore[assignment]
        yield Reference("Team", spec.team, ("team",))
        for index, slug in enumerate(spec.services):
            yield Reference("Service", slug, ("services", index))
        # Schedules are checked only where on-call scheduling is installed (its kind is registered); elsewhere
        # the policy service checks them when they can be resolved.
        schedules_known = get_kind("Schedule") is not None
        for step_index, step in enumerate(spec.steps):
            if step.notify is None:
                continue
            path = ("steps", step_index, "notify")
            for index, name in enumerate(step.notify.users):
                yield Reference("User", name, (*path, "users", index))
            for index, name in enumerate(step.notify.teams):
                yield Reference("Team", name, (*path, "teams", index))
            if schedules_known:
                for index, name in enumerate(step.notify.schedules):
                    yield Reference("Schedule", name, (*path, "schedules", index))

    def check_set(self, desired: dict[str, ConfigObject], current: dict[str, Current]) -> list[ConfigProblem]:
        problems = []
        for obj in desired.values():
            spec: EscalationPolicySpec = obj.spec  # type: ignore[assignment]
            steps = [step.model_dump(exclude_none=True) for step in spec.steps]
            for path, message in rules.spec_problems(steps, spec.repeat):
                problems.append(obj.problem(message, ("spec", *_path(path))))
        specs = {name: obj.spec for name, obj in desired.items()}
        for name, path, message in service.check_conflicting_defaults(specs):  # type: ignore[arg-type]
            problems.append(desired[name].problem(message, ("spec", *_path(path))))
        return problems

    def spec_of(self, row: EscalationPolicy) -> dict[str, Any]:
        return self.normalise(service.policy_spec(row))

    def save(self, session: Session, *, actor: Principal, name: str, spec: EscalationPolicySpec, now: datetime) -> None:
        service.upsert_policy(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_policy(session, actor=actor, name=name, now=now)


def _path(dotted: str) -> tuple[str | int, ...]:
    return tuple(int(part) if part.isdigit() else part for part in dotted.split("."))


register(EscalationPolicyKind())
