"""Who may call what: authentication, scopes, team ownership, token lifecycle, browser sessions."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from relia.catalog.models import ApiToken
from relia.core.db import Base
from tests.api.support import API, assert_problem, audit_entries, ok

# ------------------------------------------------------------------------------------ authentication


def _api_operations(client, *, needing_credentials: bool = True) -> list[tuple[str, str]]:
    """The schema's operations that need (or, with ``needing_credentials=False``, do not need) a token or
    session: those with ``security: []`` carry their own secret (an integration key, a calendar token)."""
    schema = client.get("/openapi.json").json()
    assert schema["security"] == [{"bearer": []}, {"session": []}]
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if (operation.get("security") != []) is needing_credentials:
                concrete = re.sub(r"\{[^}]+\}", "abc", path)
                operations.append((method.upper(), concrete))
    return operations


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"Authorization": "Bearer relia_0123456789ab_not-a-real-secret"},
        {"Authorization": "Bearer not-even-shaped-like-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic cm9vdDpyb290"},
        {"Cookie": "relia_session=forged"},
    ],
    ids=["none", "unknown-token", "garbage-token", "empty-bearer", "basic", "forged-cookie"],
)
def test_every_api_route_and_metrics_need_credentials(client, org, credentials: dict) -> None:
    operations = [(m, p) for m, p in _api_operations(client) if p.startswith(f"{API}/")]
    assert len(operations) >= 20
    operations.append(("GET", "/metrics"))
    for method, path in operations:
        response = client.request(method, path, headers=credentials)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", (method, path)


def test_only_probes_and_secret_url_routes_go_without_credentials(client) -> None:
    public = _api_operations(client, needing_credentials=False)
    assert ("GET", "/healthz") in public and ("GET", "/readyz") in public
    for method, path in public:
        assert path in {"/healthz", "/readyz", "/v2/enqueue"} or path.startswith(
            (f"{API}/integrations/abc/", f"{API}/oncall/calendars/")
        ), (method, path)


def test_a_wrong_secret_in_the_url_reveals_nothing(client, org) -> None:
    for method, path in _api_operations(client, needing_credentials=False):
        if path.startswith(API):
            response = client.request(method, path, json={})
            assert response.status_code == 404, (method, path, response.text)


def test_operations_endpoints_answer_without_credentials(client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in {200, 503}
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Relia"


def test_a_valid_token_is_accepted(client, org) -> None:
    for key in org.tokens:
        me = ok(client.get(f"{API}/users/me", headers=org.headers(key)))
        assert me["username"] == key.split(":")[0]


def test_a_token_with_a_wrong_secret_is_refused(client, org) -> None:
    token = org.tokens["alice:read"]
    assert client.get(f"{API}/services", headers=org.headers("alice:read")).status_code == 200
    # The verifier remembers the success; a different secret for the same public id must still fail.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_problem(client.get(f"{API}/services", headers={"Authorization": f"Bearer {forged}"}), 401)


# -------------------------------------------------------------------------------------------- scopes


READ_ONLY_WRITES = [
    ("POST", "/services", {"slug": "x", "name": "X", "owner": "payments"}),
    ("PATCH", "/services/checkout", {"tier": 1}),
    ("DELETE", "/services/checkout", None),
    ("PATCH", "/users/alice", {"name": "A"}),
    ("PUT", "/users/alice/password", {"password": "a long password"}),
    ("PATCH", "/teams/payments", {"description": "x"}),
    ("POST", "/tokens", {"name": "t", "scope": "read"}),
]


@pytest.mark.parametrize(("method", "path", "body"), READ_ONLY_WRITES)
def test_read_scope_cannot_write(client, org, method: str, path: str, body) -> None:
    response = client.request(method, f"{API}{path}", json=body, headers=org.headers("alice:read"))
    assert_problem(response, 403)
    assert ok(client.get(f"{API}/services/checkout", headers=org.headers("alice:read")))["version"] == 1


def test_read_scope_cannot_apply_config(client, org) -> None:
    document = "apiVersion: relia.dev/v1\nkind: Team\nmetadata:\n  name: payments\nspec:\n  name: Pay\n"
    body = {"files": [{"name": "t.yaml", "content": document}]}
    assert_problem(client.post(f"{API}/config/apply", json=body, headers=org.headers("alice:read")), 403)
    assert ok(client.get(f"{API}/teams/payments", headers=org.headers("alice:read")))["name"] == "Payments"


def test_read_scope_may_revoke_its_own_token(client, org) -> None:
    tokens = ok(client.get(f"{API}/tokens", headers=org.headers("alice:read")))
    read_token = next(token for token in tokens if token["scope"] == "read")
    revoked = ok(client.delete(f"{API}/tokens/{read_token['id']}", headers=org.headers("alice:read")))
    assert revoked["revokedAt"] is not None
    assert_problem(client.get(f"{API}/services", headers=org.headers("alice:read")), 401)


ADMIN_THINGS = [
    ("POST", "/users", {"username": "eve", "name": "Eve", "email": "eve@example.com"}, 201),
    ("PATCH", "/users/bob", {"name": "Robert"}, 200),
    ("DELETE", "/users/bob", None, 204),
    ("PUT", "/users/bob/password", {"password": "a long password"}, 204),
    ("POST", "/teams", {"slug": "infra", "name": "Infra"}, 201),
    ("DELETE", "/teams/search", None, 409),  # allowed, but search still owns ranker
    ("PATCH", "/teams/search", {"description": "x"}, 200),
    ("PATCH", "/services/ranker", {"tier": 1}, 200),
    ("GET", "/audit", None, 200),
    ("GET", "/tokens?user=alice", None, 200),
    ("POST", "/tokens", {"name": "for-bob", "user": "bob"}, 201),
]


@pytest.mark.parametrize(("method", "path", "body", "as_admin"), ADMIN_THINGS)
def test_write_scope_cannot_do_admin_things(client, org, method: str, path: str, body, as_admin: int) -> None:
    """root is an administrator, but a write-scoped token does not let them act as one."""
    response = client.request(method, f"{API}{path}", json=body, headers=org.headers("root:write"))
    assert_problem(response, 403)
    admin = client.request(method, f"{API}{path}", json=body, headers=org.headers("root:admin"))
    assert admin.status_code == as_admin, admin.text


def test_admin_scope_works_only_while_the_user_is_an_admin(client, org) -> None:
    admin = org.headers("root:admin")
    user = {"username": "dora", "name": "Dora", "email": "dora@example.com", "admin": True}
    ok(client.post(f"{API}/users", json=user, headers=admin), 201)
    created = ok(client.post(f"{API}/tokens", json={"name": "d", "scope": "admin", "user": "dora"}, headers=admin), 201)
    dora = {"Authorization": f"Bearer {created['token']}"}
    ok(client.post(f"{API}/teams", json={"slug": "infra", "name": "Infra"}, headers=dora), 201)
    ok(client.get(f"{API}/audit", headers=dora))

    ok(client.patch(f"{API}/users/dora", json={"admin": False}, headers=admin))
    assert_problem(client.post(f"{API}/teams", json={"slug": "infra2", "name": "I"}, headers=dora), 403)
    assert_problem(client.get(f"{API}/audit", headers=dora), 403)
    assert_problem(client.patch(f"{API}/users/dora", json={"admin": True}, headers=dora), 403)
    # What is left is an ordinary user's write access to their own profile.
    assert ok(client.patch(f"{API}/users/dora", json={"name": "Dora D."}, headers=dora))["admin"] is False


def test_non_admins_cannot_hold_admin_tokens(client, org) -> None:
    body = {"name": "mine", "scope": "admin"}
    assert_problem(client.post(f"{API}/tokens", json=body, headers=org.headers("alice:write")), 403)
    for_alice = {"name": "given", "scope": "admin", "user": "alice"}
    assert_problem(client.post(f"{API}/tokens", json=for_alice, headers=org.headers("root:admin")), 403)
    scopes = [token["scope"] for token in ok(client.get(f"{API}/tokens", headers=org.headers("alice:write")))]
    assert "admin" not in scopes


def test_a_token_cannot_create_a_stronger_one(client, org) -> None:
    admin_body = {"name": "up", "scope": "admin"}
    assert_problem(client.post(f"{API}/tokens", json=admin_body, headers=org.headers("root:write")), 403)
    assert_problem(client.post(f"{API}/tokens", json={"name": "up"}, headers=org.headers("alice:read")), 403)
    same = ok(
        client.post(f"{API}/tokens", json={"name": "w", "scope": "write"}, headers=org.headers("alice:write")),
        201,
    )
    assert same["user"] == "alice" and same["scope"] == "write" and same["token"].startswith("relia_")


def test_tokens_are_listed_for_their_owner_only(client, org) -> None:
    mine = ok(client.get(f"{API}/tokens", headers=org.headers("alice:write")))
    assert {token["user"] for token in mine} == {"alice"} and len(mine) == 2
    assert all("token" not in token for token in mine)
    assert_problem(client.get(f"{API}/tokens", params={"user": "bob"}, headers=org.headers("alice:write")), 403)
    bobs = ok(client.get(f"{API}/tokens", params={"user": "bob"}, headers=org.headers("root:admin")))
    assert [token["user"] for token in bobs] == ["bob"]
    assert_problem(client.delete(f"{API}/tokens/{bobs[0]['id']}", headers=org.headers("alice:write")), 403)
    assert client.get(f"{API}/services", headers=org.headers("bob:write")).status_code == 200


# ------------------------------------------------------------------------------------------ ownership


def test_members_change_their_teams_services_only(client, org) -> None:
    bob = org.headers("bob:write")
    assert ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=bob))["tier"] == 1
    assert_problem(client.patch(f"{API}/services/ranker", json={"tier": 1}, headers=bob), 403)
    assert_problem(client.delete(f"{API}/services/ranker", headers=bob), 403)
    assert_problem(client.post(f"{API}/services", json={"slug": "s", "name": "S", "owner": "search"}, headers=bob), 403)
    ok(client.post(f"{API}/services", json={"slug": "p", "name": "P", "owner": "payments"}, headers=bob), 201)
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 3}, headers=org.headers("carol:write")), 403)
    assert ok(client.get(f"{API}/services/ranker", headers=bob))["tier"] == 2


def test_moving_a_service_needs_membership_of_both_teams(client, org) -> None:
    alice, carol = org.headers("alice:write"), org.headers("carol:write")
    move = {"owner": "search"}
    assert_problem(client.patch(f"{API}/services/checkout", json=move, headers=alice), 403)
    assert_problem(client.patch(f"{API}/services/checkout", json=move, headers=carol), 403)
    assert_problem(client.patch(f"{API}/services/ranker", json={"owner": "payments"}, headers=alice), 403)
    assert ok(client.get(f"{API}/services/checkout", headers=alice))["owner"] == "payments"

    members = {"members": [{"user": "carol", "role": "manager"}, {"user": "alice"}]}
    ok(client.patch(f"{API}/teams/search", json=members, headers=carol))
    moved = ok(client.patch(f"{API}/services/checkout", json=move, headers=alice))
    assert moved["owner"] == "search"
    assert ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=carol))["tier"] == 1
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 3}, headers=org.headers("bob:write")), 403)


def test_managers_change_their_teams_members_and_plain_members_cannot(client, org) -> None:
    alice, bob, carol = (org.headers(key) for key in ("alice:write", "bob:write", "carol:write"))
    members = {"members": [{"user": "alice", "role": "manager"}, {"user": "bob"}, {"user": "carol"}]}
    team = ok(client.patch(f"{API}/teams/payments", json=members, headers=alice))
    assert [member["user"] for member in team["members"]] == ["alice", "bob", "carol"]
    # carol is a member now, so she may change payments' services, but not the team itself.
    ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=carol))
    assert_problem(client.patch(f"{API}/teams/payments", json={"description": "x"}, headers=carol), 403)
    promote = {"members": [{"user": "alice", "role": "manager"}, {"user": "bob", "role": "manager"}]}
    assert_problem(client.patch(f"{API}/teams/payments", json=promote, headers=bob), 403)
    assert_problem(client.patch(f"{API}/teams/search", json={"description": "x"}, headers=alice), 403)
    assert ok(client.patch(f"{API}/teams/search", json={"description": "Search"}, headers=carol))["version"] == 2
    assert_problem(client.delete(f"{API}/teams/search", headers=carol), 403)
    assert_problem(client.post(f"{API}/teams", json={"slug": "mine", "name": "Mine"}, headers=alice), 403)


def test_users_change_their_own_profile_but_not_their_rights(client, org) -> None:
    bob = org.headers("bob:write")
    changed = ok(client.patch(f"{API}/users/bob", json={"name": "Robert", "timeZone": "Asia/Tokyo"}, headers=bob))
    assert (changed["name"], changed["timeZone"]) == ("Robert", "Asia/Tokyo")
    assert ok(client.patch(f"{API}/users/bob", json={"admin": False, "active": True}, headers=bob))["admin"] is False
    assert_problem(client.patch(f"{API}/users/bob", json={"admin": True}, headers=bob), 403)
    assert_problem(client.patch(f"{API}/users/bob", json={"active": False}, headers=bob), 403)
    assert_problem(client.patch(f"{API}/users/alice", json={"name": "Mallory"}, headers=bob), 403)
    assert_problem(client.put(f"{API}/users/alice/password", json={"password": "a long password"}, headers=bob), 403)
    assert client.put(f"{API}/users/bob/password", json={"password": "a long password"}, headers=bob).status_code == 204
    me = ok(client.get(f"{API}/users/me", headers=bob))
    assert me["admin"] is False and me["active"] is True
    assert ok(client.patch(f"{API}/users/bob", json={"admin": True}, headers=org.headers("root:admin")))["admin"]


def test_contact_addresses_are_hidden_from_other_users(client, org) -> None:
    alice = org.headers("alice:write")
    methods = {
        "contactMethods": [
            {"name": "mail", "kind": "email", "address": "alice.private@example.com"},
            {"name": "chat", "kind": "slack", "address": "https://hooks.slack.com/services/T0/B0/secret"},
        ]
    }
    own = ok(client.patch(f"{API}/users/alice", json=methods, headers=alice))
    assert [method["address"] for method in own["contactMethods"]] == [
        "alice.private@example.com",
        "https://hooks.slack.com/services/T0/B0/secret",
    ]
    admin_view = ok(client.get(f"{API}/users/alice", headers=org.headers("root:admin")))
    assert admin_view["contactMethods"] == own["contactMethods"]

    for viewer in ("bob:write", "carol:write"):
        headers = org.headers(viewer)
        single = ok(client.get(f"{API}/users/alice", headers=headers))
        assert [(m["name"], m["kind"], m["address"]) for m in single["contactMethods"]] == [
            ("mail", "email", None),
            ("chat", "slack", None),
        ]
        listed = ok(client.get(f"{API}/users", headers=headers))["items"]
        assert next(user for user in listed if user["username"] == "alice") == single
        exported = client.get(f"{API}/config/export", headers=headers)
        assert exported.status_code in {200, 403}
        for response in (single, listed, exported.text):
            text = json.dumps(response) if not isinstance(response, str) else response
            assert "alice.private" not in text and "B0/secret" not in text


# ------------------------------------------------------------------------------------ token lifecycle


def test_revoked_tokens_are_refused(client, org) -> None:
    alice = org.headers("alice:write")
    created = ok(client.post(f"{API}/tokens", json={"name": "ci", "scope": "write"}, headers=alice), 201)
    ci = {"Authorization": f"Bearer {created['token']}"}
    ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=ci))
    revoked = ok(client.delete(f"{API}/tokens/{created['id']}", headers=alice))
    assert revoked["revokedAt"] is not None
    # Straight after a success (which the verifier remembers), the revocation must still win.
    assert_problem(client.get(f"{API}/services", headers=ci), 401)
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 2}, headers=ci), 401)
    again = ok(client.delete(f"{API}/tokens/{created['id']}", headers=alice))
    assert again["revokedAt"] == revoked["revokedAt"]
    assert client.get(f"{API}/services", headers=alice).status_code == 200


def test_expired_tokens_are_refused(client, org, clock) -> None:
    alice = org.headers("alice:write")
    body = {"name": "short", "scope": "read", "expiresInDays": 1}
    created = ok(client.post(f"{API}/tokens", json=body, headers=alice), 201)
    short = {"Authorization": f"Bearer {created['token']}"}
    assert client.get(f"{API}/services", headers=short).status_code == 200
    clock.advance(timedelta(days=1) - timedelta(seconds=1))
    assert client.get(f"{API}/services", headers=short).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert_problem(client.get(f"{API}/services", headers=short), 401)
    assert client.get(f"{API}/services", headers=alice).status_code == 200


def test_deactivated_users_tokens_are_refused(client, org) -> None:
    ok(client.patch(f"{API}/users/alice", json={"active": False}, headers=org.headers("root:admin")))
    assert_problem(client.get(f"{API}/services", headers=org.headers("alice:read")), 401)
    ok(client.patch(f"{API}/users/alice", json={"active": True}, headers=org.headers("root:admin")))
    assert client.get(f"{API}/services", headers=org.headers("alice:read")).status_code == 200


def _last_used(db, public_id: str):  # type: ignore[no-untyped-def]
    with db.reader() as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.public_id == public_id))


def test_last_used_is_recorded_at_most_once_a_minute(client, org, db, clock) -> None:
    public_id = org.tokens["alice:read"].split("_")[1]
    assert _last_used(db, public_id) is None
    first = clock.now()
    client.get(f"{API}/services", headers=org.headers("alice:read"))
    assert _last_used(db, public_id) == first
    clock.advance(59)
    client.get(f"{API}/services", headers=org.headers("alice:read"))
    assert _last_used(db, public_id) == first
    clock.advance(1)
    client.get(f"{API}/services", headers=org.headers("alice:read"))
    assert _last_used(db, public_id) == clock.now()
    listed = ok(client.get(f"{API}/tokens", headers=org.headers("alice:read")))
    assert next(t for t in listed if t["id"] == public_id)["lastUsedAt"] == "2026-03-02T09:01:00Z"


def test_last_used_is_recorded_on_writes_too(client, org, db, clock) -> None:
    """A write request holds SQLite's write lock; recording the use must neither wait for it nor be lost."""
    public_id = org.tokens["bob:write"].split("_")[1]
    response = client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=org.headers("bob:write"))
    assert ok(response)["tier"] == 1
    assert _last_used(db, public_id) == clock.now()
    clock.advance(120)
    assert_problem(client.patch(f"{API}/services/ranker", json={"tier": 1}, headers=org.headers("bob:write")), 403)
    assert _last_used(db, public_id) == clock.now()


