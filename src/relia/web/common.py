"""What every server-rendered page shares: the templates, the signed-in viewer, rendering with the no-store
headers, the CSRF check of form posts, and the ``page`` decorator that turns errors into readable pages.

The catalog pages (``relia.web.pages``) and each domain's ``pages.py`` import these, so every page behaves
the same way whoever wrote it."""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from relia.api.deps import authenticate
from relia.core.auth import Principal
from relia.core.errors import ReliaError

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
# Pages show private data: never keep them in a cache (or the back/forward cache after signing out).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
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
    response = templates.TemplateResponse(
        request,
        template,
        {"viewer": viewer, "csrf_token": getattr(request.state, "csrf_token", ""), **context},
        status_code=status_code,
    )
    response.headers.update(PAGE_HEADERS)
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _check_csrf(request: Request, submitted: str) -> None:
    expected = getattr(request.state, "csrf_token", None)
    if not expected or not secrets.compare_digest(expected, submitted or ""):
        raise ReliaError("The form expired or did not come from this site; reload the page and try again.")


def _viewer_for_error(request: Request, session: Session | None) -> Principal | None:
    """Who is signed in, for the navigation on an error page; None when unknown."""
    if session is None:
        return None
    try:
        session.rollback()
        return authenticate(request, session, request.app.state.clock.now(), required=False)
    except ReliaError:
        return None


def page(handler: Any) -> Any:
    """Turn LoginRequired into a redirect and domain errors into a readable page."""

    @functools.wraps(handler)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return handler(request, *args, **kwargs)
        except LoginRequired:
            return _login_redirect(request)
        except ReliaError as exc:
            viewer = _viewer_for_error(request, kwargs.get("session"))
            return _render(request, "error.html", viewer, status_code=exc.status, title=exc.title, detail=exc.detail)

    return wrapper
