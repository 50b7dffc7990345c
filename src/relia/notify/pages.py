"""Notification pages: a user's notification rules (which contact method, how long after being paged), a test
message per contact method, and the user's recent notifications with their delivery.

The rules form has a row per rule plus empty rows to add some, so it works without JavaScript; a row whose
contact method is left empty is dropped. Only the user themself (or an administrator) may change them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from relia.api.deps import SessionDep
from relia.catalog.models import User
from relia.catalog.service import get_user
from relia.core.auth import Principal, Scope
from relia.core.errors import ReliaError
from relia.notify import service
from relia.notify.schemas import NotificationRulesSpec
from relia.web.common import _check_csrf, _render, _viewer, page, templates

router = APIRouter()
Username = Annotated[str, Path(max_length=63)]
EMPTY_ROWS = 2
DELAY_CHOICES = ["0m", "1m", "2m", "5m", "10m", "15m", "30m", "1h"]
DELIVERY_STATES: dict[str, dict[str, str]] = {
    "delivered": {"label": "delivered", "shape": "✔", "css": "status-good"},
    "queued": {"label": "queued", "shape": "…", "css": "status-muted"},
    "throttled": {"label": "held back (throttle)", "shape": "⏸", "css": "status-warn"},
    "retrying": {"label": "retrying", "shape": "↻", "css": "status-warn"},
    "failed": {"label": "failed", "shape": "✖", "css": "status-bad"},
    "cancelled": {"label": "cancelled", "shape": "⊘", "css": "status-muted"},
    "unreachable": {"label": "unreachable", "shape": "✖", "css": "status-bad"},
    "unknown": {"label": "unknown", "shape": "?", "css": "status-muted"},
}
templates.env.globals["delivery_states"] = DELIVERY_STATES


def paging_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


templates.env.filters["paging_time"] = paging_time

NOTICES = {"saved": "Notification rules saved.", "tested": "Test message queued: it leaves at the worker's next tick."}


def _may_change(viewer: Principal, user: User) -> bool:
    return viewer.scope >= Scope.write and (viewer.acts_as_admin or viewer.user_id == user.id)


def _rules_page(
    request: Request,
    session: Session,
    viewer: Principal,
    user: User,
    *,
    errors: list[str] | None = None,
    rows: list[tuple[str, str]] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    out = service.rules_out(session, user)
    if rows is None:
        rows = [(rule.contact_method, rule.after) for rule in out.rules]
    rows = [*rows, *[("", "0m")] * EMPTY_ROWS]
    recent = service.notifications_out(session, service.list_notifications(session, user_id=user.id, limit=20))
    may_see_addresses = viewer.acts_as_admin or viewer.user_id == user.id
    return _render(
        request,
        "notify/rules.html",
        viewer,
        status_code=status_code,
        user=user,
        rules=out,
        rows=rows,
        delays=DELAY_CHOICES,
        methods=user.contact_methods,
        show_addresses=may_see_addresses,
        may_change=_may_change(viewer, user),
        recent=recent,
        errors=errors or [],
        notice=notice,
    )


@router.get("/users/{username}/notifications", response_class=HTMLResponse)
@page
def rules_page(request: Request, username: Username, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    user = get_user(session, username)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return _rules_page(request, session, viewer, user, notice=notice)


@router.post("/users/{username}/notifications", response_class=HTMLResponse)
@page
def save_rules_form(
    request: Request,
    username: Username,
    session: SessionDep,
    contact_method: Annotated[list[str], Form(max_length=30)] = [],  # noqa: B006  (FastAPI reads the default)
    after: Annotated[list[str], Form(max_length=30)] = [],  # noqa: B006
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    user = get_user(session, username)
    rows = [(method.strip(), delay.strip() or "0m") for method, delay in zip(contact_method, after, strict=False)]
    kept = [(method, delay) for method, delay in rows if method]
    try:
        spec = NotificationRulesSpec.model_validate(
            {"rules": [{"contactMethod": method, "after": delay} for method, delay in kept]}
        )
        service.set_rules(session, actor=viewer, username=username, spec=spec, now=request.app.state.clock.now())
        session.commit()
    except ValidationError as exc:
        session.rollback()
        errors = [
            f"Rule {error['loc'][1] + 1}: {error['msg'].removeprefix('Value error, ')}"
            if len(error["loc"]) > 1 and isinstance(error["loc"][1], int)
            else error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        ]
        return _rules_page(request, session, viewer, user, errors=errors, rows=kept, status_code=422)
    except ReliaError as exc:
        session.rollback()
        errors = [f"{error.path}: {error.message}" for error in exc.errors] or [exc.detail]
        return _rules_page(request, session, viewer, user, errors=errors, rows=kept, status_code=exc.status)
    return RedirectResponse(f"/users/{username}/notifications?notice=saved", status_code=303)


@router.post("/users/{username}/notifications/test", response_class=HTMLResponse)
@page
def test_form(
    request: Request,
    username: Username,
    session: SessionDep,
    contact_method: Annotated[str, Form(max_length=63)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    service.send_test(
        session, actor=viewer, username=username, contact_method=contact_method, now=request.app.state.clock.now()
    )
    session.commit()
    return RedirectResponse(f"/users/{username}/notifications?notice=tested", status_code=303)
