"""Helpers shared by the config-as-code and CLI tests: files as dicts, applying them through the API, and a
snapshot of everything in the database to prove that a refused apply changed nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from relia import models  # noqa: F401  (every table in Base.metadata, for snapshot)
from relia.catalog.models import Service, Team, User
from relia.config import service as config_service
from relia.core.auth import Principal
from relia.core.db import Base, Database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_COUNTS = {
    "User": 11,
    "Team": 4,
    "Service": 11,
    "SLO": 8,
    "Integration": 3,
    "RoutingRule": 4,
    "Schedule": 4,
    "EscalationPolicy": 5,
    "BudgetPolicy": 2,
}


def example_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.glob("*.yaml"))}


def as_request(files: dict[str, str], *, prune: bool = False) -> dict[str, Any]:
    return {"files": [{"name": name, "content": content} for name, content in files.items()], "prune": prune}


def post(client: TestClient, verb: str, headers: dict[str, str], files: dict[str, str], *, prune: bool = False):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/config/{verb}", json=as_request(files, prune=prune), headers=headers)


def apply_ok(
    client: TestClient, headers: dict[str, str], files: dict[str, str], *, prune: bool = False
) -> dict[str, Any]:
    response = post(client, "apply", headers, files, prune=prune)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["applied"] is True
    return body


def changed(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(action, kind, name) of every change that is not 'unchanged', in plan order."""
    return [
        (change["action"], change["kind"], change["name"])
        for change in plan["changes"]
        if change["action"] != "unchanged"
    ]


def document(kind: str, name: str, spec: str) -> str:
    """One document; ``spec`` is the indented YAML under ``spec:`` (so lines are easy to count: the
    header is 5 lines, and the first spec field is on line 6 of the document)."""
    return f"apiVersion: relia.dev/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n{spec}"


def documents(*parts: str) -> str:
    return "---\n".join(parts)


def snapshot(db: Database) -> dict[str, Any]:
    """Everything a refused apply could have touched: the export, the row count of every table (the audit
    log among them), and each object's version and config-managed flag."""
    with db.reader() as session:
        exported = config_service.export(session, actor=Principal.system("snapshot"))
        counts = {
            table.name: session.scalar(select(func.count()).select_from(table)) for table in Base.metadata.sorted_tables
        }
        objects = {
            model.__name__: sorted(session.execute(select(key, model.version, model.config_managed)).all())
            for model, key in ((User, User.username), (Team, Team.slug), (Service, Service.slug))
        }
    return {"export": exported, "counts": counts, "objects": objects}


def audit_count(db: Database) -> int:
    return snapshot(db)["counts"]["audit_log"]
