"""Config-as-code kinds of the catalog: User, Team, Service."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.catalog import rules, service
from relia.catalog.models import Service, Team, TeamMembership, User
from relia.catalog.schemas import (
    ServiceCreate,
    ServiceSpec,
    ServiceUpdate,
    TeamCreate,
    TeamSpec,
    TeamUpdate,
    UserCreate,
    UserSpec,
    UserUpdate,
)
from relia.config.documents import ConfigProblem
from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal


class UserKind(Kind):
    kind = "User"
    order = 10
    spec_model = UserSpec
    summary = "A person: name, email, time zone, contact methods."
    sensitive = True

    def may_export(self, actor: Principal) -> bool:
        return actor.acts_as_admin

    def may_read_values(self, actor: Principal, name: str) -> bool:
        return actor.acts_as_admin or actor.name == name

    def current(self, session: Session) -> dict[str, Current]:
        users = session.scalars(select(User).options(selectinload(User.contact_methods))).all()
        return {user.username: Current(service.user_spec(user), user.config_managed) for user in users}

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
        for obj in creates:
            with blame(obj):
                data = UserCreate.model_validate({**obj.normalised(), "username": obj.name})
                service.create_user(session, actor=actor, data=data, now=now, config_managed=True)
        for obj in [*updates, *unchanged]:
            with blame(obj):
                service.update_user(
                    session,
                    actor=actor,
                    username=obj.name,
                    changes=UserUpdate.model_validate(obj.normalised()),
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_user(session, actor=actor, username=name, now=now)


class TeamKind(Kind):
    kind = "Team"
    order = 20
    spec_model = TeamSpec
    summary = "A team: name, description, members and their roles."

    def normalise(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "members": sorted(spec.get("members", []), key=lambda member: member["user"])}

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: TeamSpec = obj.spec  # type: ignore[assignment]
        return [Reference("User", member.user, ("members", index, "user")) for index, member in enumerate(spec.members)]

    def current(self, session: Session) -> dict[str, Current]:
        teams = session.scalars(
            select(Team).options(selectinload(Team.memberships).joinedload(TeamMembership.user))
        ).all()
        return {team.slug: Current(service.team_spec(team), team.config_managed) for team in teams}

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
        for obj in creates:
            with blame(obj):
                data = TeamCreate.model_validate({**obj.normalised(), "slug": obj.name})
                service.create_team(session, actor=actor, data=data, now=now, config_managed=True)
        for obj in [*updates, *unchanged]:
            with blame(obj):
                service.update_team(
                    session,
                    actor=actor,
                    slug=obj.name,
                    changes=TeamUpdate.model_validate(obj.normalised()),
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_team(session, actor=actor, slug=name, now=now)


class ServiceKind(Kind):
    kind = "Service"
    order = 30
    spec_model = ServiceSpec
    summary = "A service: owner team, tier, links, dependencies."

    def normalise(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "dependsOn": sorted(spec.get("dependsOn", []))}

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: ServiceSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Team", spec.owner, ("owner",))
        for index, slug in enumerate(spec.depends_on):
            yield Reference("Service", slug, ("dependsOn", index))

    def check_set(self, desired: dict[str, ConfigObject], current: dict[str, Current]) -> list[ConfigProblem]:
        edges: dict[str, set[str]] = {name: set(spec.spec.get("dependsOn", [])) for name, spec in current.items()}
        problems = []
        for name, obj in desired.items():
            depends_on = obj.spec.depends_on  # type: ignore[attr-defined]
            edges[name] = set(depends_on)
            if name in depends_on:
                problems.append(
                    obj.problem("a service cannot depend on itself", ("spec", "dependsOn", depends_on.index(name)))
                )
        cycle = rules.find_cycle(edges)
        if cycle and not problems:
            path = " -> ".join([*cycle, cycle[0]])
            blamed = next((desired[name] for name in cycle if name in desired), None)
            if blamed is not None:
                problems.append(blamed.problem(f"dependency cycle: {path}", ("spec", "dependsOn")))
        return problems

    def current(self, session: Session) -> dict[str, Current]:
        services = session.scalars(
            select(Service).options(selectinload(Service.owner_team), selectinload(Service.dependencies))
        ).all()
        return {svc.slug: Current(service.service_spec(svc), svc.config_managed) for svc in services}

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
        # Dependencies go last, in two steps (removals, then additions), so no intermediate state has a cycle
        # or a reference to a service that is created later in the same apply.
        for obj in creates:
            with blame(obj):
                data = ServiceCreate.model_validate({**obj.normalised(), "dependsOn": [], "slug": obj.name})
                service.create_service(session, actor=actor, data=data, now=now, config_managed=True)
        for obj in [*updates, *unchanged]:
            with blame(obj):
                changes = ServiceUpdate.model_validate({**obj.normalised(), "dependsOn": None})
                service.update_service(
                    session, actor=actor, slug=obj.name, changes=changes, now=now, config_managed=True
                )
        for obj in updates:
            with blame(obj):
                current = service.get_service(session, obj.name)
                kept = sorted({dep.slug for dep in current.dependencies} & set(obj.spec.depends_on))  # type: ignore[attr-defined]
                service.update_service(
                    session,
                    actor=actor,
                    slug=obj.name,
                    changes=ServiceUpdate.model_construct(depends_on=kept),
                    now=now,
                )
        for obj in [*creates, *updates]:
            with blame(obj):
                service.update_service(
                    session,
                    actor=actor,
                    slug=obj.name,
                    changes=ServiceUpdate.model_construct(depends_on=obj.spec.depends_on),
                    now=now,
                )  # type: ignore[attr-defined]

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.update_service(
                session, actor=actor, slug=name, changes=ServiceUpdate.model_construct(depends_on=[]), now=now
            )
        for name in names:
            service.delete_service(session, actor=actor, slug=name, now=now)


register(UserKind())
register(TeamKind())
register(ServiceKind())
