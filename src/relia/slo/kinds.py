"""Config-as-code kinds of the SLO domain: DataSource and SLO (OpenSLO, Sloth and Pyrra documents are
translated into these by ``relia.slo.openslo``, ``relia.slo.sloth`` and ``relia.slo.pyrra``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.config.registry import ConfigObject, Current, Kind, Reference, blame, register
from relia.core.auth import Principal
from relia.slo import service
from relia.slo.models import SLO, DataSource
from relia.slo.schemas import DataSourceSpec, SLOCreate, SLOSpec


class DataSourceKind(Kind):
    kind = "DataSource"
    order = 35
    spec_model = DataSourceSpec
    summary = "Where SLIs are read from: a Prometheus HTTP API, or an external system whose data is pushed."
    sensitive = True  # headers may carry credentials

    def may_export(self, actor: Principal) -> bool:
        return actor.acts_as_admin

    def current(self, session: Session) -> dict[str, Current]:
        return {
            source.name: Current(service.data_source_spec(source), source.config_managed)
            for source in session.scalars(select(DataSource))
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
        for obj in [*creates, *updates, *_adopted(session, DataSource, unchanged)]:
            with blame(obj):
                service.upsert_data_source(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,  # type: ignore[arg-type]
                    now=now,
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_data_source(session, actor=actor, name=name, now=now)


class SLOKind(Kind):
    kind = "SLO"
    order = 40
    spec_model = SLOSpec
    summary = "A service level objective: indicator, window, objectives, alerting."

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        spec: SLOSpec = obj.spec  # type: ignore[assignment]
        yield Reference("Service", spec.service, ("service",))
        if spec.indicator.source is not None:
            yield Reference("DataSource", spec.indicator.source, ("indicator", "source"))

    def current(self, session: Session) -> dict[str, Current]:
        slos = session.scalars(select(SLO).options(selectinload(SLO.objectives))).all()
        return {slo.name: Current(service.slo_spec(slo), slo.config_managed) for slo in slos}

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
                data = SLOCreate.model_validate({**obj.normalised(), "name": obj.name})
                service.create_slo(session, actor=actor, data=data, now=now, config_managed=True)
        for obj in [*updates, *_adopted(session, SLO, unchanged)]:
            with blame(obj):
                service.update_slo(
                    session,
                    actor=actor,
                    name=obj.name,
                    spec=obj.spec,
                    now=now,  # type: ignore[arg-type]
                    config_managed=True,
                )

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            service.delete_slo(session, actor=actor, name=name, now=now)


def _adopted(session: Session, model: Any, unchanged: list[ConfigObject]) -> list[ConfigObject]:
    """Unchanged objects not yet managed by config: they are marked so a later --prune may remove them."""
    if not unchanged:
        return []
    managed = set(
        session.scalars(
            select(model.name).where(model.name.in_([o.name for o in unchanged]), model.config_managed.is_(True))
        )
    )
    return [obj for obj in unchanged if obj.name not in managed]


register(DataSourceKind())
register(SLOKind())
