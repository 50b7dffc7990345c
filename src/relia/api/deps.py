"""FastAPI dependencies: the database session, the caller, the clock, preconditions."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated

import structlog
from fastapi import Depends, Header, Query, Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from relia.catalog import identity
from relia.core.auth import Principal, Via
from relia.core.errors import BadRequest, FieldError, Forbidden, Unauthorized
from relia.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

log = structlog.get_logger("relia.auth")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# ``openapi_extra`` of an operation that takes no bearer token or session: a health probe, or a route whose
# URL or body carries its own secret (an integration key, a calendar token).
NO_CREDENTIALS: dict[str, list] = {"security": []}
SESSION_COOKIE = "relia_session"
CSRF_HEADER = "x-csrf-token"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Reads get a deferred transaction; writes an immediate one on SQLite. Routes commit explicitly, before
    the response is sent, so a 2xx always means the change is durable.

    Async so that making the session (no I/O yet) costs no worker-thread hop; closing it, which may talk
    to the database, is sent to the thread pool."""
    session = request.app.state.db.session(write=request.method not in SAFE_METHODS)
    try:
        yield session
    finally:
        await run_in_threadpool(_end, session)


def _end(session: Session) -> None:
    session.rollback()
    session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_now(request: Request) -> datetime:
    # Trivial dependencies are async so they run on the event loop: a sync one costs a worker-thread hop.
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


class PrincipalCache:
    """Who a bearer token is, remembered for reads only and for about a second.

    Reads are most of the traffic and each would otherwise cost two lookups before any work; a second is
    how long a revoked token or a changed membership may still read (writes always ask the database). Keys
    are keyed hashes of the token, never the token itself."""

    def __init__(self, key: bytes, ttl_seconds: float = 1.0, capacity: int = 4096) -> None:
        self._key = key
        self._ttl = timedelta(seconds=ttl_seconds)
        self._capacity = capacity
        self._entries: dict[bytes, tuple[datetime, Principal]] = {}
        self._lock = threading.Lock()

    def _digest(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    def get(self, token: str, now: datetime) -> Principal | None:
        # Measured on the application's clock, so expiry and last-use stay right under a simulated clock.
        digest = self._digest(token)
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None or not (entry[0] <= now < entry[0] + self._ttl):
            return None
        return entry[1]

    def put(self, token: str, principal: Principal, now: datetime) -> None:
        digest = self._digest(token)
        with self._lock:
            if len(self._entries) >= self._capacity:
                self._entries.clear()
            self._entries[digest] = (now, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def authenticate(
    request: Request, session: Session, now: datetime, *, required: bool = True, as_read: bool = False
) -> Principal | None:
    """``as_read``: a POST that changes no one's rights (it asks a question and records only that it was
    asked) authenticates like a read, through the principal cache."""
    request_id = request.scope.get("state", {}).get("request_id")
    token = _bearer(request)
    reading = as_read or request.method in SAFE_METHODS
    cache: PrincipalCache = request.app.state.principal_cache
    if not reading:
        # A write may change rights (memberships, a revoked token): reads here look again at once.
        cache.clear()
    if token is not None:
        if reading:
            cached = cache.get(token, now)
            if cached is not None:
                return cached.with_via(Via.api, request_id)
        result = identity.authenticate_token(session, token, verifier=request.app.state.token_verifier, now=now)
        if result is None:
            raise Unauthorized("The token is unknown, expired or revoked.", headers={"WWW-Authenticate": "Bearer"})
        principal, stale = result
        if stale and principal.token_id is not None:
            # End the request's read-only transaction first: on SQLite a write request's transaction holds
            # the write lock (BEGIN IMMEDIATE), so the touch would wait for it until the busy timeout.
            session.rollback()
            _touch_token_later(request, principal.token_id, now)
        if reading:
            cache.put(token, principal, now)
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


async def get_principal(request: Request, session: SessionDep, now: NowDep) -> Principal:
    # A read whose token is in the principal cache needs no database: answered on the event loop, no hop.
    token = _bearer(request) if request.method in SAFE_METHODS else None
    if token is not None:
        cached = request.app.state.principal_cache.get(token, now)
        if cached is not None:
            return cached.with_via(Via.api, request.scope.get("state", {}).get("request_id"))
    principal = await run_in_threadpool(_authenticate_request, request, session, now)
    assert principal is not None
    return principal


def _authenticate_request(request: Request, session: Session, now: datetime) -> Principal | None:
    if request.method in SAFE_METHODS:
        return authenticate(request, session, now)
    # A write authenticates in a read transaction of its own: the request's write transaction takes SQLite's
    # writer lock at its first statement, and holding it through authentication made every other writer of
    # the process wait for it (and a route that writes in its own short transaction wait for itself).
    with request.app.state.db.reader() as reader:
        return authenticate(request, reader, now)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_asking_principal(request: Request, now: NowDep) -> Principal:
    """The caller of a POST that only asks (the release gate): it changes no one's rights, so it authenticates
    like a read, from the principal cache when it can (no database, no thread hop), and opens no request
    session of its own. A revoked token may so ask for up to the cache's second longer, as a read may."""
    token = _bearer(request)
    if token is not None:
        cached = request.app.state.principal_cache.get(token, now)
        if cached is not None:
            return cached.with_via(Via.api, request.scope.get("state", {}).get("request_id"))
    principal = await run_in_threadpool(_authenticate_asking, request, now)
    assert principal is not None
    return principal


def _authenticate_asking(request: Request, now: datetime) -> Principal | None:
    with request.app.state.db.reader() as reader:
        return authenticate(request, reader, now, as_read=True)


AskingPrincipalDep = Annotated[Principal, Depends(get_asking_principal)]

_ETAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


async def get_if_match(
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
    def __init__(self, limit: int, cursor: str | None) -> None:
        self.limit = limit
        self.cursor = cursor


async def get_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500, description="From the previous page's nextCursor")] = None,
) -> PageParams:
    return PageParams(limit, cursor)


PageDep = Annotated[PageParams, Depends(get_page)]
