"""Config-as-code kind of the policy domain: BudgetPolicy."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.config.documents import ConfigProblem
from relia.config.registry import ConfigObject, Current, Reference, RowKind, register
from relia.core.auth import Principal
from relia.policy import service
from relia.policy.models import BudgetPolicy
from relia.policy.schemas import BudgetPolicySpec


class BudgetPolicyKind(RowKind):
    kind = "BudgetPolicy"
    order = 50  # after the SLOs it may name
    spec_model = BudgetPolicySpec
    summary = "An error-budget policy: conditions on SLOs, and what happens to releases and the pager."
    model = BudgetPolicy

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

    def spec_of(self, row: BudgetPolicy) -> dict[str, Any]:
        return service.policy_spec(row)

    def unchanged_to_save(self, session: Session, unchanged: list[ConfigObject]) -> list[ConfigObject]:
        # No second look at config_managed: the engine passes only the unchanged policies that config did not
        # manage when it planned, and this kind saves all of those.
        return unchanged

    def save(self, session: Session, *, actor: Principal, name: str, spec: BudgetPolicySpec, now: datetime) -> None:
        service.upsert_policy(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_policy(session, actor=actor, name=name, now=now)


register(BudgetPolicyKind())
