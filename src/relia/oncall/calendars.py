"""Calendar subscriptions: a URL whose secret is the credential, for the owner's own shifts on every schedule
(scope ``personal``) or for one schedule. Only the SHA-256 of the secret is stored; asking again replaces it."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from relia.core import audit
from relia.core.auth import Principal, sha256_hex
from relia.core.errors import Conflict, NotFound
from relia.oncall.models import CalendarFeed, Schedule
from relia.oncall.service import get_schedule

FEED_TOKEN_PREFIX = "rcal_"
PERSONAL_FEED = "personal"


def _feed_scope(session: Session, schedule: str | None) -> tuple[str, Schedule | None]:
    if schedule is None:
        return PERSONAL_FEED, None
    row = get_schedule(session, schedule)
    return f"schedule:{row.id}", row


def _feed_owner(actor: Principal) -> int:
    actor.require_write()
    if actor.user_id is None:
        raise Conflict("A calendar URL belongs to a user; the local operator is none. Use a user's token.")
    return actor.user_id


def create_feed(session: Session, *, actor: Principal, schedule: str | None, now: datetime) -> tuple[CalendarFeed, str]:
    """A new calendar URL secret for the actor (their shifts, or one schedule); the one it replaces stops
    working. Returns the feed and the secret, which is not stored and cannot be read again."""
    owner_id = _feed_owner(actor)
    scope, row = _feed_scope(session, schedule)
    replaced = session.execute(
        delete(CalendarFeed).where(CalendarFeed.owner_id == owner_id, CalendarFeed.scope == scope)
    ).rowcount
    token = FEED_TOKEN_PREFIX + secrets.token_urlsafe(32)
    feed = CalendarFeed(
        owner_id=owner_id,
        schedule=row,
        scope=scope,
        token_hash=sha256_hex(token),
        created_at=now,
    )
    session.add(feed)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rotate-calendar-url" if replaced else "create-calendar-url",
        kind="CalendarFeed",
        key=f"{actor.name}/{schedule or PERSONAL_FEED}",
        before=None,
        after={"schedule": schedule},
        now=now,
    )
    return feed, token


def list_feeds(session: Session, *, actor: Principal) -> list[CalendarFeed]:
    if actor.user_id is None:
        return []
    return list(
        session.scalars(
            select(CalendarFeed)
            .where(CalendarFeed.owner_id == actor.user_id)
            .options(joinedload(CalendarFeed.schedule))
            .order_by(CalendarFeed.scope)
        ).unique()
    )


def revoke_feed(session: Session, *, actor: Principal, schedule: str | None, now: datetime) -> None:
    owner_id = _feed_owner(actor)
    scope, _ = _feed_scope(session, schedule)
    removed = session.execute(
        delete(CalendarFeed).where(CalendarFeed.owner_id == owner_id, CalendarFeed.scope == scope)
    ).rowcount
    if not removed:
        raise NotFound("You have no calendar URL for that.")
    audit.record(
        session,
        actor=actor,
        action="revoke-calendar-url",
        kind="CalendarFeed",
        key=f"{actor.name}/{schedule or PERSONAL_FEED}",
        before={"schedule": schedule},
        after=None,
        now=now,
    )


def feed_for_token(session: Session, token: str) -> CalendarFeed | None:
    """The feed a URL secret opens, or None. Looked up by the secret's SHA-256: the secret is 256 random bits,
    so a fast hash loses nothing against guessing."""
    if not token.startswith(FEED_TOKEN_PREFIX) or len(token) > 100:
        return None
    return session.scalars(
        select(CalendarFeed)
        .where(CalendarFeed.token_hash == sha256_hex(token))
        .options(joinedload(CalendarFeed.owner), joinedload(CalendarFeed.schedule))
    ).one_or_none()
