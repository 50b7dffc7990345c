"""The catalog through the HTTP API: CRUD, preconditions, pagination, filters, errors and the audit log."""

from __future__ import annotations

import json

import pytest

from tests.api.support import API, assert_problem, audit_entries, ok, walk_pages

# ------------------------------------------------------------------------------------------------ users


def test_user_crud(client, org) -> None:
    admin = org.headers("root:admin")
    body = {
        "username": "dora",
        "name": "Dora",
        "email": "Dora@Example.com",
        "timeZone": "Europe/Berlin",
        "contactMethods": [{"name": "mail", "kind": "email", "address": "dora@example.com"}],
    }
    created = client.post(f"{API}/users", json=body, headers=admin)
    user = ok(created, 201)
    assert created.headers["etag"] == '"1"'
    assert user["username"] == "dora" and user["email"] == "dora@example.com"
    assert user["timeZone"] == "Europe/Berlin" and user["version"] == 1
    assert user["contactMethods"] == [{"name": "mail", "kind": "email", "address": "dora@example.com"}]

    got = client.get(f"{API}/users/dora", headers=admin)
    assert ok(got) == user
    assert got.headers["etag"] == '"1"'

    patched = client.patch(f"{API}/users/dora", json={"name": "Dora D."}, headers={**admin, "If-Match": '"1"'})
    assert ok(patched)["name"] == "Dora D."
    assert patched.json()["version"] == 2 and patched.headers["etag"] == '"2"'

    listed = ok(client.get(f"{API}/users", headers=admin))
    assert "dora" in [item["username"] for item in listed["items"]]

    assert client.delete(f"{API}/users/dora", headers={**admin, "If-Match": '"2"'}).status_code == 204
    assert_problem(client.get(f"{API}/users/dora", headers=admin), 404)


def test_user_me(client, org) -> None:
    response = client.get(f"{API}/users/me", headers=org.headers("bob:write"))
    me = ok(response)
    assert me["username"] == "bob"
    assert me["teams"] == [{"team": "payments", "role": "member"}]
    assert response.headers["etag"] == f'"{me["version"]}"'


def test_duplicate_username_and_email_conflict(client, org) -> None:
    admin = org.headers("root:admin")
    base = {"name": "X", "email": "x@example.com"}
    assert_problem(client.post(f"{API}/users", json={**base, "username": "alice"}, headers=admin), 409)
    taken = {"username": "xavier", "name": "X", "email": "alice@example.com"}
    assert_problem(client.post(f"{API}/users", json=taken, headers=admin), 409, path="email")


def test_admin_cannot_delete_themself(client, org) -> None:
    assert_problem(client.delete(f"{API}/users/root", headers=org.headers("root:admin")), 409)


# ------------------------------------------------------------------------------------------------ teams


def test_team_crud(client, org) -> None:
    admin = org.headers("root:admin")
    body = {
        "slug": "infra",
        "name": "Infra",
        "members": [{"user": "carol", "role": "manager"}, {"user": "bob"}],
    }
    created = client.post(f"{API}/teams", json=body, headers=admin)
    team = ok(created, 201)
    assert created.headers["etag"] == '"1"'
    assert team["members"] == [
        {"user": "bob", "name": "Bob", "role": "member"},
        {"user": "carol", "name": "Carol", "role": "manager"},
    ]
    assert team["services"] == []

    got = client.get(f"{API}/teams/infra", headers=org.headers("bob:write"))
    assert ok(got) == team and got.headers["etag"] == '"1"'

    patched = ok(
        client.patch(
            f"{API}/teams/infra",
            json={"description": "Platform", "members": [{"user": "carol", "role": "manager"}]},
            headers=admin,
        )
    )
    assert patched["description"] == "Platform" and patched["version"] == 2
    assert [member["user"] for member in patched["members"]] == ["carol"]
    bob = ok(client.get(f"{API}/users/bob", headers=admin))
    assert bob["teams"] == [{"team": "payments", "role": "member"}]

    assert client.delete(f"{API}/teams/infra", headers=admin).status_code == 204
    assert_problem(client.get(f"{API}/teams/infra", headers=admin), 404)


