"""Pure rules: dependency cycles, what a principal may do, token format and verification."""

from __future__ import annotations

import pytest

from relia.catalog.rules import find_cycle
from relia.core import auth
from relia.core.auth import (
    TOKEN_PREFIX,
    Principal,
    Scope,
    TokenVerifier,
    Via,
    generate_token,
    hash_password,
    split_token,
    verify_password,
)
from relia.core.errors import Forbidden

# ------------------------------------------------------------------------------------------ find_cycle


def _rotations(cycle: list[str]) -> set[tuple[str, ...]]:
    return {tuple(cycle[i:] + cycle[:i]) for i in range(len(cycle))}


def _is_cycle(edges: dict, cycle: list) -> bool:
    return all(cycle[(i + 1) % len(cycle)] in edges.get(node, set()) for i, node in enumerate(cycle))


def test_no_cycle_in_a_dag() -> None:
    edges = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}
    assert find_cycle(edges) is None
    assert find_cycle(edges, start="a") is None


def test_empty_graph_and_unknown_start() -> None:
    assert find_cycle({}) is None
    assert find_cycle({}, start="a") is None
    assert find_cycle({"a": {"b"}}, start="z") is None


def test_self_loop_is_a_cycle_of_one() -> None:
    assert find_cycle({"a": {"a"}}) == ["a"]
    assert find_cycle({"a": {"a"}}, start="a") == ["a"]
    assert find_cycle({"x": {"a"}, "a": {"a"}}, start="x") == ["a"]


def test_two_node_cycle_in_order() -> None:
    edges = {"a": {"b"}, "b": {"a"}}
    assert find_cycle(edges, start="a") == ["a", "b"]
    assert find_cycle(edges, start="b") == ["b", "a"]


def test_cycle_found_is_a_real_cycle_in_edge_order() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}, "e": {"a"}}
    cycle = find_cycle(edges, start="e")
    assert cycle is not None
    assert ("b", "c", "d") in _rotations(cycle)
    assert _is_cycle(edges, cycle)


def test_start_limits_the_search_to_its_reachable_part() -> None:
    edges = {"a": {"b"}, "b": set(), "x": {"y"}, "y": {"x"}}
    assert find_cycle(edges, start="a") is None
    assert find_cycle(edges) is not None


def test_diamond_is_not_a_cycle() -> None:
    # d is reached twice (via b and c): a finished node must not be mistaken for one on the path.
    edges = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"e"}, "e": set()}
    assert find_cycle(edges, start="a") is None


def test_integer_nodes_as_the_service_ids_are() -> None:
    edges = {1: {2}, 2: {3}, 3: {1}}
    cycle = find_cycle(edges, start=1)
    assert cycle == [1, 2, 3]


@pytest.mark.parametrize("length", [2_000, 20_000])
def test_long_chain_without_cycle(length: int) -> None:
    edges = {node: {node + 1} for node in range(length)}
    assert find_cycle(edges, start=0) is None
    assert find_cycle(edges) is None


@pytest.mark.parametrize("length", [2_000, 20_000])
def test_long_chain_closed_into_a_cycle(length: int) -> None:
    edges = {node: {node + 1} for node in range(length)}
    edges[length] = {0}
    cycle = find_cycle(edges, start=0)
    assert cycle == list(range(length + 1))


def test_long_chain_ending_in_a_self_loop() -> None:
    edges = {node: {node + 1} for node in range(5_000)}
    edges[5_000] = {5_000}
    assert find_cycle(edges, start=0) == [5_000]


# ------------------------------------------------------------------------------------------- Principal


def _principal(
    *, admin: bool = False, scope: Scope = Scope.write, teams: set[int] = frozenset(), managed=frozenset()
) -> Principal:
    return Principal(
        name="someone",
        user_id=7,
        is_admin=admin,
        scope=scope,
        team_ids=frozenset(teams),
        managed_team_ids=frozenset(managed),
    )


def test_scopes_are_ordered() -> None:
    assert Scope.read < Scope.write < Scope.admin
    assert Scope.parse("read") is Scope.read
    assert Scope.parse("admin") is Scope.admin
    with pytest.raises(KeyError):
        Scope.parse("root")