def test_tokens_are_never_stored_or_logged_in_clear(client, org, db, captured_logs) -> None:
    alice = org.headers("alice:write")
    created = ok(client.post(f"{API}/tokens", json={"name": "ci", "scope": "write"}, headers=alice), 201)
    plaintext = created["token"]
    _, public_id, secret = plaintext.split("_", 2)
    ci = {"Authorization": f"Bearer {plaintext}"}
    ok(client.get(f"{API}/services", headers=ci))
    ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=ci))
    wrong = {"Authorization": f"Bearer relia_{public_id}_{secret[::-1]}"}
    assert_problem(client.get(f"{API}/services", headers=wrong), 401)
    ok(client.delete(f"{API}/tokens/{public_id}", headers=alice))
    assert_problem(client.get(f"{API}/services", headers=ci), 401)

    secrets_to_hide = [secret, secret[::-1], *(token.split("_", 2)[2] for token in org.tokens.values())]
    found_public_id = False
    with db.reader() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                text = json.dumps([str(value) for value in row])
                found_public_id = found_public_id or public_id in text
                for hidden in secrets_to_hide:
                    assert hidden not in text, f"a token secret is stored in clear in {table.name}"
    assert found_public_id  # the scan did read the tokens table

    logged = captured_logs.text()
    assert "http.request" in logged  # the capture did see the request logs
    for hidden in secrets_to_hide:
        assert hidden not in logged