def test_team_with_unknown_member_names_the_member(client, org) -> None:
    body = {"slug": "infra", "name": "Infra", "members": [{"user": "bob"}, {"user": "nobody"}]}
    problem = assert_problem(
        client.post(f"{API}/teams", json=body, headers=org.headers("root:admin")), 422, path="members.1.user"
    )
    assert "nobody" in json.dumps(problem)


def test_duplicate_team_slug_conflicts(client, org) -> None:
    body = {"slug": "payments", "name": "Again"}
    assert_problem(client.post(f"{API}/teams", json=body, headers=org.headers("root:admin")), 409, path="slug")


# --------------------------------------------------------------------------------------------- services


def test_service_crud(client, org) -> None:
    alice = org.headers("alice:write")
    body = {
        "slug": "ledger",
        "name": "Ledger",
        "owner": "payments",
        "tier": 1,
        "description": "Money in, money out",
        "links": [{"title": "Runbook", "url": "https://runbooks.example.com/ledger", "kind": "runbook"}],
        "dependsOn": ["checkout"],
    }
    created = client.post(f"{API}/services", json=body, headers=alice)
    service = ok(created, 201)
    assert created.headers["etag"] == '"1"'
    assert {key: service[key] for key in body if key != "slug"} == {k: v for k, v in body.items() if k != "slug"}
    assert service["dependents"] == [] and service["version"] == 1

    checkout = ok(client.get(f"{API}/services/checkout", headers=alice))
    assert checkout["dependents"] == ["ledger"]
    team = ok(client.get(f"{API}/teams/payments", headers=alice))
    assert team["services"] == ["checkout", "ledger"]

    got = client.get(f"{API}/services/ledger", headers=org.headers("carol:write"))
    assert ok(got) == service and got.headers["etag"] == '"1"'

    patched = client.patch(f"{API}/services/ledger", json={"tier": 2, "dependsOn": [], "links": []}, headers=alice)
    assert ok(patched)["tier"] == 2
    assert patched.json()["dependsOn"] == [] and patched.json()["links"] == []
    assert patched.json()["version"] == 2 and patched.headers["etag"] == '"2"'

    assert client.delete(f"{API}/services/ledger", headers={**alice, "If-Match": '"2"'}).status_code == 204
    assert_problem(client.get(f"{API}/services/ledger", headers=alice), 404)
    assert ok(client.get(f"{API}/services/checkout", headers=alice))["dependents"] == []


def test_service_defaults(client, org) -> None:
    body = {"slug": "tiny", "name": "Tiny", "owner": "search"}
    service = ok(client.post(f"{API}/services", json=body, headers=org.headers("carol:write")), 201)
    assert (service["tier"], service["description"], service["links"], service["dependsOn"]) == (
        3,
        "",
        [],
        [],
    )


def test_service_with_unknown_owner_or_dependency(client, org) -> None:
    admin = org.headers("root:admin")
    body = {"slug": "x", "name": "X", "owner": "nobody"}
    assert_problem(client.post(f"{API}/services", json=body, headers=admin), 422, path="owner")
    body = {"slug": "x", "name": "X", "owner": "search", "dependsOn": ["checkout", "ghost"]}
    assert_problem(client.post(f"{API}/services", json=body, headers=admin), 422, path="dependsOn.1")
    assert_problem(client.get(f"{API}/services/x", headers=admin), 404)


def test_duplicate_service_slug_conflicts(client, org) -> None:
    body = {"slug": "checkout", "name": "Again", "owner": "payments"}
    response = client.post(f"{API}/services", json=body, headers=org.headers("alice:write"))
    assert_problem(response, 409, path="slug")


def test_noop_patch_keeps_the_version_and_writes_no_audit(client, org) -> None:
    admin = org.headers("root:admin")
    before = len(audit_entries(client, admin))
    same = ok(client.patch(f"{API}/services/checkout", json={"tier": 2}, headers=admin))
    assert same["version"] == 1
    assert len(audit_entries(client, admin)) == before


