"""Notification routes: a user's notification rules, test messages, the delivery log, the paging pipeline's
health. Thin: parse, call the service, commit, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from relia.api.deps import IfMatchDep, NowDep, PrincipalDep, SessionDep, etag
from relia.api.problems import CONFLICT, NOT_FOUND
from relia.catalog.service import get_user
from relia.core.auth import Principal
from relia.core.schemas import OutModel
from relia.notify import service
from relia.notify.schemas import (
    NotificationOut,
    NotificationRulesIn,
    NotificationRulesOut,
    NotificationRulesSpec,
    PipelineHealthOut,
)

router = APIRouter(tags=["notifications"])
Username = Annotated[str, Path(max_length=63, description="A username, or `me`")]


def _username(username: str, actor: Principal) -> str:
    return actor.name if username == "me" else username


class ContactTestQueued(OutModel):
    idempotency_key: str = Field(description="The outbox message; the worker sends it at its next tick")


@router.get("/users/{username}/notification-rules", summary="A user's notification rules", responses=NOT_FOUND)
def get_rules(username: Username, session: SessionDep, actor: PrincipalDep, response: Response) -> NotificationRulesOut:
    out = service.rules_out(session, get_user(session, _username(username, actor)))
    response.headers["ETag"] = etag(out.version)
    return out


@router.put(
    "/users/{username}/notification-rules",
    summary="Replace a user's notification rules (the user themself, administrators)",
    responses={**NOT_FOUND, **CONFLICT},
)
def put_rules(
    username: Username,
    body: NotificationRulesIn,
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
    if_match: IfMatchDep,
    response: Response,
) -> NotificationRulesOut:
    name = _username(username, actor)
    spec = NotificationRulesSpec.model_validate(body.model_dump(mode="json", exclude={"version"}))
    service.set_rules(
        session, actor=actor, username=name, spec=spec, now=now, if_match=if_match, expected_version=body.version
    )
    out = service.rules_out(session, get_user(session, name))
    session.commit()
    response.headers["ETag"] = etag(out.version)
    return out


@router.delete(
    "/users/{username}/notification-rules",
    summary="Remove a user's rules: every contact method is notified at once again",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
def delete_rules(username: Username, session: SessionDep, actor: PrincipalDep, now: NowDep) -> None:
    service.delete_rules(session, actor=actor, username=_username(username, actor), now=now)
    session.commit()


@router.post(
    "/users/{username}/contact-methods/{method}/test",
    summary="Send a test message to one of a user's contact methods (the user themself, administrators)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=NOT_FOUND,
)
def test_contact_method(
    username: Username,
    method: Annotated[str, Path(max_length=63)],
    session: SessionDep,
    actor: PrincipalDep,
    now: NowDep,
) -> ContactTestQueued:
    key = service.send_test(session, actor=actor, username=_username(username, actor), contact_method=method, now=now)
    session.commit()
    return ContactTestQueued(idempotency_key=key)


@router.get("/notifications", summary="Notifications with their delivery attempts, newest first", responses=NOT_FOUND)
def list_notifications(
    session: SessionDep,
    actor: PrincipalDep,
    group: Annotated[int | None, Query(ge=1, le=2**62, description="Only this alert group's")] = None,
    user: Annotated[str | None, Query(max_length=63, description="Only this user's (or `me`)")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Older than this notification id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    user_id = get_user(session, _username(user, actor)).id if user else None
    rows = service.list_notifications(session, user_id=user_id, group_id=group, before_id=before, limit=limit)
    return service.notifications_out(session, rows)


@router.get("/paging/health", summary="Whether the paging pipeline keeps up (the watchdog's view)")
def paging_health(session: SessionDep, actor: PrincipalDep, now: NowDep) -> PipelineHealthOut:
    return service.pipeline_health(session, now=now)
