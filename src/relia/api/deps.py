"""FastAPI dependencies: the database session, the caller, the clock, preconditions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import Depends, Header, Query, Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from relia.catalog import identity
from relia.core.auth import Principal, Via
from relia.core.errors import BadRequest, FieldError, Forbidden, Unauthorized
from relia.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

log = structlog.get_logger("relia.auth")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "relia_session"
CSRF_HEADER = "x-csrf-token"


def get_session(request: Request) -> Iterator[Session]:
    """Reads get a deferred transaction; writes an immediate one on SQLite. Routes commit explicitly, before
    the response is sent, so a 2xx always means the change is durable."""
    session = request.app.state.db.session(write=request.method not in SAFE_METHODS)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_now(request: Request) -> datetime:
    return request.app.state.clock.now()


NowDep = Annotated[datetime, Depends(get_now)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("Use 'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
    return credentials.strip()


def _touch_token_later(request: Request, token_id: int, now: datetime) -> None:
    """Record the token's last use in its own short transaction; a busy database must not fail the request."""
    try:
        with request.app.state.db.transaction() as session:
            identity.touch_token(session, token_id, now)
    except OperationalError:
        log.info("auth.last_used_skipped", token_id=token_id)


def authenticate(request: Request, session: Session, now: datetime, *, required: bool = True) -> Principal | None:
    request_id = request.scope.get("state", {}).get("request_id")
    token = _bearer(request)
    if token is not None:
        result = identity.authenticate_token(session, token, verifier=request.app.state.token_verifier, now=now)
        if result is None:
            raise Unauthorized("The token is unknown, expired or revoked.", headers={"WWW-Authenticate": "Bearer"})
        principal, stale = result
        if stale and principal.token_id is not None:
            # End the request's read-only transaction first: on SQLite a write request's transaction holds
            # the write lock (BEGIN IMMEDIATE), so the touch would wait for it until the busy timeout.
            session.rollback()
            _touch_token_later(request, principal.token_id, now)
        return principal.with_via(Via.api, request_id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = identity.authenticate_session(session, cookie, now=now)
        if found is not None:
            principal, csrf = found
            request.state.csrf_token = csrf
            writes_api = request.method not in SAFE_METHODS and request.url.path.startswith("/api/")
            if writes_api and request.headers.get(CSRF_HEADER) != csrf:
                raise Forbidden("Browser-session writes to the API need the X-CSRF-Token header.")
            return principal.with_via(Via.web, request_id)
    if request.app.state.local_operator:
        return Principal.system("local-operator", via=Via.cli).with_via(Via.cli, request_id)
    if required:
        raise Unauthorized("Sign in, or send 'Authorization: Bearer <token>'.", headers={"WWW-Authenticate": "Bearer"})
    return None


def get_principal(request: Request, session: SessionDep, now: NowDep) -> Principal:
    principal = authenticate(request, session, now)
    assert principal is not None
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


def get_if_match(
    if_match: Annotated[str | None, Header(description='The ETag you read, e.g. `"3"`.')] = None,
) -> int | None:
    if if_match is None:
        return None
    found = _ETAG.match(if_match)
    if not found:
        raise BadRequest(
            'If-Match must be an ETag this server sent, like "3".',
            errors=[FieldError("header.If-Match", "not an ETag of ours")],
        )
    return int(found.group(1))


IfMatchDep = Annotated[int | None, Depends(get_if_match)]


def etag(version: int) -> str:
    return f'"{version}"'


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=500, description="From the previous page's nextCursor")] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


PageDep = Annotated[PageParams, Depends(PageParams)]