# ------------------------------------------------------------------------------------ browser sessions


PASSWORD = "a long password"


def _give_alice_a_password(client, org) -> None:
    response = client.put(
        f"{API}/users/alice/password", json={"password": PASSWORD}, headers=org.headers("alice:write")
    )
    assert response.status_code == 204, response.text


def _log_in(client, username: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token (from a rendered page)."""
    form = client.get("/login")
    assert form.status_code == 200
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    assert client.cookies.get("relia_login_csrf") == login_csrf
    response = client.post(
        "/login",
        data={"username": username, "password": password, "login_csrf": login_csrf, "next": "/services"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert client.cookies.get("relia_session")
    page = client.get("/services")
    assert page.status_code == 200
    return re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


def test_login_needs_the_login_csrf_pair_and_the_right_password(client, org) -> None:
    _give_alice_a_password(client, org)
    client.get("/login")
    forged = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "login_csrf": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 400 and not client.cookies.get("relia_session")
    form = client.get("/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    wrong = client.post(
        "/login",
        data={"username": "alice", "password": "wrong password", "login_csrf": login_csrf},
        follow_redirects=False,
    )
    assert wrong.status_code == 401 and not client.cookies.get("relia_session")


def test_browser_session_writes_to_the_api_need_the_csrf_header(client, org) -> None:
    _give_alice_a_password(client, org)
    csrf = _log_in(client, "alice", PASSWORD)

    me = ok(client.get(f"{API}/users/me"))
    assert me["username"] == "alice"
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 1}), 403)
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers={"X-CSRF-Token": "forged"}), 403)
    assert_problem(client.post(f"{API}/tokens", json={"name": "sneaky"}), 403)
    assert ok(client.get(f"{API}/services/checkout"))["tier"] == 2

    changed = ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers={"X-CSRF-Token": csrf}))
    assert changed["tier"] == 1
    entry = audit_entries(client, org.headers("root:admin"), kind="Service", key="checkout")[0]
    assert (entry["actor"], entry["via"], entry["action"]) == ("alice", "web", "update")
    # The session's rights are the user's: alice cannot change search's services from the browser either.
    assert_problem(client.patch(f"{API}/services/ranker", json={"tier": 1}, headers={"X-CSRF-Token": csrf}), 403)


def test_a_logged_out_session_is_refused(client, org) -> None:
    _give_alice_a_password(client, org)
    csrf = _log_in(client, "alice", PASSWORD)
    cookie = client.cookies.get("relia_session")
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set("relia_session", cookie)  # a copy kept by whoever stole it
    assert_problem(client.get(f"{API}/users/me"), 401)
