"""The `relia` command line: config as code (validate, diff, apply, export), the catalog verbs, API tokens,
and the same rights as the API whether it runs on the local database or against a server."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from relia.config.documents import export_file_name
from relia.core.db import Base
from tests.config.support import EXAMPLE_COUNTS, EXAMPLES, document, documents, snapshot

TOTAL = sum(EXAMPLE_COUNTS.values())


@pytest.fixture
def demo(relia):  # type: ignore[no-untyped-def]
    """The demo organisation, applied as the local operator."""
    result = relia("apply", "-f", EXAMPLES)
    assert result.exit_code == 0, result.output
    return relia


@pytest.fixture
def examples_copy(tmp_path: Path) -> Path:
    """A copy of examples/ to edit."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "examples"))


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def create_token(relia, user: str, scope: str) -> str:  # type: ignore[no-untyped-def]
    result = relia("tokens", "create", "--user", user, "--name", f"ci-{scope}", "--scope", scope)
    assert result.exit_code == 0, result.output
    announcement, token = result.stdout.strip().splitlines()
    assert announcement.endswith(f"for {user} ({scope}). It is shown only once:")
    assert token.startswith("relia_")
    return token


# -------------------------------------------------------------------------------------------- validate


def test_validate_accepts_the_examples_without_a_database(relia, tmp_path):
    result = relia("validate", "-f", EXAMPLES, RELIA_DATABASE_URL=f"sqlite:///{tmp_path}/absent/none.db")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Valid: {TOTAL} objects in {len(list(EXAMPLES.glob('*.yaml')))} files."


def test_validate_reports_the_file_line_document_and_field_of_each_problem(relia, tmp_path):
    bad = write(
        tmp_path / "bad.yaml",
        documents(
            document("Team", "infra", "  name: Infra\n"),
            document("Service", "api", "  name: API\n  owner: infra\n  tier: high\n"),
            document("Service", "web", "  name: Web\n  owner: infra\n  colour: red\n"),
        ),
    )

    result = relia("validate", "-f", bad)

    assert result.exit_code == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors[0] == "error: Invalid configuration. Nothing was changed."
    assert errors[1].startswith(f"  - {bad}:15, document 2, Service/api, field spec.tier: Input should be")
    assert errors[2] == f"  - {bad}:24, document 3, Service/web, field spec.colour: unknown field"
    assert len(errors) == 3


def test_validate_finds_dependency_cycles_within_the_files(relia, tmp_path):
    cycle = write(
        tmp_path / "cycle.yaml",
        documents(
            document("Service", "api", "  name: API\n  owner: infra\n  dependsOn: [web]\n"),
            document("Service", "web", "  name: Web\n  owner: infra\n  dependsOn: [api]\n"),
        ),
    )

    result = relia("validate", "-f", cycle)

    assert result.exit_code == 1
    expected = f"{cycle}:8, document 1, Service/api, field spec.dependsOn: dependency cycle: api -> web -> api"
    assert expected in result.stderr


def test_validate_names_missing_paths_and_bad_yaml(relia, tmp_path):
    broken = write(tmp_path / "broken.yaml", "kind: Team\nspec: [unclosed\n")

    missing = relia("validate", "-f", tmp_path / "missing.yaml")
    invalid = relia("validate", "-f", broken)

    assert missing.exit_code == 1
    assert f"{tmp_path / 'missing.yaml'}: no such file or folder" in missing.stderr
    assert invalid.exit_code == 1
    assert f"{broken}:3: not valid YAML" in invalid.stderr


# ---------------------------------------------------------------------------------------- diff, apply