# ------------------------------------------------------------------------------------ ETag / If-Match


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/users/bob", {"name": "Robert"}),
        ("/teams/payments", {"description": "Money"}),
        ("/services/checkout", {"tier": 1}),
    ],
)
def test_stale_if_match_and_stale_body_version(client, org, path: str, change: dict) -> None:
    admin = org.headers("root:admin")
    url = f"{API}{path}"
    read = client.get(url, headers=admin)
    etag = read.headers["etag"]
    assert etag == f'"{read.json()["version"]}"'
    version = read.json()["version"]

    stale = client.patch(url, json=change, headers={**admin, "If-Match": f'"{version + 5}"'})
    problem = assert_problem(stale, 412, path="version")
    assert problem["currentVersion"] == version

    stale_body = client.patch(url, json={**change, "version": version + 5}, headers=admin)
    assert_problem(stale_body, 409, path="version")
    assert ok(client.get(url, headers=admin))["version"] == version  # neither wrote anything

    fresh = client.patch(url, json=change, headers={**admin, "If-Match": etag})
    assert ok(fresh)["version"] == version + 1
    assert fresh.headers["etag"] == f'"{version + 1}"'
    for key, value in change.items():
        assert fresh.json()[key] == value

    # The ETag read before the change is stale now, in either form.
    assert_problem(client.patch(url, json=change, headers={**admin, "If-Match": etag}), 412)
    assert_problem(client.patch(url, json={**change, "version": version}, headers=admin), 409)
    again = client.patch(
        url, json={**change, "version": version + 1}, headers={**admin, "If-Match": f'W/"{version + 1}"'}
    )
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("/services/checkout", {"dependsOn": ["ranker"]}),
        ("/teams/payments", {"members": [{"user": "alice", "role": "manager"}]}),
        ("/users/bob", {"contactMethods": [{"name": "mail", "kind": "email", "address": "b@example.com"}]}),
    ],
)
def test_changing_only_related_rows_bumps_the_version(client, org, path: str, change: dict) -> None:
    """The simulated clock does not move here, so updated_at alone would not make the row change."""
    admin = org.headers("root:admin")
    etag = client.get(f"{API}{path}", headers=admin).headers["etag"]
    changed = client.patch(f"{API}{path}", json=change, headers={**admin, "If-Match": etag})
    assert ok(changed)["version"] == 2 and changed.headers["etag"] == '"2"'
    assert ok(client.get(f"{API}{path}", headers=admin))["version"] == 2
    assert_problem(client.patch(f"{API}{path}", json=change, headers={**admin, "If-Match": etag}), 412)


def test_stale_if_match_on_delete(client, org) -> None:
    admin = org.headers("root:admin")
    assert_problem(client.delete(f"{API}/services/ranker", headers={**admin, "If-Match": '"9"'}), 412)
    assert client.get(f"{API}/services/ranker", headers=admin).status_code == 200


@pytest.mark.parametrize("value", ["3", "*", '"abc"', '"1", "2"'])
def test_if_match_that_is_not_our_etag_is_a_bad_request(client, org, value: str) -> None:
    response = client.patch(
        f"{API}/services/checkout", json={"tier": 1}, headers={**org.headers("root:admin"), "If-Match": value}
    )
    assert_problem(response, 400, path="header.If-Match")


# --------------------------------------------------------------------------------------------- lists


@pytest.fixture
def many(client, org) -> dict[str, list[str]]:
    """Extra users, teams and services, so lists span several pages; names vary in case for ``q``."""
    admin = org.headers("root:admin")
    for index in range(5):
        user = {"username": f"user-{index}", "name": f"User {index}", "email": f"u{index}@example.com"}
        ok(client.post(f"{API}/users", json=user, headers=admin), 201)
        ok(
            client.post(f"{API}/teams", json={"slug": f"team-{index}", "name": f"T{index}"}, headers=admin),
            201,
        )
    for index in range(7):
        owner = "payments" if index % 2 else "search"
        body = {"slug": f"svc-{index}", "name": f"Svc {index}", "owner": owner, "tier": 1 + index % 4}
        ok(client.post(f"{API}/services", json=body, headers=admin), 201)
    return {
        "users": sorted(["root", "alice", "bob", "carol", *(f"user-{i}" for i in range(5))]),
        "teams": sorted(["payments", "search", *(f"team-{i}" for i in range(5))]),
        "services": sorted(["checkout", "ranker", *(f"svc-{i}" for i in range(7))]),
    }


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pagination_walks_every_item_once(client, org, many, limit: int) -> None:
    reader = org.headers("bob:write")
    for kind, key in (("users", "username"), ("teams", "slug"), ("services", "slug")):
        keys = [item[key] for item in walk_pages(client, f"{API}/{kind}", reader, limit)]
        assert keys == many[kind], kind


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pagination_with_filters(client, org, many, limit: int) -> None:
    reader = org.headers("bob:write")
    payments = walk_pages(client, f"{API}/services", reader, limit, owner="payments")
    assert [item["slug"] for item in payments] == ["checkout", "svc-1", "svc-3", "svc-5"]