@pytest.mark.parametrize(
    ("admin", "scope", "acts_as_admin"),
    [
        (True, Scope.admin, True),
        (True, Scope.write, False),
        (True, Scope.read, False),
        (False, Scope.admin, False),
        (False, Scope.write, False),
    ],
)
def test_admin_needs_both_an_admin_user_and_an_admin_scope(admin: bool, scope: Scope, acts_as_admin: bool):
    principal = _principal(admin=admin, scope=scope)
    assert principal.acts_as_admin is acts_as_admin
    if acts_as_admin:
        principal.require_admin()
    else:
        with pytest.raises(Forbidden):
            principal.require_admin()


def test_read_scope_cannot_write_anything() -> None:
    reader = _principal(admin=True, scope=Scope.read, teams={1}, managed={1})
    with pytest.raises(Forbidden):
        reader.require_write()
    assert reader.can_change_team(1) is False
    with pytest.raises(Forbidden):
        reader.require_team(1, "service x")
    with pytest.raises(Forbidden):
        reader.require_team_manager(1, "team x")
    _principal(scope=Scope.write).require_write()


def test_members_change_their_own_teams_only() -> None:
    member = _principal(teams={1})
    assert member.can_change_team(1)
    assert not member.can_change_team(2)
    assert not member.can_change_team(None)
    member.require_team(1, "service x")
    with pytest.raises(Forbidden, match="service y"):
        member.require_team(2, "service y")


def test_admins_change_every_team_but_only_with_an_admin_scope() -> None:
    admin = _principal(admin=True, scope=Scope.admin)
    assert admin.can_change_team(99)
    assert admin.can_change_team(None)
    admin.require_team(99, "x")
    admin.require_team_manager(99, "x")
    admin_with_write_token = _principal(admin=True, scope=Scope.write)
    assert not admin_with_write_token.can_change_team(99)


def test_only_managers_manage_a_team() -> None:
    manager = _principal(teams={1, 2}, managed={1})
    manager.require_team_manager(1, "team one")
    with pytest.raises(Forbidden):
        manager.require_team_manager(2, "team two")


def test_system_principal_and_with_via_keep_the_rights() -> None:
    system = Principal.system()
    assert system.acts_as_admin and system.user_id is None and system.via is Via.system
    member = _principal(teams={1}, managed={1})
    moved = member.with_via(Via.web, "req-1")
    assert moved.via is Via.web and moved.request_id == "req-1"
    assert (moved.name, moved.user_id, moved.scope, moved.team_ids, moved.managed_team_ids) == (
        member.name,
        member.user_id,
        member.scope,
        member.team_ids,
        member.managed_team_ids,
    )
    assert moved.with_via(Via.api).request_id == "req-1"


# -------------------------------------------------------------------------------------------- tokens


def test_generated_token_format_and_split() -> None:
    new = generate_token()
    prefix, public_id, secret = new.plaintext.split("_", 2)
    assert prefix == TOKEN_PREFIX
    assert public_id == new.public_id and len(public_id) == 12
    assert int(public_id, 16) >= 0
    assert len(secret) >= 40
    assert split_token(new.plaintext) == (new.public_id, secret)
    assert secret not in new.secret_hash and new.secret_hash.startswith("$argon2id$")


def test_generated_tokens_differ() -> None:
    assert len({generate_token().plaintext for _ in range(20)}) == 20


@pytest.mark.parametrize(
    "token",
    [
        "",
        "relia",
        "relia_0123456789ab",
        "relia_0123456789ab_",
        "relia_0123456789a_secret",
        "relia_0123456789abc_secret",
        "other_0123456789ab_secret",
        "RELIA_0123456789ab_secret",
        "0123456789ab_secret",
    ],
)
def test_split_refuses_tokens_not_shaped_like_ours(token: str) -> None:
    assert split_token(token) is None


def test_split_keeps_underscores_in_the_secret() -> None:
    assert split_token("relia_0123456789ab_se_cr_et") == ("0123456789ab", "se_cr_et")