def test_diff_then_apply_then_apply_again(relia, db, examples_copy):
    diff = relia("diff", "-f", examples_copy)
    assert diff.exit_code == 0, diff.output
    assert "+ create Service/checkout" in diff.stdout
    assert "+ create User/ada" in diff.stdout
    assert diff.stdout.strip().endswith(f"Plan: {TOTAL} to create, 0 to update, 0 to delete, 0 unchanged.")
    assert snapshot(db)["export"]["Service"] == []  # diff changes nothing

    applied = relia("apply", "-f", examples_copy)
    assert applied.exit_code == 0, applied.output
    assert f"Applied: {TOTAL} to create, 0 to update, 0 to delete, 0 unchanged." in applied.stdout
    assert len(snapshot(db)["export"]["Service"]) == EXAMPLE_COUNTS["Service"]
    before = snapshot(db)

    again = relia("apply", "-f", examples_copy)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        f"Applied: 0 to create, 0 to update, 0 to delete, {TOTAL} unchanged.",
        "No changes.",
    ]
    assert snapshot(db) == before

    services = examples_copy / "services.yaml"
    services.write_text(
        services.read_text().replace("  tier: 4\n  description: 'Suggestions", "  tier: 3\n  description: 'Ideas"),
        encoding="utf-8",
    )
    diff = relia("diff", "-f", examples_copy)
    assert diff.stdout.splitlines() == [
        "~ update Service/recommendations (description, tier)",
        f"Plan: 0 to create, 1 to update, 0 to delete, {TOTAL - 1} unchanged.",
    ]
    verbose = relia("diff", "-f", examples_copy, "--verbose")
    assert "= unchanged Service/checkout" in verbose.stdout
    as_json = json.loads(relia("diff", "-f", examples_copy, "-o", "json").stdout)
    (update,) = [change for change in as_json["changes"] if change["action"] == "update"]
    assert (update["name"], update["before"]["tier"], update["after"]["tier"]) == ("recommendations", 4, 3)
    assert snapshot(db) == before

    (examples_copy / "users.yaml").unlink()
    pruned = relia("diff", "-f", examples_copy, "--prune")
    assert pruned.exit_code == 1  # the teams still name their members
    assert "refers to User 'ada', which does not exist (it would be pruned)" in pruned.stderr


def test_each_change_is_one_line_however_long(relia, tmp_path):
    slug = "a-service-with-a-rather-long-name-for-one-line"
    team = document("Team", "infra", "  name: Infra\n")
    first = write(tmp_path / "s.yaml", documents(team, document("Service", slug, "  name: Long\n  owner: infra\n")))
    assert relia("apply", "-f", first).exit_code == 0
    spec = "  name: Longer\n  owner: infra\n  tier: 1\n  description: Now with a description.\n"
    second = write(tmp_path / "s.yaml", documents(team, document("Service", slug, spec)))

    result = relia("diff", "-f", second)

    line = f"~ update Service/{slug} (description, name, tier)"
    assert len(line) > 80
    assert result.stdout.splitlines() == [line, "Plan: 0 to create, 1 to update, 0 to delete, 1 unchanged."]


def test_apply_refuses_everything_when_one_document_is_wrong(demo, db, examples_copy):
    before = snapshot(db)
    services = examples_copy / "services.yaml"
    services.write_text(
        services.read_text().replace("owner: growth\n  tier: 4", "owner: nobody\n  tier: 4")
        + "---\n"
        + document("Service", "ledger", "  name: Ledger\n  owner: payments\n"),
        encoding="utf-8",
    )

    result = demo("apply", "-f", examples_copy)

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: Invalid configuration. Nothing was changed.",
        f"  - {services}:134, document 11, Service/recommendations, field spec.owner: refers to Team "
        "'nobody', which does not exist",
    ]
    assert snapshot(db) == before


def test_export_to_a_folder_then_apply_it_changes_nothing(demo, db, tmp_path):
    out = tmp_path / "exported"

    exported = demo("export", "-o", out)

    assert exported.exit_code == 0, exported.output
    assert sorted(path.name for path in out.iterdir()) == sorted(export_file_name(kind) for kind in EXAMPLE_COUNTS)
    assert f"wrote {out / 'services.yaml'} ({EXAMPLE_COUNTS['Service']} objects)" in exported.stdout
    before = snapshot(db)
    applied = demo("apply", "-f", out)
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.strip().endswith("No changes.")
    assert snapshot(db) == before
    # To stdout: every document, ready to be piped into a file.
    printed = list(yaml.safe_load_all(demo("export").stdout))
    assert len(printed) == TOTAL
    assert {doc["kind"] for doc in printed} == set(EXAMPLE_COUNTS)