def test_audit_pagination_walks_every_entry_once(client, org, many) -> None:
    admin = org.headers("root:admin")
    everything = ok(client.get(f"{API}/audit", params={"limit": 500}, headers=admin))["items"]
    ids = [entry["id"] for entry in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) > 20
    for limit in (1, 2, 3):
        assert [entry["id"] for entry in walk_pages(client, f"{API}/audit", admin, limit)] == ids


def test_filters(client, org, many) -> None:
    reader = org.headers("alice:read")

    def slugs(**params) -> list[str]:
        return [item["slug"] for item in ok(client.get(f"{API}/services", params=params, headers=reader))["items"]]

    assert slugs(owner="search") == ["ranker", "svc-0", "svc-2", "svc-4", "svc-6"]
    assert slugs(tier=1) == ["svc-0", "svc-4"]
    assert slugs(tier=2) == ["checkout", "ranker", "svc-1", "svc-5"]
    assert slugs(owner="payments", tier=2) == ["checkout", "svc-1", "svc-5"]
    assert slugs(q="CHECK") == ["checkout"]
    assert slugs(q="svc 3") == ["svc-3"]  # the name "Svc 3"
    assert slugs(q="svc", owner="payments", tier=4) == ["svc-3"]
    assert slugs(owner="nobody") == []
    # What the user typed is matched literally, not as LIKE wildcards.
    assert slugs(q="%") == []
    assert slugs(q="svc_1") == []

    users = ok(client.get(f"{API}/users", params={"q": "USER 3"}, headers=reader))["items"]
    assert [user["username"] for user in users] == ["user-3"]
    by_email = ok(client.get(f"{API}/users", params={"q": "u4@example"}, headers=reader))["items"]
    assert [user["username"] for user in by_email] == ["user-4"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"limit": "x"}, {"tier": 0}, {"tier": 5}, {"q": "x" * 101}],
)
def test_bad_list_parameters_are_invalid_input(client, org, params: dict) -> None:
    response = client.get(f"{API}/services", params=params, headers=org.headers("alice:read"))
    name = next(iter(params))
    assert_problem(response, 422, path=f"query.{name}")


@pytest.mark.parametrize("cursor", ["%%%", "!!", "bm90IGpzb24"])
@pytest.mark.parametrize("kind", ["services", "users", "teams", "audit", "timeline"])
def test_forged_cursor_is_a_bad_request(client, org, kind: str, cursor: str) -> None:
    response = client.get(f"{API}/{kind}", params={"cursor": cursor}, headers=org.headers("root:admin"))
    assert_problem(response, 400, path="query.cursor")


@pytest.mark.parametrize("kind", ["audit", "timeline"])
def test_a_cursor_of_another_list_is_a_bad_request(client, org, kind: str) -> None:
    admin = org.headers("root:admin")
    services_cursor = ok(client.get(f"{API}/services", params={"limit": 1}, headers=admin))["nextCursor"]
    assert_problem(client.get(f"{API}/{kind}", params={"cursor": services_cursor}, headers=admin), 400)


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/ghost"),
        ("PATCH", "/users/ghost"),
        ("DELETE", "/users/ghost"),
        ("PUT", "/users/ghost/password"),
        ("GET", "/teams/ghost"),
        ("PATCH", "/teams/ghost"),
        ("DELETE", "/teams/ghost"),
        ("GET", "/services/ghost"),
        ("PATCH", "/services/ghost"),
        ("DELETE", "/services/ghost"),
        ("DELETE", "/tokens/0123456789ab"),
    ],
)
def test_unknown_objects_are_404_problems(client, org, method: str, path: str) -> None:
    body = {"password": "long enough password"} if path.endswith("password") else {}
    kwargs = {"json": body} if method in {"PATCH", "PUT"} else {}
    response = client.request(method, f"{API}{path}", headers=org.headers("root:admin"), **kwargs)
    problem = assert_problem(response, 404)
    assert "ghost" in problem["detail"] or "0123456789ab" in problem["detail"]
    assert problem["instance"] == f"{API}{path}"


