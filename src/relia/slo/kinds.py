"""Config-as-code kinds of the SLO domain: DataSource and SLO (OpenSLO, Sloth and Pyrra documents are
translated into these by ``relia.slo.openslo``, ``relia.slo.sloth`` and ``relia.slo.pyrra``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from relia.config.registry import ConfigObject, Current, Kind, Reference, RowKind, blame, register, unchanged_to_adopt
from relia.core.auth import Principal
from relia.slo import service
from relia.slo.models import SLO, DataSource
from relia.slo.schemas import DataSourceSpec, SLOCreate, SLOSpec


class DataSourceKind(RowKind):
    kind = "DataSource"
    order = 35
    spec_model = DataSourceSpec
    summary = "Where SLIs are read from: a Prometheus HTTP API, or an external system whose data is pushed."
    sensitive = True  # headers may carry credentials
    model = DataSource

    def may_export(self, actor: Principal) -> bool:
        return actor.acts_as_admin

    def spec_of(self, row: DataSource) -> dict[str, Any]:
        return service.data_source_spec(row)

    def save(self, session: Session, *, actor: Principal, name: str, spec: DataSourceSpec, now: datetime) -> None:
        service.upsert_data_source(session, actor=actor, name=name, spec=spec, now=now, config_managed=True)

    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None:
        service.delete_data_source(session, actor=actor, name=name, now=now)


# Not a RowKind: the SLO service has no create-or-replace, so new SLOs are created and existing ones updated.
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
        for obj in [*updates, *unchanged_to_adopt(session, SLO, unchanged)]:
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


register(DataSourceKind())
register(SLOKind())
