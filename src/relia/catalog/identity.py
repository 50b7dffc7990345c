"""Sign-in: API tokens and browser sessions, and turning either into a Principal."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, joinedload

from relia.catalog.models import ApiToken, TeamMembership, User, WebSession
from relia.catalog.schemas import TokenCreate, TokenOut
from relia.core import audit
from relia.core.auth import (
    Principal,
    Scope,
    TokenVerifier,
    Via,
    generate_token,
    new_session_token,
    sha256_hex,
    split_token,
    verify_password,
)
from relia.core.errors import FieldError, Forbidden, InvalidInput, NotFound

LAST_USED_RESOLUTION = timedelta(minutes=1)

# Built once: constructing a statement costs more than running it on these small, indexed lookups.
_TOKEN_LOOKUP = (
    select(
        ApiToken.id,
        ApiToken.secret_hash,
        ApiToken.scope,
        ApiToken.revoked_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        User.id,
        User.username,
        User.is_admin,
        User.is_active,
    )
    .join(User, ApiToken.user_id == User.id)
    .where(ApiToken.public_id == bindparam("public_id"))
)
_MEMBERSHIPS = select(TeamMembership.team_id, TeamMembership.role).where(TeamMembership.user_id == bindparam("user_id"))


def _principal(session: Session, user: User, scope: Scope, via: Via, token_id: int | None = None) -> Principal:
    return _principal_of(session, user.id, user.username, user.is_admin, scope, via, token_id)


def _principal_of(
    session: Session, user_id: int, username: str, is_admin: bool, scope: Scope, via: Via, token_id: int | None
) -> Principal:
    memberships = session.connection().execute(_MEMBERSHIPS, {"user_id": user_id}).all()
    # A credential never grants more than its user has: admin scope needs an admin.
    effective = scope if (is_admin or scope < Scope.admin) else Scope.write
    return Principal(
        name=username,
        user_id=user_id,
        is_admin=is_admin,
        scope=effective,
        team_ids=frozenset(team_id for team_id, _ in memberships),
        managed_team_ids=frozenset(team_id for team_id, role in memberships if role == "manager"),
        via=via,
        token_id=token_id,
    )


def principal_for_user(session: Session, username: str, *, scope: Scope = Scope.admin, via: Via = Via.cli) -> Principal:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFound(f"There is no user {username!r}.")
    return _principal(session, user, scope, via)


def authenticate_token(
    session: Session, token: str, *, verifier: TokenVerifier, now: datetime
) -> tuple[Principal, bool] | None:
    """The principal for a bearer token, and whether its last-used time is due an update; None if invalid."""
    parts = split_token(token)
    if parts is None:
        return None
    public_id, secret = parts
    # Plain columns on the connection: every API request comes through here, and ORM entities cost more
    # than the query itself.
    row = session.connection().execute(_TOKEN_LOOKUP, {"public_id": public_id}).one_or_none()
    if row is None:
        return None
    token_id, secret_hash, scope, revoked_at, expires_at, last_used_at, user_id, username, is_admin, active = row
    if revoked_at is not None or not active:
        return None
    if expires_at is not None and expires_at <= now:
        return None
    if not verifier.verify(secret_hash, secret):
        return None
    stale = last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
    principal = _principal_of(session, user_id, username, is_admin, Scope.parse(scope), Via.api, token_id)
    return principal, stale


def touch_token(session: Session, token_id: int, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def token_out(api_token: ApiToken, username: str) -> TokenOut:
    return TokenOut(
        id=api_token.public_id,
        name=api_token.name,
        user=username,
        scope=api_token.scope,
        created_at=api_token.created_at,
        expires_at=api_token.expires_at,
        last_used_at=api_token.last_used_at,
        revoked_at=api_token.revoked_at,
    )


def create_token(session: Session, *, actor: Principal, data: TokenCreate, now: datetime) -> tuple[ApiToken, str, str]:
    """Returns (row, owner's username, the plaintext token, which is never stored)."""
    actor.require_write()
    username = data.user or actor.name
    if actor.user_id is None and data.user is None:
        raise InvalidInput("Say which user the token is for.", errors=[FieldError("user", "required here")])
    owner = session.scalars(select(User).where(User.username == username)).one_or_none()
    if owner is None:
        raise InvalidInput(f"There is no user {username!r}.", errors=[FieldError("user", "no such user")])
    if owner.id != actor.user_id:
        actor.require_admin()
    if data.scope == "admin" and not owner.is_admin:
        raise Forbidden("Only an administrator can hold an admin-scoped token.")
    if Scope.parse(data.scope) > actor.scope:
        raise Forbidden(f"A {actor.scope.name}-scoped credential cannot create a {data.scope}-scoped token.")
    new = generate_token()
    api_token = ApiToken(
        public_id=new.public_id,
        user_id=owner.id,
        name=data.name,
        scope=data.scope,
        secret_hash=new.secret_hash,
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days) if data.expires_in_days else None,
    )
    session.add(api_token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        kind="ApiToken",
        key=new.public_id,
        before=None,
        after={"name": data.name, "user": username, "scope": data.scope},
        now=now,
    )
    return api_token, username, new.plaintext