def test_unknown_route_is_a_404_problem(client, org) -> None:
    assert_problem(client.get(f"{API}/nothing-here", headers=org.headers("root:admin")), 404)


@pytest.mark.parametrize(
    ("method", "path", "body", "error_path"),
    [
        ("POST", "/services", {"slug": "a", "name": "A", "owner": "payments", "extra": 1}, "body.extra"),
        ("PATCH", "/services/checkout", {"tier": 1, "colour": "red"}, "body.colour"),
        (
            "PATCH",
            "/services/checkout",
            {"links": [{"title": "t", "url": "https://x.io", "x": 1}]},
            "body.links.0.x",
        ),
        ("POST", "/teams", {"slug": "t", "name": "T", "owner": "x"}, "body.owner"),
        ("PATCH", "/users/alice", {"username": "eve"}, "body.username"),
        ("POST", "/tokens", {"name": "t", "secret": "x"}, "body.secret"),
    ],
)
def test_unknown_fields_are_422_with_their_path(client, org, method, path, body, error_path) -> None:
    response = client.request(method, f"{API}{path}", json=body, headers=org.headers("root:admin"))
    problem = assert_problem(response, 422, path=error_path)
    assert next(e for e in problem["errors"] if e["path"] == error_path)["message"] == "unknown field"


@pytest.mark.parametrize(
    ("body", "error_path"),
    [
        ({"slug": "Bad Slug", "name": "A", "owner": "payments"}, "body.slug"),
        ({"slug": "a", "name": "", "owner": "payments"}, "body.name"),
        ({"slug": "a", "name": "A", "owner": "payments", "tier": 9}, "body.tier"),
        ({"slug": "a", "name": "A"}, "body.owner"),
        ({"slug": "a", "name": "A", "owner": "payments", "dependsOn": ["x", "x"]}, "body.dependsOn"),
        (
            {"slug": "a", "name": "A", "owner": "payments", "links": [{"title": "t", "url": "ftp://x"}]},
            "body.links.0.url",
        ),
    ],
)
def test_invalid_values_are_422_with_their_path(client, org, body, error_path) -> None:
    response = client.post(f"{API}/services", json=body, headers=org.headers("root:admin"))
    assert_problem(response, 422, path=error_path)


def test_invalid_user_fields(client, org) -> None:
    admin = org.headers("root:admin")
    user = {"username": "eve", "name": "Eve", "email": "not-an-email", "timeZone": "Mars/Olympus"}
    problem = assert_problem(client.post(f"{API}/users", json=user, headers=admin), 422, path="body.email")
    assert "body.timeZone" in [error["path"] for error in problem["errors"]]
    methods = {"contactMethods": [{"name": "chat", "kind": "slack", "address": "mailto:x@example.com"}]}
    assert_problem(client.patch(f"{API}/users/alice", json=methods, headers=admin), 422, path="body.contactMethods.0")


