"""Config-as-code kind of the on-call domain: Schedule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal
from relia.oncall import service
from relia.oncall.models import Schedule
from relia.oncall.schemas import ScheduleCreate, ScheduleSpec


# Not a RowKind: the schedule service has no create-or-replace, so new schedules are created and existing ones
# updated.
class ScheduleKind(Kind):
    kind = "Schedule"
    order = 45  # after the users and teams it names, before the escalation policies that name it
    spec_model = ScheduleSpec
    summary = "An on-call schedule: layers of rotations with restrictions, overrides and temporary schedules."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: ScheduleSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Team", spec.team, ("team",))
        for path, username in spec.usernames():
            yield Reference("User", username, tuple(int(part) if part.isdigit() else part for part in path.split(".")))

    def current(self, session: Session) -> dict[str, Current]:
        return {
            schedule.name: Current(service.schedule_spec(schedule), schedule.config_managed)
            for schedule in session.scalars(select(Schedule))
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
        for obj in creates:
            with blame(obj):
                data = ScheduleCreate.model_validate({**obj.normalised(), "name": obj.name})
                service.create_schedule(session, actor=actor, data=data, now=now, config_managed=True)
        for obj in [*updates, *unchanged]:
            with blame(obj):
                service.update_schedule(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_schedule(session, actor=actor, name=name, now=now)


register(ScheduleKind())
