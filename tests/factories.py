"""Builders for test data, through the same service functions the API uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from relia.catalog import identity, service
from relia.catalog.schemas import ServiceCreate, TeamCreate, TokenCreate, UserCreate
from relia.core.auth import Principal
from relia.core.clock import SimulatedClock
from relia.core.db import Database

OPERATOR = Principal.system("test-operator")


@dataclass
class Org:
    """Tokens by name, e.g. ``org.tokens['alice:write']``; ``org.headers('alice:write')`` for requests."""

    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}


def make_user(
    db: Database, clock: SimulatedClock, username: str, *, admin: bool = False, time_zone: str = "UTC"
) -> None:
    with db.transaction() as session:
        service.create_user(
            session,
            actor=OPERATOR,
            data=UserCreate.model_validate(
                {
                    "username": username,
                    "name": username.title(),
                    "email": f"{username}@example.com",
                    "timeZone": time_zone,
                    "admin": admin,
                }
            ),
            now=clock.now(),
        )


def make_token(db: Database, clock: SimulatedClock, username: str, scope: str) -> str:
    with db.transaction() as session:
        _, _, plaintext = identity.create_token(
            session,
            actor=OPERATOR,
            data=TokenCreate(name=f"{username}-{scope}", scope=scope, user=username),
            now=clock.now(),
        )
    return plaintext


def make_team(db: Database, clock: SimulatedClock, slug: str, members: list[tuple[str, str]]) -> None:
    with db.transaction() as session:
        service.create_team(
            session,
            actor=OPERATOR,
            data=TeamCreate.model_validate(
                {"slug": slug, "name": slug.title(), "members": [{"user": u, "role": r} for u, r in members]}
            ),
            now=clock.now(),
        )


def make_service(
    db: Database,
    clock: SimulatedClock,
    slug: str,
    owner: str,
    depends_on: list[str] | None = None,
    tier: int = 2,
) -> None:
    with db.transaction() as session:
        service.create_service(
            session,
            actor=OPERATOR,
            data=ServiceCreate.model_validate(
                {
                    "slug": slug,
                    "name": slug.title(),
                    "owner": owner,
                    "tier": tier,
                    "dependsOn": depends_on or [],
                }
            ),
            now=clock.now(),
        )


def build_org(db: Database, clock: SimulatedClock) -> Org:
    org = Org()
    make_user(db, clock, "root", admin=True)
    for username in ("alice", "bob", "carol"):
        make_user(db, clock, username)
    make_team(db, clock, "payments", [("alice", "manager"), ("bob", "member")])
    make_team(db, clock, "search", [("carol", "manager")])
    make_service(db, clock, "checkout", "payments")
    make_service(db, clock, "ranker", "search")
    for username, scopes in {
        "root": ("read", "write", "admin"),
        "alice": ("read", "write"),
        "bob": ("write",),
        "carol": ("write",),
    }.items():
        for scope in scopes:
            org.tokens[f"{username}:{scope}"] = make_token(db, clock, username, scope)
    return org