def test_passwords_hash_and_verify() -> None:
    hashed = hash_password("correct horse battery")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "wrong horse battery")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


class _CountingHasher:
    """Wraps the token hasher to count real argon2 verifications."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real = real
        self.calls = 0

    def verify(self, secret_hash: str, secret: str) -> bool:
        self.calls += 1
        return self.real.verify(secret_hash, secret)

    def hash(self, secret: str) -> str:
        return self.real.hash(secret)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> _CountingHasher:
    hasher = _CountingHasher(auth._token_hasher)
    monkeypatch.setattr(auth, "_token_hasher", hasher)
    return hasher


def _secret(new: auth.NewToken) -> str:
    parts = split_token(new.plaintext)
    assert parts is not None
    return parts[1]


def test_verifier_accepts_the_right_secret_and_refuses_others(counting: _CountingHasher) -> None:
    verifier = TokenVerifier(b"k" * 32)
    new = generate_token()
    assert verifier.verify(new.secret_hash, _secret(new))
    assert not verifier.verify(new.secret_hash, _secret(new) + "x")
    assert not verifier.verify(new.secret_hash, "")
    assert not verifier.verify("garbage", _secret(new))
    other = generate_token()
    assert not verifier.verify(new.secret_hash, _secret(other))


def test_verifier_remembers_successes_but_never_failures(counting: _CountingHasher) -> None:
    verifier = TokenVerifier(b"k" * 32)
    new = generate_token()
    assert verifier.verify(new.secret_hash, _secret(new))
    assert verifier.verify(new.secret_hash, _secret(new))
    assert counting.calls == 1
    for _ in range(2):
        assert not verifier.verify(new.secret_hash, "wrong")
    assert counting.calls == 3


def test_verifier_cache_is_keyed_by_the_hash_too(counting: _CountingHasher) -> None:
    verifier = TokenVerifier(b"k" * 32)
    first = generate_token()
    secret = _secret(first)
    assert verifier.verify(first.secret_hash, secret)
    # The stored hash changed (token re-issued, row replaced): the old success must not carry over.
    replaced = generate_token()
    assert not verifier.verify(replaced.secret_hash, secret)
    assert counting.calls == 2
    # The same secret hashed again (new salt) is verified afresh, and then accepted.
    rehashed = auth._token_hasher.hash(secret)
    assert verifier.verify(rehashed, secret)
    assert counting.calls == 3


def test_verifier_memory_expires(counting: _CountingHasher, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    verifier = TokenVerifier(b"k" * 32, ttl_seconds=60)
    new = generate_token()
    assert verifier.verify(new.secret_hash, _secret(new))
    now[0] += 59
    assert verifier.verify(new.secret_hash, _secret(new))
    assert counting.calls == 1
    now[0] += 2
    assert verifier.verify(new.secret_hash, _secret(new))
    assert counting.calls == 2


def test_verifier_memory_is_bounded(counting: _CountingHasher) -> None:
    verifier = TokenVerifier(b"k" * 32, capacity=2)
    tokens = [generate_token() for _ in range(3)]
    for new in tokens:
        assert verifier.verify(new.secret_hash, _secret(new))
    assert len(verifier._recent) == 2
    assert verifier.verify(tokens[0].secret_hash, _secret(tokens[0]))  # evicted: verified again
    assert counting.calls == 4


def test_verifier_memory_holds_no_clear_secret() -> None:
    verifier = TokenVerifier(b"k" * 32)
    new = generate_token()
    assert verifier.verify(new.secret_hash, _secret(new))
    remembered = repr(verifier._recent)
    assert _secret(new) not in remembered
    assert _secret(new).encode() not in b"".join(verifier._recent)


def test_verifiers_with_different_keys_share_nothing(counting: _CountingHasher) -> None:
    new = generate_token()
    one, two = TokenVerifier(b"a" * 32), TokenVerifier(b"b" * 32)
    assert one.verify(new.secret_hash, _secret(new))
    assert two.verify(new.secret_hash, _secret(new))
    assert counting.calls == 2
    assert set(one._recent).isdisjoint(two._recent)