def test_exporting_again_into_the_same_folder_removes_files_of_kinds_now_empty(demo, db, tmp_path):
    out = tmp_path / "exported"
    assert demo("export", "-o", out).exit_code == 0
    # Every service goes: apply the users and teams alone, pruning.
    pruned = demo("apply", "-f", out / "users.yaml", "-f", out / "teams.yaml", "--prune")
    assert pruned.exit_code == 0, pruned.output
    pruned_kinds = set(EXAMPLE_COUNTS) - {"User", "Team"}
    assert f"{sum(EXAMPLE_COUNTS[kind] for kind in pruned_kinds)} to delete" in pruned.stdout

    again = demo("export", "-o", out)

    assert again.exit_code == 0, again.output
    assert f"removed {out / 'services.yaml'} (no objects)" in again.stdout
    assert f"removed {out / 'slos.yaml'} (no objects)" in again.stdout
    assert sorted(path.name for path in out.iterdir()) == ["teams.yaml", "users.yaml"]
    before = snapshot(db)
    applied = demo("apply", "-f", out)
    assert applied.stdout.strip().endswith("No changes.")
    assert snapshot(db) == before


# ------------------------------------------------------------------------------------- catalog verbs


def test_services_list_and_show_and_teams_show(demo):
    listed = demo("services", "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    services = json.loads(listed.stdout)
    assert [item["slug"] for item in services] == sorted(item["slug"] for item in services)
    assert len(services) == EXAMPLE_COUNTS["Service"]
    by_slug = {item["slug"]: item for item in services}
    assert (by_slug["checkout"]["owner"], by_slug["checkout"]["tier"]) == ("payments", 1)

    owned = json.loads(demo("services", "list", "--owner", "payments", "-o", "json").stdout)
    assert [item["slug"] for item in owned] == ["checkout", "fraud-scoring", "payments-api"]

    table = demo("services", "list", "--tier", "4").stdout
    assert "recommendations" in table and "checkout" not in table

    team = yaml.safe_load(demo("teams", "show", "payments").stdout)
    assert team["slug"] == "payments"
    assert [(member["user"], member["role"]) for member in team["members"]] == [
        ("bruno", "manager"),
        ("dara", "member"),
        ("gopal", "member"),
    ]
    assert team["services"] == ["checkout", "fraud-scoring", "payments-api"]

    missing = demo("teams", "show", "nope")
    assert missing.exit_code == 1
    assert "error: Not found (404): There is no team 'nope'." in missing.stderr


# ---------------------------------------------------------------------------------------------- tokens


def test_a_token_is_printed_once_and_never_stored_or_logged_in_clear(demo, db, settings):
    created = demo(
        "tokens", "create", "--user", "bruno", "--name", "ci", "--scope", "write", RELIA_CLI_LOG_LEVEL="debug"
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    secret = token.split("_", 2)[2]
    assert len(secret) >= 40

    # Use it, with every log line captured.
    used = demo("services", "list", "-o", "json", token=token, RELIA_CLI_LOG_LEVEL="debug")
    assert used.exit_code == 0, used.output
    assert "http.request" in used.stderr  # the logs were captured
    listed = demo("tokens", "list", "--user", "bruno", "-o", "json", RELIA_CLI_LOG_LEVEL="debug")
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["user"], row["scope"]) == ("ci", "bruno", "write")
    assert row["lastUsedAt"] is not None
    assert "token" not in row

    for result in (created, used, listed):
        assert secret not in result.stderr
    assert secret not in listed.stdout + used.stdout
    with db.reader() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                assert secret not in repr(tuple(row)), table.name
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    if db.is_sqlite:
        database_file = Path(db.engine.url.database)
        for path in database_file.parent.glob(database_file.name + "*"):  # with -wal and -shm
            assert secret.encode() not in path.read_bytes(), path


def test_tokens_need_a_user_locally_and_cannot_exceed_their_owner(demo):
    anonymous = demo("tokens", "create", "--name", "ci")
    assert anonymous.exit_code == 1
    assert "Say which user the token is for." in anonymous.stderr
    not_admin = demo("tokens", "create", "--user", "bruno", "--name", "ci", "--scope", "admin")
    assert not_admin.exit_code == 1
    assert "Only an administrator can hold an admin-scoped token." in not_admin.stderr
    writer = create_token(demo, "bruno", "write")
    escalation = demo("tokens", "create", "--user", "dara", "--name", "x", token=writer)
    assert escalation.exit_code == 1
    assert "(403)" in escalation.stderr


def test_a_read_token_cannot_apply(demo, db, examples_copy):
    reader = create_token(demo, "bruno", "read")
    services = examples_copy / "services.yaml"
    services.write_text(
        services.read_text().replace("tier: 2\n  description: Scores", "tier: 1\n  description: Scores")
    )
    before = snapshot(db)

    result = demo("apply", "-f", examples_copy, token=reader)

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: Not allowed (403): This credential is read-only; a write or admin scope is needed."
    )
    assert snapshot(db) == before
    # Reading and planning are fine.
    assert demo("diff", "-f", examples_copy, token=reader).exit_code == 0
    assert demo("teams", "show", "payments", token=reader).exit_code == 0