@pytest.mark.parametrize("content", [b'{"slug": ', b"{'slug': 'x'}", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400(client, org, content: bytes) -> None:
    headers = {**org.headers("root:admin"), "Content-Type": "application/json"}
    problem = assert_problem(client.post(f"{API}/services", content=content, headers=headers), 400)
    assert problem["type"] == "urn:relia:problem:malformed-json"


def test_oversized_body_is_413(client, org, settings) -> None:
    headers = {**org.headers("root:admin"), "Content-Type": "application/json"}
    body = json.dumps({"slug": "big", "name": "Big", "owner": "payments", "description": "x" * 5000})
    padded = body[:-1] + " " * settings.max_request_bytes + "}"
    assert_problem(client.post(f"{API}/services", content=padded.encode(), headers=headers), 413)
    assert_problem(client.get(f"{API}/services/big", headers=headers), 404)


def test_oversized_chunked_body_is_413(client, org, settings) -> None:
    """Without a Content-Length the limit trips while the body streams in; it must still be a 413."""
    headers = {**org.headers("root:admin"), "Content-Type": "application/json"}
    chunk = b" " * 65536

    def body():
        yield b'{"slug": "big", "name": "Big", "owner": "payments"'
        for _ in range(settings.max_request_bytes // len(chunk) + 1):
            yield chunk
        yield b"}"

    assert_problem(client.post(f"{API}/services", content=body(), headers=headers), 413)
    assert_problem(client.get(f"{API}/services/big", headers=headers), 404)


def test_chunked_body_within_the_limit_is_accepted(client, org) -> None:
    headers = {**org.headers("root:admin"), "Content-Type": "application/json"}

    def body():
        yield b'{"slug": "small", "name": "Small",'
        yield b' "owner": "payments"}'

    assert ok(client.post(f"{API}/services", content=body(), headers=headers), 201)["slug"] == "small"


# ---------------------------------------------------------------------------------- dependency rules


def test_dependency_cycle_is_422_naming_the_cycle(client, org) -> None:
    admin = org.headers("root:admin")
    ok(
        client.post(
            f"{API}/services",
            json={"slug": "a", "name": "A", "owner": "payments", "dependsOn": ["checkout"]},
            headers=admin,
        ),
        201,
    )
    ok(
        client.post(
            f"{API}/services",
            json={"slug": "b", "name": "B", "owner": "payments", "dependsOn": ["a"]},
            headers=admin,
        ),
        201,
    )
    response = client.patch(f"{API}/services/checkout", json={"dependsOn": ["b"]}, headers=admin)
    problem = assert_problem(response, 422, path="dependsOn")
    assert "checkout -> b -> a -> checkout" in problem["detail"]
    assert "checkout -> b -> a -> checkout" in problem["errors"][0]["message"]
    assert ok(client.get(f"{API}/services/checkout", headers=admin))["dependsOn"] == []


def test_self_dependency_is_422(client, org) -> None:
    response = client.patch(
        f"{API}/services/checkout", json={"dependsOn": ["checkout"]}, headers=org.headers("root:admin")
    )
    assert_problem(response, 422, path="dependsOn.0")


def test_long_dependency_chain_and_the_cycle_closing_it(client, org, db, clock) -> None:
    """A chain longer than Python's recursion limit must be checked, not crash the request."""
    from sqlalchemy import insert, select

    from relia.catalog.models import Service, Team, service_dependencies

    length = 1500
    now = clock.now()
    with db.transaction() as session:
        team_id = session.scalar(select(Team.id).where(Team.slug == "payments"))
        session.execute(
            insert(Service),
            [
                {
                    "slug": f"c-{i}",
                    "name": f"C{i}",
                    "owner_team_id": team_id,
                    "links": [],
                    "created_at": now,
                    "updated_at": now,
                    "description": "",
                    "tier": 3,
                    "version": 1,
                    "config_managed": False,
                }
                for i in range(length)
            ],
        )
        ids = dict(session.execute(select(Service.slug, Service.id)).all())
        session.execute(
            insert(service_dependencies),
            [{"service_id": ids[f"c-{i}"], "depends_on_id": ids[f"c-{i + 1}"]} for i in range(length - 1)],
        )
    admin = org.headers("root:admin")
    closing = client.patch(f"{API}/services/c-{length - 1}", json={"dependsOn": ["c-0"]}, headers=admin)
    problem = assert_problem(closing, 422, path="dependsOn")
    assert problem["detail"].startswith(f"These dependencies would make a cycle: c-{length - 1} -> c-0 -> c-1")
    extending = client.patch(f"{API}/services/c-{length - 1}", json={"dependsOn": ["checkout"]}, headers=admin)
    assert ok(extending)["dependsOn"] == ["checkout"]


def test_team_that_owns_services_cannot_be_deleted(client, org) -> None:
    admin = org.headers("root:admin")
    problem = assert_problem(client.delete(f"{API}/teams/payments", headers=admin), 409)
    assert "checkout" in problem["detail"]
    assert client.get(f"{API}/teams/payments", headers=admin).status_code == 200
    ok(client.patch(f"{API}/services/checkout", json={"owner": "search"}, headers=admin))
    assert client.delete(f"{API}/teams/payments", headers=admin).status_code == 204


def test_service_others_depend_on_cannot_be_deleted(client, org) -> None:
    admin = org.headers("root:admin")
    body = {"slug": "web", "name": "Web", "owner": "search", "dependsOn": ["checkout", "ranker"]}
    ok(client.post(f"{API}/services", json=body, headers=admin), 201)
    problem = assert_problem(client.delete(f"{API}/services/checkout", headers=admin), 409)
    assert "web" in problem["detail"]
    assert client.get(f"{API}/services/checkout", headers=admin).status_code == 200
    # The dependent itself can go, and then so can what it depended on.
    assert client.delete(f"{API}/services/web", headers=admin).status_code == 204
    assert client.delete(f"{API}/services/checkout", headers=admin).status_code == 204


# --------------------------------------------------------------------------------------------- audit


def test_every_write_is_audited_with_before_and_after(client, org) -> None:
    admin = org.headers("root:admin")
    alice = org.headers("alice:write")
    start = ok(client.get(f"{API}/audit", params={"limit": 1}, headers=admin))["items"][0]["id"]

    writes = [
        (
            "root",
            client.post(
                f"{API}/users",
                json={"username": "dora", "name": "Dora", "email": "d@example.com"},
                headers=admin,
            ),
        ),
        ("root", client.patch(f"{API}/users/dora", json={"name": "Dora D."}, headers=admin)),
        ("alice", client.patch(f"{API}/users/alice", json={"timeZone": "Europe/Paris"}, headers=alice)),
        (
            "alice",
            client.put(f"{API}/users/alice/password", json={"password": "a long password"}, headers=alice),
        ),
        ("root", client.post(f"{API}/teams", json={"slug": "infra", "name": "Infra"}, headers=admin)),
        ("root", client.patch(f"{API}/teams/infra", json={"members": [{"user": "dora"}]}, headers=admin)),
        (
            "alice",
            client.post(f"{API}/services", json={"slug": "ledger", "name": "L", "owner": "payments"}, headers=alice),
        ),
        ("alice", client.patch(f"{API}/services/ledger", json={"tier": 1}, headers=alice)),
        ("alice", client.delete(f"{API}/services/ledger", headers=alice)),
        ("root", client.delete(f"{API}/teams/infra", headers=admin)),
        ("root", client.delete(f"{API}/users/dora", headers=admin)),
        ("alice", client.post(f"{API}/tokens", json={"name": "ci", "scope": "read"}, headers=alice)),
    ]
    token_id = writes[-1][1].json()["id"]
    writes.append(("alice", client.delete(f"{API}/tokens/{token_id}", headers=alice)))
    for _, response in writes:
        assert response.status_code < 300, response.text

    entries = [entry for entry in audit_entries(client, admin) if entry["id"] > start]
    entries.reverse()
    expected = [
        ("root", "create", "User", "dora"),
        ("root", "update", "User", "dora"),
        ("alice", "update", "User", "alice"),
        ("alice", "set-password", "User", "alice"),
        ("root", "create", "Team", "infra"),
        ("root", "update", "Team", "infra"),
        ("alice", "create", "Service", "ledger"),
        ("alice", "update", "Service", "ledger"),
        ("alice", "delete", "Service", "ledger"),
        ("root", "delete", "Team", "infra"),
        ("root", "delete", "User", "dora"),
        ("alice", "create", "ApiToken", token_id),
        ("alice", "revoke", "ApiToken", token_id),
    ]
    assert [(e["actor"], e["action"], e["objectKind"], e["objectKey"]) for e in entries] == expected
    assert {entry["via"] for entry in entries} == {"api"}
    request_ids = [response.headers["x-request-id"] for _, response in writes]
    assert [entry["requestId"] for entry in entries] == request_ids

    by_key = {(e["action"], e["objectKind"], e["objectKey"]): e for e in entries}
    created = by_key[("create", "User", "dora")]
    assert created["before"] is None and created["after"]["name"] == "Dora"
    updated = by_key[("update", "User", "dora")]
    assert (updated["before"]["name"], updated["after"]["name"]) == ("Dora", "Dora D.")
    service_update = by_key[("update", "Service", "ledger")]
    assert (service_update["before"]["tier"], service_update["after"]["tier"]) == (3, 1)
    deleted = by_key[("delete", "Service", "ledger")]
    assert deleted["before"]["tier"] == 1 and deleted["after"] is None
    team_update = by_key[("update", "Team", "infra")]
    assert (team_update["before"]["members"], team_update["after"]["members"]) == (
        [],
        [{"user": "dora", "role": "member"}],
    )
    password = by_key[("set-password", "User", "alice")]
    assert "a long password" not in json.dumps(password)


def test_audit_filters(client, org) -> None:
    admin = org.headers("root:admin")
    ok(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=org.headers("bob:write")))
    ok(client.patch(f"{API}/services/ranker", json={"tier": 1}, headers=org.headers("carol:write")))
    by_bob = audit_entries(client, admin, by="bob")
    assert [(e["objectKey"], e["action"]) for e in by_bob] == [("checkout", "update")]
    of_ranker = audit_entries(client, admin, kind="Service", key="ranker")
    assert [(e["actor"], e["action"]) for e in of_ranker] == [
        ("carol", "update"),
        ("test-operator", "create"),
    ]


@pytest.mark.parametrize("token", ["root:read", "root:write", "alice:write", "bob:write"])
def test_audit_log_is_for_admins_only(client, org, token: str) -> None:
    assert_problem(client.get(f"{API}/audit", headers=org.headers(token)), 403)


def test_failed_writes_leave_no_audit_entry(client, org) -> None:
    admin = org.headers("root:admin")
    before = len(audit_entries(client, admin))
    assert_problem(client.patch(f"{API}/services/checkout", json={"tier": 1}, headers=org.headers("carol:write")), 403)
    assert_problem(client.patch(f"{API}/services/checkout", json={"dependsOn": ["checkout"]}, headers=admin), 422)
    assert_problem(client.delete(f"{API}/teams/payments", headers=admin), 409)
    assert len(audit_entries(client, admin)) == before


# --------------------------------------------------------------------------------------- odd input


def test_nul_characters_never_cause_a_server_error(client, org, db) -> None:
    """PostgreSQL cannot store NUL in text: names and texts with one are refused (422, on both databases);
    NUL in query parameters is a 400 on PostgreSQL; never a 500."""
    admin = org.headers("root:admin")
    responses = [
        client.get(f"{API}/services", params={"q": "a\x00b"}, headers=admin),
        client.get(f"{API}/users", params={"q": "\x00"}, headers=admin),
        client.get(f"{API}/tokens", params={"user": "x\x00"}, headers=admin),
        client.get(f"{API}/audit", params={"key": "\x00"}, headers=admin),
        client.get(f"{API}/services/a%00b", headers=admin),
        client.post(f"{API}/services", json={"slug": "nul", "name": "a\x00b", "owner": "payments"}, headers=admin),
        client.patch(f"{API}/teams/search", json={"description": "x\x00y"}, headers=admin),
    ]
    for response in responses:
        assert response.status_code < 500, response.text
        if db.is_postgres and response.status_code >= 400:
            assert_problem(response, response.status_code)
    assert_problem(responses[5], 422)
    assert_problem(responses[6], 422)
    assert_problem(client.get(f"{API}/services/nul", headers=admin), 404)
    assert ok(client.get(f"{API}/teams/search", headers=admin))["description"] == ""
    if db.is_postgres:
        assert_problem(responses[0], 400)


def test_service_list_is_revalidated_by_etag_and_never_stale(client, org):
    headers = org.headers("alice:write")
    first = client.get("/api/v1/services", headers=headers)
    tag = first.headers["etag"]
    unchanged = client.get("/api/v1/services", headers={**headers, "If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == tag
    assert client.patch("/api/v1/services/checkout", headers=headers, json={"tier": 1}).status_code == 200
    after = client.get("/api/v1/services", headers={**headers, "If-None-Match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag
    assert next(item for item in after.json()["items"] if item["slug"] == "checkout")["tier"] == 1
    # Another query of the same collection has its own tag.
    assert client.get("/api/v1/services?tier=1", headers=headers).headers["etag"] != after.headers["etag"]