def list_tokens(session: Session, *, actor: Principal, username: str | None = None) -> list[tuple[ApiToken, str]]:
    statement = select(ApiToken, User.username).join(User, ApiToken.user_id == User.id).order_by(ApiToken.created_at)
    if username is not None:
        statement = statement.where(User.username == username)
    if not actor.acts_as_admin:
        if username is not None and username != actor.name:
            raise Forbidden("Only administrators may see other users' tokens.")
        statement = statement.where(ApiToken.user_id == actor.user_id)
    return [(api_token, name) for api_token, name in session.execute(statement).all()]


def revoke_token(session: Session, *, actor: Principal, public_id: str, now: datetime) -> tuple[ApiToken, str]:
    row = session.execute(
        select(ApiToken, User.username).join(User, ApiToken.user_id == User.id).where(ApiToken.public_id == public_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no token {public_id!r}.")
    api_token, username = row
    if api_token.user_id != actor.user_id:
        actor.require_admin()
    # Revoking is allowed even with a read-only token: giving up access never needs more rights.
    if api_token.revoked_at is None:
        api_token.revoked_at = now
        audit.record(
            session,
            actor=actor,
            action="revoke",
            kind="ApiToken",
            key=public_id,
            before=None,
            after={"revokedAt": now.isoformat()},
            now=now,
        )
    return api_token, username


# ----------------------------------------------------------------------------------------- web sessions


def login(
    session: Session, *, login_name: str, password: str, now: datetime, max_age: timedelta
) -> tuple[str, User] | None:
    """Check the password; on success store a new session and return (cookie value, user)."""
    login_name = login_name.strip().lower()
    user = session.scalars(select(User).where((User.username == login_name) | (User.email == login_name))).one_or_none()
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
        return None
    cookie, stored = new_session_token()
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    session.add(
        WebSession(
            token_hash=stored,
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + max_age,
        )
    )
    audit.record(
        session,
        actor=Principal(name=user.username, user_id=user.id, is_admin=user.is_admin, scope=Scope.read, via=Via.web),
        action="login",
        kind="User",
        key=user.username,
        before=None,
        after=None,
        now=now,
    )
    return cookie, user


def authenticate_session(session: Session, cookie: str, *, now: datetime) -> tuple[Principal, str] | None:
    """(principal, CSRF token) for a live session cookie."""
    row = session.execute(
        select(WebSession, User)
        .join(User, WebSession.user_id == User.id)
        .where(WebSession.token_hash == sha256_hex(cookie))
    ).one_or_none()
    if row is None:
        return None
    web_session, user = row
    if web_session.expires_at <= now or not user.is_active:
        return None
    scope = Scope.admin if user.is_admin else Scope.write
    return _principal(session, user, scope, Via.web), web_session.csrf_token


def logout(session: Session, cookie: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == sha256_hex(cookie)))


def user_with_memberships(session: Session, user_id: int) -> User | None:
    return (
        session.scalars(
            select(User).where(User.id == user_id).options(joinedload(User.memberships).joinedload(TeamMembership.team))
        )
        .unique()
        .one_or_none()
    )
