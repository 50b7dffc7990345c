"""Import directions: domains never import the api, web, cli or worker layers (except their own api.py and
pages.py routes, which may use the API's dependencies and the shared page helpers); core imports no domain;
rules.py files stay pure (no I/O, no database, no clock)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "relia"
SURFACES = ("relia.api", "relia.web", "relia.cli", "relia.worker")
ROUTE_FILES = {"api.py", "pages.py"}
DOMAINS = [
    path.name
    for path in SRC.iterdir()
    if path.is_dir()
    and (path / "__init__.py").exists()
    and path.name not in {"api", "web", "cli", "worker", "core", "migrations"}
]
IO_MODULES = (
    "sqlalchemy",
    "httpx2",
    "requests",
    "socket",
    "subprocess",
    "relia.core.db",
    "relia.core.clock",
    "datetime.datetime.now",
    "time",
    "os",
)


def imports_of(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def test_domains_do_not_import_surfaces():
    offenders = []
    for domain in DOMAINS:
        for path in (SRC / domain).rglob("*.py"):
            # A domain's pages share the page helpers (relia.web.common), never the catalog's page routes.
            allowed = ("relia.api.deps", "relia.api.problems", "relia.web.common") if path.name in ROUTE_FILES else ()
            for name in imports_of(path):
                if _matches(name, SURFACES) and not _matches(name, allowed):
                    offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_core_imports_no_domain():
    domain_prefixes = tuple(f"relia.{domain}" for domain in DOMAINS) + SURFACES
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "core").rglob("*.py")
        for name in imports_of(path)
        if _matches(name, domain_prefixes)
    ]
    assert offenders == []


def test_rules_are_pure():
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in SRC.rglob("rules.py")
        for name in imports_of(path)
        if _matches(name, IO_MODULES)
    ]
    assert offenders == []


def test_there_are_domains_to_check():
    assert {"catalog", "config"} <= set(DOMAINS)
