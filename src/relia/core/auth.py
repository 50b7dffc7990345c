"""Who is asking, and what they may do. Hashing of passwords and API tokens (argon2id).

Authorization rules live here so every surface (API, web, CLI, config apply) applies the same ones:
scopes order read < write < admin; a member of team X may change X's objects; admins may change all.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from relia.core.errors import Forbidden


class Scope(enum.IntEnum):
    read = 1
    write = 2
    admin = 3

    @classmethod
    def parse(cls, value: str) -> Scope:
        return cls[value]


class Via(enum.StrEnum):
    api = "api"
    web = "web"
    cli = "cli"
    config = "config"
    worker = "worker"
    system = "system"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``scope`` is already capped by what the user may do."""

    name: str
    user_id: int | None
    is_admin: bool
    scope: Scope
    team_ids: frozenset[int] = field(default_factory=frozenset)
    managed_team_ids: frozenset[int] = field(default_factory=frozenset)
    via: Via = Via.api
    token_id: int | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, name: str = "system", via: Via = Via.system) -> Principal:
        """The operator with direct database access (local CLI, worker, migrations)."""
        return cls(name=name, user_id=None, is_admin=True, scope=Scope.admin, via=via)

    def with_via(self, via: Via, request_id: str | None = None) -> Principal:
        return Principal(
            name=self.name,
            user_id=self.user_id,
            is_admin=self.is_admin,
            scope=self.scope,
            team_ids=self.team_ids,
            managed_team_ids=self.managed_team_ids,
            via=via,
            token_id=self.token_id,
            request_id=request_id if request_id is not None else self.request_id,
        )

    @property
    def acts_as_admin(self) -> bool:
        return self.is_admin and self.scope >= Scope.admin

    def require_write(self) -> None:
        if self.scope < Scope.write:
            raise Forbidden("This credential is read-only; a write or admin scope is needed.")

    def require_admin(self) -> None:
        if not self.acts_as_admin:
            raise Forbidden("Only an administrator (with an admin-scoped credential) may do this.")

    def can_change_team(self, team_id: int | None) -> bool:
        if self.scope < Scope.write:
            return False
        return self.acts_as_admin or (team_id is not None and team_id in self.team_ids)

    def require_team_manager(self, team_id: int, what: str) -> None:
        self.require_write()
        if not (self.acts_as_admin or team_id in self.managed_team_ids):
            raise Forbidden(f"Only the team's managers (or an administrator) may change {what}.")

    def require_team(self, team_id: int | None, what: str) -> None:
        self.require_write()
        if not self.can_change_team(team_id):
            raise Forbidden(f"Only members of the owning team (or an administrator) may change {what}.")


# Passwords are low-entropy: the library's default argon2id cost (about 50 ms here).
_password_hasher = PasswordHasher()
# Token secrets carry 256 random bits, so a cheaper argon2id cost loses nothing against guessing and keeps
# per-request verification fast; verified tokens are also remembered briefly (keyed by an HMAC, never clear).
_token_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)

TOKEN_PREFIX = "relia"


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check so a missing account is not observable by timing.
        with contextlib.suppress(VerificationError):
            _password_hasher.verify(_dummy_password_hash(), password)
        return False
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_password_hash() -> str:
    # Made on first need, not at import: hashing costs a quarter of a second, and most processes never sign in.
    return _password_hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class NewToken:
    public_id: str
    secret_hash: str
    plaintext: str


def generate_token() -> NewToken:
    public_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(
        public_id=public_id,
        secret_hash=_token_hasher.hash(secret),
        plaintext=f"{TOKEN_PREFIX}_{public_id}_{secret}",
    )


def split_token(token: str) -> tuple[str, str] | None:
    """``relia_<public id>_<secret>`` -> (public id, secret), or None when it is not shaped like ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


class TokenVerifier:
    """argon2id verification with a short, bounded memory of recent successes."""

    def __init__(self, key: bytes, ttl_seconds: float = 60.0, capacity: int = 4096) -> None:
        self._key = key
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._recent: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, secret_hash: str, secret: str) -> bool:
        digest = hmac.new(self._key, secret.encode() + b"\0" + secret_hash.encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            seen = self._recent.get(digest)
            if seen is not None and seen[0] == secret_hash and seen[1] > now:
                self._recent.move_to_end(digest)
                return True
        try:
            ok = _token_hasher.verify(secret_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if ok:
            with self._lock:
                self._recent[digest] = (secret_hash, now + self._ttl)
                while len(self._recent) > self._capacity:
                    self._recent.popitem(last=False)
        return ok


def new_session_token() -> tuple[str, str]:
    """(cookie value, what is stored)."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
