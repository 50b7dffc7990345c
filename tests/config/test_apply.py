"""Config as code through the API: plan, apply (all or nothing, idempotent), prune, export, and the same
rights as every other surface. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from relia.config.documents import dump, export_file_name
from tests.config.support import (
    EXAMPLE_COUNTS,
    apply_ok,
    audit_count,
    changed,
    document,
    documents,
    example_files,
    post,
    snapshot,
)
from tests.factories import make_token, make_user


@pytest.fixture
def admin(db, clock) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Headers of an administrator in an otherwise empty database."""
    make_user(db, clock, "root", admin=True)
    return {"Authorization": f"Bearer {make_token(db, clock, 'root', 'admin')}"}


@pytest.fixture
def seeded(client, admin) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The demo organisation from examples/, applied by the administrator whose headers this returns."""
    apply_ok(client, admin, example_files())
    return admin


def service(client, slug: str, headers: dict[str, str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/v1/services/{slug}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def exported_files(client, headers: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/config/export", headers=headers)
    assert response.status_code == 200, response.text
    return {export_file_name(kind): dump(docs) for kind, docs in response.json()["documents"].items() if docs}


def problems(response) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    return [
        (error.get("file"), error.get("document"), error.get("path"), error.get("line"))
        for error in response.json()["errors"]
    ]


# ----------------------------------------------------------------------------------- apply, idempotency


def test_applying_the_examples_creates_the_demo_organisation_and_a_second_apply_changes_nothing(client, db, admin):
    first = apply_ok(client, admin, example_files())
    assert first["counts"] == {
        "create": sum(EXAMPLE_COUNTS.values()),
        "update": 0,
        "delete": 0,
        "unchanged": 0,
    }
    checkout = service(client, "checkout", admin)
    assert (checkout["owner"], checkout["tier"]) == ("payments", 1)
    assert checkout["dependsOn"] == ["catalog", "identity", "orders-db", "payments-api"]
    before = snapshot(db)

    second = apply_ok(client, admin, example_files())

    assert changed(second) == []
    assert second["counts"] == {
        "create": 0,
        "update": 0,
        "delete": 0,
        "unchanged": sum(EXAMPLE_COUNTS.values()),
    }
    assert snapshot(db) == before  # no audit entry, no version bump


def test_export_then_apply_of_the_export_changes_nothing(client, db, seeded):
    # Objects made through the API belong in the export as well as those from files.
    created = client.post(
        "/api/v1/teams",
        json={
            "slug": "data",
            "name": "Data",
            "members": [{"user": "ada"}, {"user": "kiri", "role": "manager"}],
        },
        headers=seeded,
    )
    assert created.status_code == 201, created.text
    created = client.post(
        "/api/v1/services",
        json={
            "slug": "warehouse",
            "name": "Warehouse",
            "owner": "data",
            "links": [{"title": "Docs", "url": "https://docs.example/warehouse", "kind": "docs"}],
            "dependsOn": ["orders-db", "catalog"],
        },
        headers=seeded,
    )
    assert created.status_code == 201, created.text
    files = exported_files(client, seeded)
    assert sorted(files) == sorted(export_file_name(kind) for kind in EXAMPLE_COUNTS)
    # Defaults are left out, so the export reads like hand-written files.
    assert "role: member" not in files["teams.yaml"]
    assert "tier: 3\n" not in files["services.yaml"]
    before = snapshot(db)

    plan = post(client, "plan", seeded, files)
    assert plan.status_code == 200, plan.text
    assert changed(plan.json()) == []
    assert plan.json()["counts"]["unchanged"] == sum(EXAMPLE_COUNTS.values()) + 3  # root, data, warehouse

    result = apply_ok(client, seeded, files)
    assert changed(result) == []
    after = snapshot(db)
    assert after["export"] == before["export"]
    assert after["counts"]["audit_log"] == before["counts"]["audit_log"]


def test_plan_changes_nothing(client, db, seeded):
    before = snapshot(db)
    files = {"new.yaml": document("Service", "ledger", "  name: Ledger\n  owner: payments\n")}
    plan = post(client, "plan", seeded, files)
    assert plan.status_code == 200, plan.text
    assert plan.json()["applied"] is False
    assert changed(plan.json()) == [("create", "Service", "ledger")]
    assert snapshot(db) == before


# ------------------------------------------------------------------------------------------------ diff


def test_diff_shows_create_update_delete_and_unchanged_with_the_changed_fields(client, admin):
    team = document("Team", "infra", "  name: Infra\n")
    base = documents(
        team,
        document("Service", "alpha", "  name: Alpha\n  owner: infra\n  tier: 2\n"),
        document("Service", "beta", "  name: Beta\n  owner: infra\n"),
        document("Service", "gamma", "  name: Gamma\n  owner: infra\n"),
    )
    apply_ok(client, admin, {"infra.yaml": base})
    new = documents(
        team,
        document("Service", "alpha", "  name: Alpha\n  owner: infra\n  tier: 1\n  description: Now tier 1.\n"),
        document("Service", "beta", "  name: Beta\n  owner: infra\n"),
        document("Service", "delta", "  name: Delta\n  owner: infra\n  dependsOn: [alpha]\n"),
    )

    response = post(client, "plan", admin, {"infra.yaml": new}, prune=True)

    assert response.status_code == 200, response.text
    plan = response.json()
    by_name = {change["name"]: change for change in plan["changes"]}
    assert plan["counts"] == {"create": 1, "update": 1, "delete": 1, "unchanged": 2}
    assert {name: change["action"] for name, change in by_name.items()} == {
        "infra": "unchanged",
        "alpha": "update",
        "beta": "unchanged",
        "gamma": "delete",
        "delta": "create",
    }
    alpha = by_name["alpha"]
    assert alpha["fields"] == ["description", "tier"]
    assert (alpha["before"]["tier"], alpha["after"]["tier"]) == (2, 1)
    assert alpha["source"] == "infra.yaml#2"
    assert by_name["delta"]["fields"] == ["dependsOn", "description", "links", "name", "owner", "tier"]
    assert by_name["delta"]["before"] is None
    assert by_name["delta"]["after"]["dependsOn"] == ["alpha"]
    assert by_name["gamma"]["after"] is None
    assert by_name["gamma"]["before"]["name"] == "Gamma"
    # Without --prune, nothing is deleted.
    without_prune = post(client, "plan", admin, {"infra.yaml": new}).json()
    assert without_prune["counts"] == {"create": 1, "update": 1, "delete": 0, "unchanged": 2}


def test_changed_fields_name_nested_paths_and_whole_lists(client, admin):
    user = (
        "  name: Zoe\n  email: zoe@example.com\n  contactMethods:\n"
        "    - {name: mail, kind: email, address: zoe@example.com}\n"
    )
    apply_ok(client, admin, {"zoe.yaml": document("User", "zoe", user)})
    edited = user.replace("name: Zoe", "name: Zoe Adams").replace("zoe@example.com}", "zoe@work.example}")

    plan = post(client, "plan", admin, {"zoe.yaml": document("User", "zoe", edited)}).json()

    (change,) = plan["changes"]
    assert (change["action"], change["fields"]) == ("update", ["contactMethods", "name"])


# ------------------------------------------------------------------------------------------------ prune


def test_prune_deletes_only_config_managed_objects(client, db, org):
    admin = org.headers("root:admin")
    # org made payments, search, checkout and ranker and its users through the API.
    team = document("Team", "infra", "  name: Infra\n  members: [{user: alice}]\n")
    keep = document("Service", "keep", "  name: Keep\n  owner: infra\n  dependsOn: [checkout]\n")
    drop = document("Service", "drop", "  name: Drop\n  owner: infra\n  dependsOn: [keep]\n")
    apply_ok(client, admin, {"infra.yaml": documents(team, keep, drop)})

    result = apply_ok(client, admin, {"infra.yaml": documents(team, keep)}, prune=True)

    assert changed(result) == [("delete", "Service", "drop")]
    listed = client.get("/api/v1/services", headers=admin).json()["items"]
    assert [item["slug"] for item in listed] == ["checkout", "keep", "ranker"]
    # Pruning everything config-managed still leaves what the API made.
    only_a_user = document("User", "root", "  name: Root\n  email: root@example.com\n  admin: true\n")
    result = apply_ok(client, admin, {"root.yaml": only_a_user}, prune=True)
    assert changed(result) == [("delete", "Team", "infra"), ("delete", "Service", "keep")]
    export = snapshot(db)["export"]
    assert [doc["metadata"]["name"] for doc in export["Service"]] == ["checkout", "ranker"]
    assert [doc["metadata"]["name"] for doc in export["Team"]] == ["payments", "search"]
    assert [doc["metadata"]["name"] for doc in export["User"]] == ["alice", "bob", "carol", "root"]


def test_prune_refuses_to_delete_a_team_that_a_file_still_refers_to(client, db, admin):
    team = document("Team", "infra", "  name: Infra\n")
    owned = document("Service", "keep", "  name: Keep\n  owner: infra\n")
    apply_ok(client, admin, {"infra.yaml": documents(team, owned)})
    before = snapshot(db)

    response = post(client, "apply", admin, {"infra.yaml": owned}, prune=True)

    assert response.status_code == 422, response.text
    assert problems(response) == [("infra.yaml", 1, "spec.owner", 7)]
    assert "refers to Team 'infra', which does not exist (it would be pruned)" in response.json()["detail"]
    assert snapshot(db) == before


def test_prune_refuses_to_delete_a_team_that_owns_a_service_made_through_the_api(client, db, admin):
    apply_ok(client, admin, {"infra.yaml": document("Team", "infra", "  name: Infra\n")})
    created = client.post("/api/v1/services", json={"slug": "x", "name": "X", "owner": "infra"}, headers=admin)
    assert created.status_code == 201, created.text
    before = snapshot(db)

    response = post(client, "apply", admin, {"other.yaml": document("Team", "other", "  name: Other\n")}, prune=True)

    assert response.status_code == 409, response.text
    assert "Team 'infra' still owns services (x)" in response.json()["detail"]
    assert snapshot(db) == before


# ------------------------------------------------------------------------------------------ dependencies


def dependency_graph(client, headers: dict[str, str]) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    items = client.get("/api/v1/services", headers=headers).json()["items"]
    return {item["slug"]: item["dependsOn"] for item in items}


def services_file(edges: dict[str, list[str]]) -> dict[str, str]:
    parts = [document("Team", "infra", "  name: Infra\n")]
    for slug, depends_on in edges.items():
        parts.append(
            document(
                "Service",
                slug,
                f"  name: {slug.title()}\n  owner: infra\n  dependsOn: [{', '.join(depends_on)}]\n",
            )
        )
    return {"graph.yaml": documents(*parts)}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"a": ["b"], "b": []}, {"a": [], "b": ["a"]}),
        ({"a": ["b"], "b": ["c"], "c": []}, {"a": [], "b": ["a"], "c": ["b"]}),
        ({"a": ["b", "c"], "b": ["c"], "c": []}, {"a": [], "b": ["a"], "c": ["a", "b"]}),
    ],
    ids=["flip", "reverse-chain", "reverse-diamond"],
)
def test_edges_that_would_make_a_cycle_only_halfway_through_apply_in_one_go(client, admin, first, second):
    apply_ok(client, admin, services_file(first))
    assert dependency_graph(client, admin) == first

    result = apply_ok(client, admin, services_file(second))

    assert {name for action, _, name in changed(result)} == set(second)
    assert dependency_graph(client, admin) == second


def test_a_new_service_may_depend_on_one_defined_later_in_the_files(client, admin):
    apply_ok(client, admin, services_file({"a": ["b"], "b": ["c"], "c": []}))
    assert dependency_graph(client, admin) == {"a": ["b"], "b": ["c"], "c": []}


# ------------------------------------------------------------------------------------------ error paths

# Document 1 of bad.yaml is a valid change (lines 1-8), so a refusal must undo it too. Document 2 starts on
# line 10: apiVersion 10, kind 11, metadata 12, name 13, spec 14, the first spec field 15.
VALID_CHANGE = document(
    "Team",
    "payments",
    "  name: Payments\n  description: Changed.\n  members: [{user: bruno, role: manager}]\n",
)


def bad(*rest: str) -> str:
    return documents(VALID_CHANGE, *rest)


ERROR_CASES: dict[str, tuple[dict[str, str], int, list[tuple[Any, ...]], str]] = {
    "unknown-kind": (
        {"bad.yaml": bad("apiVersion: relia.dev/v1\nkind: Widget\nmetadata: {name: x}\nspec: {}\n")},
        422,
        [("bad.yaml", 2, "kind", 11)],
        "unknown kind 'Widget'; known kinds: User, Team, Service",
    ),
    "unknown-api-version": (
        {"bad.yaml": bad("apiVersion: relia.dev/v9\nkind: Team\nmetadata: {name: x}\nspec: {name: X}\n")},
        422,
        [("bad.yaml", 2, "apiVersion", 10)],
        "unsupported apiVersion 'relia.dev/v9'",
    ),
    "unknown-field": (
        {"bad.yaml": bad(document("Service", "x", "  name: X\n  owner: payments\n  colour: red\n"))},
        422,
        [("bad.yaml", 2, "spec.colour", 17)],
        "unknown field",
    ),
    "wrong-type": (
        {"bad.yaml": bad(document("Service", "x", "  name: X\n  owner: payments\n  tier: high\n"))},
        422,
        [("bad.yaml", 2, "spec.tier", 17)],
        "valid integer",
    ),
    "missing-name": (
        {"bad.yaml": bad("apiVersion: relia.dev/v1\nkind: Team\nmetadata:\n  labels: {a: b}\nspec: {name: X}\n")},
        422,
        [("bad.yaml", 2, "metadata.name", 13)],
        "required",
    ),
    "invalid-slug": (
        {"bad.yaml": bad(document("Team", "Payments_Team", "  name: X\n"))},
        422,
        [("bad.yaml", 2, "metadata.name", 13)],
        "must be lower-case letters, digits and dashes",
    ),
    # A regular expression's "$" also matches before a final newline.
    "slug-with-a-newline": (
        {"bad.yaml": bad('apiVersion: relia.dev/v1\nkind: Team\nmetadata:\n  name: "infra\\n"\nspec: {name: X}\n')},
        422,
        [("bad.yaml", 2, "metadata.name", 13)],
        "must be lower-case letters, digits and dashes",
    ),
    "duplicate-across-files": (
        {
            "a.yaml": document("Service", "dup", "  name: Dup\n  owner: payments\n"),
            "bad.yaml": bad(document("Service", "dup", "  name: Dup again\n  owner: payments\n")),
        },
        422,
        [("bad.yaml", 2, "metadata.name", 13)],
        "Service 'dup' is defined twice; first in a.yaml document 1",
    ),
    "dangling-team": (
        {"bad.yaml": bad(document("Service", "x", "  name: X\n  owner: nobody\n"))},
        422,
        [("bad.yaml", 2, "spec.owner", 16)],
        "refers to Team 'nobody', which does not exist",
    ),
    "dangling-member": (
        {"bad.yaml": bad(document("Team", "t", "  name: T\n  members:\n    - user: ghost\n      role: manager\n"))},
        422,
        [("bad.yaml", 2, "spec.members.0.user", 17)],
        "refers to User 'ghost', which does not exist",
    ),
    "cycle-in-files": (
        {
            "bad.yaml": bad(
                document("Service", "a1", "  name: A\n  owner: payments\n  dependsOn: [b1]\n"),
                document("Service", "b1", "  name: B\n  owner: payments\n  dependsOn: [a1]\n"),
            )
        },
        422,
        [("bad.yaml", 2, "spec.dependsOn", 17)],
        "dependency cycle: a1 -> b1 -> a1",
    ),
    "cycle-with-the-database": (
        {
            "bad.yaml": bad(
                document(
                    "Service",
                    "orders-db",
                    "  name: Orders\n  owner: platform\n  tier: 1\n  dependsOn: [checkout]\n",
                )
            )
        },
        422,
        [("bad.yaml", 2, "spec.dependsOn", 18)],
        "orders-db -> checkout",
    ),
    "self-dependency": (
        {"bad.yaml": bad(document("Service", "x", "  name: X\n  owner: payments\n  dependsOn: [x]\n"))},
        422,
        [("bad.yaml", 2, "spec.dependsOn.0", 17)],
        "a service cannot depend on itself",
    ),
    # Found only while writing, after the first user was written: that write is undone too.
    "email-taken": (
        {
            "bad.yaml": bad(
                document("User", "newbie", "  name: New\n  email: new@acme.example\n"),
                document("User", "newbie2", "  name: New 2\n  email: new@acme.example\n"),
            )
        },
        409,
        [("bad.yaml", 3, "spec.email", 24)],
        "Another user has the email 'new@acme.example'",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_a_refused_apply_names_file_document_field_and_line_and_changes_nothing(client, db, seeded, case):
    files, status, expected, message = ERROR_CASES[case]
    before = snapshot(db)

    response = post(client, "apply", seeded, files)

    assert response.status_code == status, response.text
    body = response.json()
    assert problems(response) == expected
    assert message in body["errors"][0]["message"]
    assert body["detail"].startswith("Nothing was changed. bad.yaml:")
    assert snapshot(db) == before
    # The plan refuses the same files the same way (except what only writing finds out).
    if status == 422:
        planned = post(client, "plan", seeded, files)
        assert (planned.status_code, problems(planned)) == (422, expected)


def test_invalid_yaml_names_the_file_and_line_and_changes_nothing(client, db, seeded):
    files = {
        "good.yaml": VALID_CHANGE,
        "broken.yaml": "apiVersion: relia.dev/v1\nkind: Team\nmetadata:\n  name: [x\nspec: {name: X}\n",
    }
    before = snapshot(db)

    response = post(client, "apply", seeded, files)

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["file"], error["line"]) == ("broken.yaml", 5)
    assert error["message"].startswith("not valid YAML")
    assert snapshot(db) == before


def test_every_problem_in_the_files_is_reported_at_once(client, db, seeded):
    files = {
        "a.yaml": document("Service", "x", "  name: X\n  owner: nobody\n"),
        "b.yaml": documents(
            document("Team", "t", "  name: T\n  members: [{user: ghost}]\n"),
            document("Service", "y", "  name: Y\n  owner: payments\n  dependsOn: [missing]\n"),
        ),
    }
    response = post(client, "apply", seeded, files)
    assert response.status_code == 422, response.text
    assert sorted(problems(response)) == [
        ("a.yaml", 1, "spec.owner", 7),
        ("b.yaml", 1, "spec.members.0.user", 7),
        ("b.yaml", 2, "spec.dependsOn.0", 16),
    ]
    assert response.json()["detail"].startswith("Nothing was changed. 3 problems; the first: ")


# ------------------------------------------------------------------------------------------ who may apply


def checkout_file(tier: int, owner: str = "payments") -> str:
    return document("Service", "checkout", f"  name: Checkout\n  owner: {owner}\n  tier: {tier}\n")


def ranker_file(tier: int) -> str:
    return document("Service", "ranker", f"  name: Ranker\n  owner: search\n  tier: {tier}\n")


def test_a_team_member_cannot_change_another_teams_service(client, db, org):
    before = snapshot(db)
    # The checkout change (alice's own team) comes first and would be written before ranker is refused.
    files = {"services.yaml": documents(checkout_file(1), ranker_file(1))}

    response = post(client, "apply", org.headers("alice:write"), files)

    assert response.status_code == 403, response.text
    (error,) = response.json()["errors"]
    assert (error["file"], error["document"], error["kind"], error["name"]) == (
        "services.yaml",
        2,
        "Service",
        "ranker",
    )
    assert "Only members of the owning team (or an administrator) may change service 'ranker'" in error["message"]
    assert snapshot(db) == before


def test_a_team_member_cannot_give_a_service_to_another_team(client, db, org):
    before = snapshot(db)
    response = post(client, "apply", org.headers("alice:write"), {"s.yaml": checkout_file(2, owner="search")})
    assert response.status_code == 403, response.text
    assert "services owned by team 'search'" in response.json()["errors"][0]["message"]
    assert snapshot(db) == before


def test_a_team_member_may_change_their_teams_service(client, db, org):
    result = apply_ok(client, org.headers("alice:write"), {"s.yaml": checkout_file(1)})
    assert changed(result) == [("update", "Service", "checkout")]
    assert service(client, "checkout", org.headers("alice:read"))["tier"] == 1


def test_a_read_token_cannot_apply_but_may_plan(client, db, org):
    before = snapshot(db)
    files = {"s.yaml": checkout_file(1)}

    response = post(client, "apply", org.headers("alice:read"), files)

    assert response.status_code == 403, response.text
    assert "read-only" in response.json()["detail"]
    assert snapshot(db) == before
    planned = post(client, "plan", org.headers("alice:read"), files)
    assert planned.status_code == 200, planned.text
    assert changed(planned.json()) == [("update", "Service", "checkout")]


def test_only_administrators_create_users_and_teams(client, db, org):
    before = snapshot(db)
    for kind, spec in [
        ("User", "  name: Dave\n  email: dave@example.com\n"),
        ("Team", "  name: Dave's team\n"),
    ]:
        response = post(client, "apply", org.headers("alice:write"), {"new.yaml": document(kind, "dave", spec)})
        assert response.status_code == 403, response.text
        (error,) = response.json()["errors"]
        assert (error["kind"], error["name"], error["document"]) == (kind, "dave", 1)
        assert "Only an administrator" in error["message"]
    assert snapshot(db) == before
    # An admin user with a write-scoped token is not acting as an administrator either.
    response = post(
        client,
        "apply",
        org.headers("root:write"),
        {"new.yaml": document("User", "dave", "  name: Dave\n  email: dave@example.com\n")},
    )
    assert response.status_code == 403, response.text
    assert snapshot(db) == before


def test_a_team_member_who_is_not_a_manager_cannot_change_the_team(client, db, org):
    before = snapshot(db)
    team = document(
        "Team",
        "payments",
        "  name: Payments\n  members: [{user: alice, role: manager}, {user: bob}, {user: carol}]\n",
    )

    response = post(client, "apply", org.headers("bob:write"), {"team.yaml": team})

    assert response.status_code == 403, response.text
    assert "Only the team's managers" in response.json()["errors"][0]["message"]
    assert snapshot(db) == before
    assert changed(apply_ok(client, org.headers("alice:write"), {"team.yaml": team})) == [
        ("update", "Team", "payments")
    ]


def test_a_user_may_change_themself_but_not_make_themself_an_administrator(client, db, org):
    alice = "  name: Alice\n  email: alice@example.com\n  timeZone: Europe/Paris\n"
    result = apply_ok(client, org.headers("alice:write"), {"me.yaml": document("User", "alice", alice)})
    assert changed(result) == [("update", "User", "alice")]
    before = snapshot(db)

    response = post(
        client,
        "apply",
        org.headers("alice:write"),
        {"me.yaml": document("User", "alice", alice + "  admin: true\n")},
    )

    assert response.status_code == 403, response.text
    assert snapshot(db) == before


def test_anyone_may_apply_a_repository_that_holds_other_teams_objects_unchanged(client, db, org):
    # An administrator applies the whole organisation once, so every object is config-managed.
    repository = exported_files(client, org.headers("root:admin"))
    apply_ok(client, org.headers("root:admin"), repository)
    repository["services.yaml"] = repository["services.yaml"].replace(
        "name: Checkout\n", "name: Checkout\n  description: Alice's change.\n"
    )

    result = apply_ok(client, org.headers("alice:write"), repository)

    assert changed(result) == [("update", "Service", "checkout")]
    # A change to another team's object in the same repository is still refused.
    repository["services.yaml"] = repository["services.yaml"].replace("name: Ranker\n", "name: Ranker 2\n")
    before = snapshot(db)
    assert post(client, "apply", org.headers("alice:write"), repository).status_code == 403
    assert snapshot(db) == before


# --------------------------------------------------------------------------------------- audit, secrecy


def test_apply_records_who_changed_what_via_config(client, db, org):
    admin = org.headers("root:admin")
    apply_ok(client, org.headers("alice:write"), {"s.yaml": checkout_file(1)})
    apply_ok(client, admin, {"t.yaml": document("Team", "infra", "  name: Infra\n")})

    entries = client.get("/api/v1/audit", params={"limit": 2}, headers=admin).json()["items"]

    infra, checkout = entries
    assert (infra["actor"], infra["via"], infra["action"], infra["objectKind"], infra["objectKey"]) == (
        "root",
        "config",
        "create",
        "Team",
        "infra",
    )
    assert infra["before"] is None and infra["after"]["name"] == "Infra"
    assert (checkout["actor"], checkout["via"], checkout["action"], checkout["objectKey"]) == (
        "alice",
        "config",
        "update",
        "checkout",
    )
    assert (checkout["before"]["tier"], checkout["after"]["tier"]) == (2, 1)
    assert checkout["requestId"]
    # A change made directly through the API says so.
    client.patch("/api/v1/services/checkout", json={"tier": 2}, headers=admin)
    latest = client.get("/api/v1/audit", params={"limit": 1}, headers=admin).json()["items"][0]
    assert (latest["via"], latest["objectKey"]) == ("api", "checkout")


def test_plans_show_user_values_only_to_administrators_and_the_user(client, db, org):
    files = {
        "me.yaml": documents(
            document("User", "alice", "  name: Alice\n  email: alice@example.com\n  timeZone: Asia/Tokyo\n"),
            checkout_file(1),
        )
    }
    bob_plan = post(client, "plan", org.headers("bob:write"), files).json()
    user_change, service_change = bob_plan["changes"]
    # Not even the changed field names: they would confirm a guessed contact address.
    assert (user_change["kind"], user_change["action"], user_change["fields"]) == ("User", "update", [])
    assert (user_change["before"], user_change["after"]) == (None, None)
    assert service_change["before"]["tier"] == 2

    alice_plan = post(client, "plan", org.headers("alice:write"), files).json()
    assert alice_plan["changes"][0]["fields"] == ["timeZone"]
    assert alice_plan["changes"][0]["before"]["timeZone"] == "UTC"

    admin_plan = post(client, "plan", org.headers("root:admin"), files).json()
    assert admin_plan["changes"][0]["before"]["email"] == "alice@example.com"

    applied = apply_ok(client, org.headers("alice:write"), files)
    assert applied["changes"][0]["after"]["timeZone"] == "Asia/Tokyo"
    assert applied["changes"][1]["after"]["tier"] == 1


def test_only_administrators_export_users(client, org):
    for key in ("alice:read", "alice:write", "root:write"):
        exported = client.get("/api/v1/config/export", headers=org.headers(key)).json()["documents"]
        assert "User" not in exported and "DataSource" not in exported, key
        assert {"Service", "Team"} <= set(exported), key
    exported = client.get("/api/v1/config/export", headers=org.headers("root:admin")).json()["documents"]
    assert {"Service", "Team", "User", "DataSource"} <= set(exported)
    assert [doc["metadata"]["name"] for doc in exported["User"]] == ["alice", "bob", "carol", "root"]


def test_config_routes_need_a_credential(client, db):
    before = snapshot(db)
    files = {"t.yaml": document("Team", "x", "  name: X\n")}
    for verb in ("validate", "plan", "apply"):
        assert post(client, verb, {}, files).status_code == 401
    assert client.get("/api/v1/config/export").status_code == 401
    assert audit_count(db) == before["counts"]["audit_log"]
