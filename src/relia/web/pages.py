"""Server-rendered pages (Jinja2, enhanced with htmx). Every page works without JavaScript: htmx only swaps
in the same HTML a plain request would get."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import select

from relia.api.deps import SESSION_COOKIE, SessionDep, authenticate
from relia.catalog import identity, service
from relia.catalog.schemas import TokenCreate
from relia.core.auth import Principal
from relia.core.errors import ReliaError
from relia.core.models import AuditEntry

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
LOGIN_CSRF_COOKIE = "relia_login_csrf"
TIER_LABELS = {1: "Tier 1 · critical", 2: "Tier 2 · important", 3: "Tier 3 · standard", 4: "Tier 4 · low"}
templates.env.globals["tier_label"] = lambda tier: TIER_LABELS.get(tier, f"Tier {tier}")


class LoginRequired(Exception):
    pass


def _viewer(request: Request, session: Any) -> Principal:
    principal = authenticate(request, session, request.app.state.clock.now(), required=False)
    if principal is None:
        raise LoginRequired
    return principal


def _render(
    request: Request, template: str, viewer: Principal | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "csrf_token": getattr(request.state, "csrf_token", ""), **context},
        status_code=status_code,
    )


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _check_csrf(request: Request, submitted: str) -> None:
    expected = getattr(request.state, "csrf_token", None)
    if not expected or not secrets.compare_digest(expected, submitted or ""):
        raise ReliaError("The form expired or did not come from this site; reload the page and try again.")


def _safe_next(target: str | None) -> str:
    if not target:
        return "/services"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/services"
    return target


def page(handler: Any) -> Any:
    """Turn LoginRequired into a redirect and domain errors into a readable page."""
    import functools

    @functools.wraps(handler)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return handler(request, *args, **kwargs)
        except LoginRequired:
            return _login_redirect(request)
        except ReliaError as exc:
            return _render(
                request, "error.html", None, status_code=exc.status, title=exc.title, detail=exc.detail
            )

    return wrapper


# ------------------------------------------------------------------------------------------------ login


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    token = secrets.token_urlsafe(16)
    response = _render(request, "login.html", None, next=_safe_next(next), login_csrf=token, error=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.cookie_secure,
        max_age=3600,
    )
    return response


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
        return _render(
            request,
            "login.html",
            None,
            status_code=400,
            next=_safe_next(next),
            login_csrf=cookie_value,
            error="The sign-in form expired; please try again.",
        )
    result = identity.login(
        session,
        login_name=username,
        password=password,
        now=request.app.state.clock.now(),
        max_age=timedelta(seconds=settings.session_max_age_seconds),
    )
    if result is None:
        return _render(
            request,
            "login.html",
            None,
            status_code=401,
            next=_safe_next(next),
            login_csrf=cookie_value,
            error="Unknown user or wrong password.",
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
def logout(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=100)] = ""
) -> Response:
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
    template = "_services_rows.html" if request.headers.get("hx-request") else "services.html"
    return _render(
        request,
        template,
        viewer,
        services=services,
        teams=teams,
        q=q or "",
        owner=owner or "",
        tier=tier_number,
        next_cursor=next_cursor,
    )


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


@router.get("/tokens", response_class=HTMLResponse)
@page
def tokens_page(request: Request, session: SessionDep) -> Response:
    viewer = _viewer(request, session)
    tokens = identity.list_tokens(session, actor=viewer, username=viewer.name)
    return _render(request, "tokens.html", viewer, tokens=tokens, created=None, errors=[])


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
    created, errors = None, []
    try:
        data = TokenCreate.model_validate({"name": name, "scope": scope})
        api_token, _owner, plaintext = identity.create_token(session, actor=viewer, data=data, now=now)
        session.commit()
        created = {"token": plaintext, "name": api_token.name, "scope": api_token.scope}
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    except ReliaError as exc:
        errors = [exc.detail]
    tokens = identity.list_tokens(session, actor=viewer, username=viewer.name)
    return _render(
        request,
        "tokens.html",
        viewer,
        tokens=tokens,
        created=created,
        errors=errors,
        status_code=201 if created else 422,
    )


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
