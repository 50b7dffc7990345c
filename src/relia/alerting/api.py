"""Alerting routes.

Intake (authenticated by the integration key, not by a bearer token): ``POST /api/v1/integrations/{key}/
alertmanager``, ``.../grafana``, ``.../generic``, and PagerDuty's ``POST /v2/enqueue`` (``pagerduty_router``,
mounted outside /api/v1 so a PagerDuty client only changes its host). Each request is worked on in one write
transaction that commits before the answer; at most ``IntakeGate.limit`` at once per process (503 with
Retry-After beyond). The key is written out of the request's path before anything logs it.

Management (bearer token or browser session, as every other route): integrations and their keys, routing rules,
silences, alerts, alert groups and their acknowledge / snooze / resolve.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from relia.alerting import groups, intake, rules, service
from relia.alerting.schemas import (
    AlertGroupDetail,
    AlertGroupOut,
    AlertmanagerWebhook,
    AlertOut,
    GenericEvent,
    GrafanaWebhook,
    IntakeResult,
    IntegrationCreate,
    IntegrationOut,
    IntegrationSpec,
    IntegrationWithKey,
    PagerDutyAccepted,
    PagerDutyError,
    PagerDutyEventIn,
    RotateKey,
    RoutingRuleCreate,
    RoutingRuleOut,
    RoutingRuleSpec,
    SilenceCreate,
    SilenceDetail,
    SilenceOut,
    SilenceSpec,
    SnoozeRequest,
)
from relia.api.deps import NO_CREDENTIALS, IfMatchDep, NowDep, PageDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.core.batching import GroupCommitWriter
from relia.core.errors import FieldError, InvalidInput, Unavailable
from relia.core.schemas import SLUG_PATTERN, Page

router = APIRouter()
pagerduty_router = APIRouter()

Name = Annotated[str, Path(max_length=63, pattern=SLUG_PATTERN)]
GroupId = Annotated[int, Path(ge=1, le=2**62)]
IntakeKey = Annotated[str, Path(min_length=1, max_length=200, description="The integration key")]
REDACTED = "[key]"


# ------------------------------------------------------------------------------------------------ intake


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its definitions written in place, to document a body the route reads
    itself (it must authenticate and count the request before parsing it)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(copy.deepcopy(definitions[ref.removeprefix("#/$defs/")]))
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def _body_doc(*models: type[BaseModel]) -> dict[str, Any]:
    schemas = [_inline_schema(model) for model in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    # Intake routes take the integration key in the URL (or body), never a bearer token.
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}, **NO_CREDENTIALS}


def _gate(request: Request) -> intake.IntakeGate:
    state = request.app.state
    gate = getattr(state, "alert_intake_gate", None)
    if gate is None:
        gate = state.alert_intake_gate = intake.IntakeGate()
    return gate


def _config_cache(request: Request) -> service.ConfigCache:
    state = request.app.state
    cache = getattr(state, "alerting_config_cache", None)
    if cache is None:
        cache = state.alerting_config_cache = service.ConfigCache()
    return cache


def _redact(request: Request, key: str) -> None:
    """Keep the key (a secret) out of the access log and problem documents: they read the request's path."""
    for name in ("path", "raw_path"):
        value = request.scope.get(name)
        if isinstance(value, str):
            request.scope[name] = value.replace(key, REDACTED)
        elif isinstance(value, bytes):
            request.scope[name] = value.replace(key.encode(), REDACTED.encode())


def _writer(request: Request) -> GroupCommitWriter[service.AlertingConfig]:
    state = request.app.state
    writer = getattr(state, "alert_intake_writer", None)
    if writer is None:
        writer = state.alert_intake_writer = intake.intake_writer(state.db, _config_cache(request))
    return writer


Work = Callable[[Any, service.AlertingConfig, bytes, datetime], Any]


