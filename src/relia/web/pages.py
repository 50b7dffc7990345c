"""Server-rendered pages (Jinja2, enhanced with htmx). Every page works without JavaScript: htmx only swaps
in the same HTML a plain request would get."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.api.deps import SESSION_COOKIE, SessionDep
from relia.catalog import identity, service
from relia.catalog.schemas import TokenCreate
from relia.core.auth import Principal, split_token
from relia.core.errors import Forbidden, ReliaError
from relia.core.models import AuditEntry
from relia.policy import pages as policy_pages
from relia.slo import pages as slo_pages
from relia.web.common import _check_csrf, _render, _viewer, page

router = APIRouter()
LOGIN_CSRF_COOKIE = "relia_login_csrf"
NEW_TOKEN_COOKIE = "relia_new_token"
NEW_TOKEN_TTL_SECONDS = 120
AUDIT_PAGE_SIZE = 50


def _safe_next(target: str | None) -> str:
    """A path on this site, or /services. Browsers read a backslash as a slash and drop tabs and newlines,
    so either could turn "/..." into another site's address."""
    if not target or not target.startswith("/") or any(ord(char) < 0x20 or char == "\x7f" for char in target):
        return "/services"
    normalised = target.replace("\\", "/")
    parts = urlsplit(normalised)
    if normalised.startswith("//") or parts.scheme or parts.netloc:
        return "/services"
    return target


# ------------------------------------------------------------------------------------------------ login