def test_a_team_member_changes_their_own_service_but_not_another_teams(demo, db, examples_copy):
    writer = create_token(demo, "bruno", "write")  # manager of payments only
    services = examples_copy / "services.yaml"
    text = services.read_text()
    services.write_text(text.replace("tier: 2\n  description: Scores", "tier: 1\n  description: Scores"))

    own = demo("apply", "-f", examples_copy, token=writer)

    assert own.exit_code == 0, own.output
    assert own.stdout.splitlines()[0] == "~ update Service/fraud-scoring (tier)"
    before = snapshot(db)
    services.write_text(
        services.read_text().replace("tier: 2\n  description: Product search", "tier: 1\n  description: Product search")
    )

    other = demo("apply", "-f", examples_copy, token=writer)

    assert other.exit_code == 1
    assert other.stderr.splitlines() == [
        "error: Not allowed. Nothing was changed.",
        f"  - {services}:104, document 9, Service/search: Only members of the owning team (or an "
        "administrator) may change service 'search'.",
    ]
    assert snapshot(db) == before
    entries = json.loads(demo("audit", "--key", "fraud-scoring", "-o", "json").stdout)
    assert [(entry["actor"], entry["via"], entry["action"]) for entry in entries][:1] == [("bruno", "config", "update")]


def test_without_a_token_the_local_cli_acts_as_the_operator(demo):
    entries = json.loads(demo("audit", "--kind", "Service", "--key", "checkout", "-o", "json").stdout)
    assert {(entry["actor"], entry["via"]) for entry in entries} == {("local-operator", "config")}
    assert entries[-1]["action"] == "create"


# ---------------------------------------------------------------------------------------- remote mode


def test_remote_mode_talks_to_a_real_server_with_the_tokens_rights(relia, server, db, org, tmp_path):
    listed = relia("services", "list", "-o", "json", url=server.url, token=org.tokens["alice:read"])
    assert listed.exit_code == 0, listed.output
    assert [item["slug"] for item in json.loads(listed.stdout)] == ["checkout", "ranker"]

    table = relia("services", "list", url=server.url, token=org.tokens["alice:read"])
    assert table.exit_code == 0, table.output
    assert "checkout" in table.stdout and "payments" in table.stdout

    # A served app never treats a caller without credentials as the operator.
    anonymous = relia("services", "list", url=server.url)
    assert anonymous.exit_code == 1
    assert "(401)" in anonymous.stderr
    forged = relia("services", "list", url=server.url, token="relia_000000000000_forged")
    assert forged.exit_code == 1
    assert "The token is unknown, expired or revoked." in forged.stderr

    before = snapshot(db)
    change = write(
        tmp_path / "ranker.yaml",
        document("Service", "ranker", "  name: Ranker\n  owner: search\n  tier: 1\n"),
    )
    refused = relia("apply", "-f", change, url=server.url, token=org.tokens["alice:write"])
    assert refused.exit_code == 1
    assert f"{change}:1, document 1, Service/ranker: Only members of the owning team" in refused.stderr
    assert snapshot(db) == before
    applied = relia("apply", "-f", change, url=server.url, token=org.tokens["carol:write"])
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.splitlines()[0] == "~ update Service/ranker (tier)"
    # The server logged every request, and no token.
    server.stop()
    assert server.log.getvalue().count("http.request") == 6
    for token in org.tokens.values():
        assert token.split("_", 2)[2] not in server.log.getvalue()


def test_remote_mode_says_when_the_server_cannot_be_reached(relia):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    result = relia("services", "list", url=f"http://127.0.0.1:{port}", token="relia_000000000000_x")
    assert result.exit_code == 1
    assert "error: Cannot reach Relia:" in result.stderr