async def _intake(request: Request, work: Work) -> Any:
    """Count the request in, read its body, and have the intake writer do ``work`` in a write transaction
    (shared with the other requests waiting then); the answer comes after the commit."""
    gate = _gate(request)
    if not gate.try_enter():
        raise Unavailable("Too many alerts are arriving at once; retry shortly.", headers={"Retry-After": "1"})
    try:
        body = await request.body()
        now = request.app.state.clock.now()
        future = _writer(request).submit(lambda session, config, at: work(session, config, body, at), now)
        result = await asyncio.wrap_future(future)
    finally:
        gate.leave()
    # A group that opened must page now, not at the worker's next scheduled tick.
    waker = getattr(request.app.state, "worker_waker", None)
    if waker is not None and waker.due():
        await asyncio.to_thread(waker.send)
    return result


def _answer(result: IntakeResult) -> Response:
    # Serialised here, once: the route's response_model documents the shape.
    return Response(result.model_dump_json(), media_type="application/json")


def _keyed(key: str, adapter: Callable[..., IntakeResult]) -> Work:
    def work(session: Any, config: service.AlertingConfig, body: bytes, now: datetime) -> IntakeResult:
        integration = intake.authenticate(config, key, now)
        return adapter(session, config=config, integration=integration, body=body, now=now)

    return work


INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    503: {"description": "Overloaded or the database is busy: retry after Retry-After seconds"},
}


@router.post(
    "/integrations/{key}/alertmanager",
    tags=["alert intake"],
    summary="Alertmanager webhook (version 4)",
    response_model=IntakeResult,
    responses=INTAKE_RESPONSES,
    openapi_extra=_body_doc(AlertmanagerWebhook),
)
async def alertmanager_webhook(key: IntakeKey, request: Request) -> Any:
    _redact(request, key)
    return _answer(await _intake(request, _keyed(key, intake.accept_alertmanager)))


@router.post(
    "/integrations/{key}/grafana",
    tags=["alert intake"],
    summary="Grafana webhook (version 1; Grafana 11 and 12)",
    response_model=IntakeResult,
    responses=INTAKE_RESPONSES,
    openapi_extra=_body_doc(GrafanaWebhook),
)
async def grafana_webhook(key: IntakeKey, request: Request) -> Any:
    _redact(request, key)

    def grafana(session: Any, **kwargs: Any) -> IntakeResult:
        return intake.accept_alertmanager(session, source="grafana", **kwargs)

    return _answer(await _intake(request, _keyed(key, grafana)))


@router.post(
    "/integrations/{key}/generic",
    tags=["alert intake"],
    summary="Relia's generic webhook: one event, or {alerts: [...]} (see docs/alerting.md)",
    response_model=IntakeResult,
    responses=INTAKE_RESPONSES,
    openapi_extra=_body_doc(GenericEvent),
)
async def generic_webhook(key: IntakeKey, request: Request) -> Any:
    _redact(request, key)
    return _answer(await _intake(request, _keyed(key, intake.accept_generic)))


def _pagerduty_error(description: str) -> dict[str, Any]:
    return {"description": description, "model": PagerDutyError, "content": {"application/json": {}}}


@pagerduty_router.post(
    "/v2/enqueue",
    tags=["alert intake"],
    summary="PagerDuty Events API v2 (routing_key: the integration key)",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PagerDutyAccepted,
    responses={
        400: _pagerduty_error("Invalid event (PagerDuty's shape: status, message, errors)"),
        404: _pagerduty_error("Unknown routing key"),
        413: _pagerduty_error("Larger than 512 KB"),
        503: {"description": "Overloaded or the database is busy: retry after Retry-After seconds"},
    },
    openapi_extra=_body_doc(PagerDutyEventIn),
)
async def pagerduty_enqueue(request: Request) -> Any:
    def work(session: Any, config: service.AlertingConfig, body: bytes, now: datetime) -> intake.PagerDutyAnswer:
        return intake.accept_pagerduty(session, config=config, body=body, now=now)

    answer: intake.PagerDutyAnswer = await _intake(request, work)
    return JSONResponse(answer.body, status_code=answer.status_code)