def _login_page(
    request: Request,
    *,
    next: str | None,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> Response:
    """The sign-in form, always with a fresh login-CSRF pair: after an expired form the next try works."""
    token = secrets.token_urlsafe(16)
    response = _render(
        request,
        "login.html",
        None,
        status_code=status_code,
        next=_safe_next(next),
        login_csrf=token,
        error=error,
        username=username,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.cookie_secure,
        max_age=3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    return _login_page(request, next=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
    login_csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/services",
) -> Response:
    settings = request.app.state.settings
    cookie_value = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_value or not secrets.compare_digest(cookie_value, login_csrf):
        return _login_page(
            request,
            next=next,
            error="The sign-in form expired; please try again.",
            username=username,
            status_code=400,
        )
    result = identity.login(
        session,
        login_name=username,
        password=password,
        now=request.app.state.clock.now(),
        max_age=timedelta(seconds=settings.session_max_age_seconds),
    )
    if result is None:
        return _login_page(
            request, next=next, error="Unknown user or wrong password.", username=username, status_code=401
        )
    session.commit()
    cookie, _user = result
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=settings.session_max_age_seconds,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
@page
def logout(request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    _viewer(request, session)
    _check_csrf(request, csrf_token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        identity.logout(session, cookie)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/services", status_code=303)


# --------------------------------------------------------------------------------------------- catalog


@router.get("/services", response_class=HTMLResponse)
@page
def services_page(
    request: Request,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    owner: Annotated[str | None, Query(max_length=63)] = None,
    tier: Annotated[str | None, Query(max_length=2)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    viewer = _viewer(request, session)
    tier_number = int(tier) if tier and tier.isdigit() else None
    services, next_cursor = service.list_services(
        session, cursor=cursor, limit=100, owner=owner or None, tier=tier_number, query=q
    )
    teams, _ = service.list_teams(session, limit=500)
    # htmx swaps in the results alone; a history restore (also sent with HX-Request) needs the whole page.
    headers = request.headers
    partial = bool(headers.get("hx-request")) and not headers.get("hx-history-restore-request")
    response = _render(
        request,
        "_services_results.html" if partial else "services.html",
        viewer,
        services=services,
        teams=teams,
        q=q or "",
        owner=owner or "",
        tier=tier_number,
        next_cursor=next_cursor,
        partial=partial,
    )
    response.headers["Vary"] = "HX-Request, HX-History-Restore-Request"
    return response


@router.get("/services/{slug}", response_class=HTMLResponse)
@page
def service_page(request: Request, slug: str, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    svc = service.get_service(session, slug)
    history = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_kind == "Service", AuditEntry.object_key == slug)
        .order_by(AuditEntry.id.desc())
        .limit(10)
    ).all()
    return _render(
        request,
        "service.html",
        viewer,
        service=svc,
        history=history,
        slos=slo_pages.service_slo_rows(session, svc.slug),
        policy=policy_pages.service_panel(session, viewer, svc.slug, request.app.state.clock.now()),
        can_edit=viewer.can_change_team(svc.owner_team_id),
    )


@router.get("/teams", response_class=HTMLResponse)
@page
def teams_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    teams, _ = service.list_teams(session, limit=500)
    return _render(request, "teams.html", viewer, teams=teams)


@router.get("/teams/{slug}", response_class=HTMLResponse)
@page
def team_page(request: Request, slug: str, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    team = service.get_team(session, slug)
    services, _ = service.list_services(session, owner=slug, limit=500)
    return _render(request, "team.html", viewer, team=team, services=services)


@router.get("/users/{username}", response_class=HTMLResponse)
@page
def user_page(request: Request, username: str, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    user = service.get_user(session, username)
    return _render(request, "user.html", viewer, user=service.user_out(user, viewer))


# ---------------------------------------------------------------------------------------------- tokens


def _token_flash(request: Request) -> Fernet:
    """Carries a new token's secret across the redirect after creating it (post/redirect/get, so reloading
    the page neither shows it again nor creates another token): encrypted, short-lived, read once."""
    secret = request.app.state.settings.effective_secret_key.encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"web-new-token:" + secret).digest()))


def _take_new_token(request: Request, viewer: Principal, tokens: list[Any]) -> dict[str, str] | None:
    sealed = request.cookies.get(NEW_TOKEN_COOKIE)
    if not sealed:
        return None
    now = int(request.app.state.clock.now().timestamp())
    try:
        data = json.loads(_token_flash(request).decrypt_at_time(sealed.encode(), NEW_TOKEN_TTL_SECONDS, now))
    except (InvalidToken, ValueError):
        return None
    parts = split_token(str(data.get("token", "")))
    if data.get("user") != viewer.user_id or parts is None:
        return None
    for api_token, _owner in tokens:
        if api_token.public_id == parts[0] and api_token.revoked_at is None:
            return {"token": data["token"], "name": api_token.name, "scope": api_token.scope}
    return None


def _tokens_page(
    request: Request, session: Session, viewer: Principal, *, errors: list[str], name: str = ""
) -> Response:
    tokens = identity.list_tokens(session, actor=viewer, username=viewer.name)
    created = _take_new_token(request, viewer, tokens) if not errors else None
    response = _render(
        request,
        "tokens.html",
        viewer,
        tokens=tokens,
        created=created,
        errors=errors,
        name=name,
        now=request.app.state.clock.now(),
        status_code=422 if errors else 200,
    )
    if request.cookies.get(NEW_TOKEN_COOKIE):
        response.delete_cookie(NEW_TOKEN_COOKIE, path="/tokens")
    return response


@router.get("/tokens", response_class=HTMLResponse)
@page
def tokens_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    return _tokens_page(request, session, viewer, errors=[])


@router.post("/tokens", response_class=HTMLResponse)
@page
def create_token_form(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[str, Form(max_length=10)] = "read",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    now = request.app.state.clock.now()
    try:
        data = TokenCreate.model_validate({"name": name, "scope": scope})
        _api_token, _owner, plaintext = identity.create_token(session, actor=viewer, data=data, now=now)
        session.commit()
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc']).capitalize()}: {e['msg']}" for e in exc.errors()]
        return _tokens_page(request, session, viewer, errors=errors, name=name)
    except ReliaError as exc:
        session.rollback()
        return _tokens_page(request, session, viewer, errors=[exc.detail], name=name)
    sealed = _token_flash(request).encrypt_at_time(
        json.dumps({"user": viewer.user_id, "token": plaintext}).encode(), int(now.timestamp())
    )
    response = RedirectResponse("/tokens", status_code=303)
    response.set_cookie(
        NEW_TOKEN_COOKIE,
        sealed.decode(),
        path="/tokens",
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.cookie_secure,
        max_age=NEW_TOKEN_TTL_SECONDS,
    )
    return response


@router.post("/tokens/{token_id}/revoke")
@page
def revoke_token_form(
    request: Request,
    token_id: str,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    viewer = _viewer(request, session)
    _check_csrf(request, csrf_token)
    identity.revoke_token(session, actor=viewer, public_id=token_id, now=request.app.state.clock.now())
    session.commit()
    return RedirectResponse("/tokens", status_code=303)


# ----------------------------------------------------------------------------------------------- audit

AUDIT_LINKS = {"Service": "/services/", "Team": "/teams/", "User": "/users/"}


def _changed_fields(entry: AuditEntry) -> list[str]:
    before, after = entry.before or {}, entry.after or {}
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


@router.get("/audit", response_class=HTMLResponse)
@page
def audit_page(
    request: Request,
    session: SessionDep,
    kind: Annotated[str | None, Query(max_length=60)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Who changed what: the audit log, newest first, for administrators."""
    viewer = _viewer(request, session)
    if not viewer.acts_as_admin:
        raise Forbidden("Only administrators may read the audit log.")
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(AUDIT_PAGE_SIZE + 1)
    if kind:
        statement = statement.where(AuditEntry.object_kind == kind)
    if key:
        statement = statement.where(AuditEntry.object_key == key)
    if before:
        statement = statement.where(AuditEntry.id < before)
    entries = list(session.scalars(statement).all())
    older = entries[AUDIT_PAGE_SIZE - 1].id if len(entries) > AUDIT_PAGE_SIZE else None
    entries = entries[:AUDIT_PAGE_SIZE]
    return _render(
        request,
        "audit.html",
        viewer,
        entries=[(entry, _changed_fields(entry), AUDIT_LINKS.get(entry.object_kind)) for entry in entries],
        kind=kind or "",
        key=key or "",
        older=older,
    )
