"""Config-as-code kind of the policy domain: BudgetPolicy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.config.documents import ConfigProblem
from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal
from relia.policy import service
from relia.policy.models import BudgetPolicy
from relia.policy.schemas import BudgetPolicySpec


class BudgetPolicyKind(Kind):
    kind = "BudgetPolicy"
    order = 50  # after the SLOs it may name
    spec_model = BudgetPolicySpec
    summary = "An error-budget policy: conditions on SLOs, and what happens to releases and the pager."

    def normalise(self, spec: dict[str, Any]) -> dict[str, Any]:
        return service.normalised(spec)

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: BudgetPolicySpec = obj.spec  # type: ignore[assignment]
        if spec.scope.service is not None:
            yield Reference("Service", spec.scope.service, ("scope", "service"))
        if spec.scope.team is not None:
            yield Reference("Team", spec.scope.team, ("scope", "team"))
        for index, slo in enumerate(spec.slos):
            yield Reference("SLO", slo, ("slos", index))
        pager = spec.actions.hand_pager
        if pager is not None:
            yield Reference("Team", pager.from_team, ("actions", "handPager", "fromTeam"))
            if pager.to_team is not None:
                yield Reference("Team", pager.to_team, ("actions", "handPager", "toTeam"))

    def check_set(self, desired: dict[str, ConfigObject], current: dict[str, Current]) -> list[ConfigProblem]:
        problems = []
        default = desired.get(service.DEFAULT_POLICY_NAME)
        if default is not None and not default.spec.scope.organisation:  # type: ignore[attr-defined]
            problems.append(
                default.problem(
                    "the policy named default replaces the built-in organisation-wide policy: its scope must be "
                    "organisation: true",
                    ("spec", "scope"),
                )
            )
        return problems

    def current(self, session: Session) -> dict[str, Current]:
        return {
            policy.name: Current(service.policy_spec(policy), policy.config_managed)
            for policy in session.scalars(select(BudgetPolicy))
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
        for obj in [*creates, *updates, *unchanged]:
            with blame(obj):
                service.upsert_policy(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_policy(session, actor=actor, name=name, now=now)


register(BudgetPolicyKind())