# ------------------------------------------------------------------------------------------ integrations


def _with_key(integration: Any, key: str, request: Request) -> IntegrationWithKey:
    out = service.integration_out(integration)
    base = str(request.base_url).rstrip("/")
    urls = {
        "alertmanager": f"{base}/api/v1/integrations/{key}/alertmanager",
        "grafana": f"{base}/api/v1/integrations/{key}/grafana",
        "generic": f"{base}/api/v1/integrations/{key}/generic",
        "pagerduty": f"{base}/v2/enqueue",
    }
    return IntegrationWithKey(**out.model_dump(), secret=key, urls=urls)


@router.get("/integrations", tags=["integrations"], summary="List integrations (never their keys)")
def list_integrations(session: SessionDep, actor: PrincipalDep) -> list[IntegrationOut]:
    return [service.integration_out(row) for row in service.list_integrations(session)]


@router.post(
    "/integrations",
    tags=["integrations"],
    summary="Create an integration; its key is in this answer only",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_integration(
    body: IntegrationCreate, request: Request, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> IntegrationWithKey:
    integration, key = service.create_integration(session, actor=actor, data=body, now=now)
    out = _with_key(integration, key, request)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/integrations/{name}", tags=["integrations"], summary="Get an integration", responses=NOT_FOUND)
def get_integration(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> IntegrationOut:
    integration = service.get_integration(session, name)
    response.headers["ETag"] = etag(integration.version)
    return service.integration_out(integration)


@router.put(
    "/integrations/{name}",
    tags=["integrations"],
    summary="Create or replace an integration (a new one's key is in the answer, as `secret`)",
    responses={**NOT_FOUND, **CONFLICT, 201: {"model": IntegrationWithKey, "description": "Created"}},
    response_model=IntegrationOut | IntegrationWithKey,
)
def put_integration(
    name: Name,
    body: IntegrationSpec,
    request: Request,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> Any:
    integration, created, key = service.upsert_integration(
        session, actor=actor, name=name, spec=body, now=now, if_match=if_match
    )
    out = _with_key(integration, key, request) if key else service.integration_out(integration)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/integrations/{name}",
    tags=["integrations"],
    summary="Delete an integration (its key stops working; its alerts stay)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_integration(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_integration(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


@router.post(
    "/integrations/{name}/rotate-key",
    tags=["integrations"],
    summary="Make a new key (shown once); the old one stops now or after a grace period",
    responses=NOT_FOUND,
)
def rotate_integration_key(
    name: Name, request: Request, session: SessionDep, actor: PrincipalDep, now: NowDep, body: RotateKey | None = None
) -> IntegrationWithKey:
    grace = rules.parse_duration(body.grace) if body is not None and body.grace else None
    integration, key = service.rotate_key(session, actor=actor, name=name, now=now, grace=grace)
    out = _with_key(integration, key, request)
    session.commit()
    return out


# ----------------------------------------------------------------------------------------- routing rules


@router.get("/routing-rules", tags=["routing rules"], summary="List routing rules, in the order they are tried")
def list_routing_rules(session: SessionDep, actor: PrincipalDep) -> list[RoutingRuleOut]:
    return [service.routing_rule_out(rule) for rule in service.list_routing_rules(session)]


@router.post(
    "/routing-rules",
    tags=["routing rules"],
    summary="Create a routing rule",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_routing_rule(
    body: RoutingRuleCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> RoutingRuleOut:
    rule = service.create_routing_rule(session, actor=actor, data=body, now=now)
    out = service.routing_rule_out(rule)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.get("/routing-rules/{name}", tags=["routing rules"], summary="Get a routing rule", responses=NOT_FOUND)
def get_routing_rule(name: Name, session: SessionDep, actor: PrincipalDep, response: Response) -> RoutingRuleOut:
    rule = service.get_routing_rule(session, name)
    response.headers["ETag"] = etag(rule.version)
    return service.routing_rule_out(rule)


@router.put(
    "/routing-rules/{name}",
    tags=["routing rules"],
    summary="Create or replace a routing rule",
    responses={**NOT_FOUND, **CONFLICT, 201: {"model": RoutingRuleOut, "description": "Created"}},
)
def put_routing_rule(
    name: Name,
    body: RoutingRuleSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> RoutingRuleOut:
    rule, created = service.upsert_routing_rule(session, actor=actor, name=name, spec=body, now=now, if_match=if_match)
    out = service.routing_rule_out(rule)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/routing-rules/{name}",
    tags=["routing rules"],
    summary="Delete a routing rule",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_routing_rule(
    name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep
) -> None:
    service.delete_routing_rule(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


# ---------------------------------------------------------------------------------------------- silences


def _silence_out(session: Any, silence: Any, now: datetime) -> SilenceOut:
    counts = service.suppressed_counts(session, [silence.id])
    return service.silence_out(silence, now, counts.get(silence.id, 0))


@router.get("/silences", tags=["silences"], summary="List silences, newest start first")
def list_silences(
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    state: Annotated[Literal["active", "pending", "expired"] | None, Query()] = None,
) -> list[SilenceOut]:
    silences = service.list_silences(session, state=state, now=now)
    counts = service.suppressed_counts(session, [silence.id for silence in silences])
    return [service.silence_out(silence, now, counts.get(silence.id, 0)) for silence in silences]


@router.post(
    "/silences",
    tags=["silences"],
    summary="Create a silence (startsAt defaults to now; endsAt or duration)",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
)
def create_silence(
    body: SilenceCreate, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response
) -> SilenceOut:
    silence = service.create_silence(session, actor=actor, data=body, now=now)
    out = _silence_out(session, silence, now)
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.get(
    "/silences/{name}", tags=["silences"], summary="A silence with the alerts it suppressed", responses=NOT_FOUND
)
def get_silence(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, response: Response) -> SilenceDetail:
    silence = service.get_silence(session, name)
    response.headers["ETag"] = etag(silence.version)
    suppressed = service.suppressed_alerts(session, silence)
    out = service.silence_out(silence, now, len(suppressed))
    return SilenceDetail(**out.model_dump(), suppressed_alerts=suppressed)


@router.put(
    "/silences/{name}",
    tags=["silences"],
    summary="Create or replace a silence",
    responses={**NOT_FOUND, **CONFLICT, 201: {"model": SilenceOut, "description": "Created"}},
)
def put_silence(
    name: Name,
    body: SilenceSpec,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> SilenceOut:
    silence, created = service.upsert_silence(session, actor=actor, name=name, spec=body, now=now, if_match=if_match)
    out = _silence_out(session, silence, now)
    session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = etag(out.version)
    return out


@router.post(
    "/silences/{name}/expire",
    tags=["silences"],
    summary="End a silence now (it stays, with its record); the alerts it kept quiet join groups",
    responses={**NOT_FOUND, **CONFLICT},
)
def expire_silence(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep) -> SilenceOut:
    silence = service.expire_silence(session, actor=actor, name=name, now=now)
    service.release_silenced(session, silence_id=silence.id, now=now)
    out = _silence_out(session, silence, now)
    session.commit()
    return out


@router.delete(
    "/silences/{name}",
    tags=["silences"],
    summary="Delete a silence (the record of what it suppressed stays)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **CONFLICT},
)
def delete_silence(name: Name, session: SessionDep, actor: PrincipalDep, now: NowDep, if_match: IfMatchDep) -> None:
    service.delete_silence(session, actor=actor, name=name, now=now, if_match=if_match)
    session.commit()


# ------------------------------------------------------------------------------------------------ alerts


@router.get("/alerts", tags=["alerts"], summary="Alerts, newest first")
def list_alerts(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    alert_status: Annotated[Literal["firing", "resolved"] | None, Query(alias="status")] = None,
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
    integration: Annotated[str | None, Query(max_length=63)] = None,
    group: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    suppressed: Annotated[bool | None, Query()] = None,
) -> Page[AlertOut]:
    alerts, next_cursor = service.list_alerts(
        session,
        status=alert_status,
        service=service_slug,
        integration=integration,
        group_id=group,
        suppressed=suppressed,
        cursor=page.cursor,
        limit=page.limit,
    )
    names = service.Names(session, alerts)
    return Page[AlertOut](items=[service.alert_out(alert, names) for alert in alerts], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", tags=["alerts"], summary="One alert", responses=NOT_FOUND)
def get_alert(alert_id: GroupId, session: SessionDep, actor: PrincipalDep) -> AlertOut:
    alert = service.get_alert(session, alert_id)
    return service.alert_out(alert, service.Names(session, [alert]))


@router.get("/alert-groups", tags=["alert groups"], summary="Alert groups, newest first (open ones by default)")
def list_alert_groups(
    session: SessionDep,
    actor: PrincipalDep,
    page: PageDep,
    state: Annotated[
        Literal["open", "triggered", "acknowledged", "snoozed", "resolved", "all"],
        Query(description="open: not resolved"),
    ] = "open",
    service_slug: Annotated[str | None, Query(alias="service", max_length=63)] = None,
) -> Page[AlertGroupOut]:
    found, next_cursor = service.list_groups(
        session,
        state=None if state == "all" else state,
        service=service_slug,
        cursor=page.cursor,
        limit=page.limit,
    )
    names = service.Names(session, found)
    return Page[AlertGroupOut](items=[service.group_out(group, names) for group in found], next_cursor=next_cursor)


def _group_detail(session: Any, group: Any) -> AlertGroupDetail:
    alerts = service.group_alerts(session, group.id)
    names = service.Names(session, [group, *alerts])
    return AlertGroupDetail(
        **service.group_out(group, names).model_dump(), alerts=[service.alert_out(alert, names) for alert in alerts]
    )


@router.get("/alert-groups/{group_id}", tags=["alert groups"], summary="A group with its alerts", responses=NOT_FOUND)
def get_alert_group(group_id: GroupId, session: SessionDep, actor: PrincipalDep) -> AlertGroupDetail:
    return _group_detail(session, groups.get_group(session, group_id))


@router.post(
    "/alert-groups/{group_id}/acknowledge",
    tags=["alert groups"],
    summary="Acknowledge (escalation stops; again changes nothing)",
    responses={**NOT_FOUND, **CONFLICT},
)
def acknowledge_alert_group(
    group_id: GroupId, session: SessionDep, actor: PrincipalDep, now: NowDep
) -> AlertGroupDetail:
    group = groups.acknowledge(session, actor=actor, group_id=group_id, now=now)
    out = _group_detail(session, group)
    session.commit()
    return out


@router.post(
    "/alert-groups/{group_id}/resolve",
    tags=["alert groups"],
    summary="Resolve the group and every alert of it still firing",
    responses=NOT_FOUND,
)
def resolve_alert_group(group_id: GroupId, session: SessionDep, actor: PrincipalDep, now: NowDep) -> AlertGroupDetail:
    group = groups.resolve(session, actor=actor, group_id=group_id, now=now)
    out = _group_detail(session, group)
    session.commit()
    return out


@router.post(
    "/alert-groups/{group_id}/snooze",
    tags=["alert groups"],
    summary="Snooze until a time or for a while (at most 7 days); then it is triggered again",
    responses={**NOT_FOUND, **CONFLICT},
)
def snooze_alert_group(
    group_id: GroupId, body: SnoozeRequest, session: SessionDep, actor: PrincipalDep, now: NowDep
) -> AlertGroupDetail:
    if (body.duration is None) == (body.until is None):
        raise InvalidInput(
            "Give either duration or until.", errors=[FieldError("body.duration", "give either duration or until")]
        )
    duration = rules.parse_duration(body.duration) if body.duration else None
    group = groups.snooze(session, actor=actor, group_id=group_id, now=now, duration=duration, until=body.until)
    out = _group_detail(session, group)
    session.commit()
    return out
