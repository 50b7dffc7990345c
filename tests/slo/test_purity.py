"""relia.slo.rules is pure: the discipline tests/test_layers.py applies to rules.py files, for the package."""

from __future__ import annotations

import ast
from pathlib import Path

import relia.slo.rules
from tests.test_layers import IO_MODULES, imports_of

PACKAGE = Path(relia.slo.rules.__file__).parent
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def test_the_package_imports_nothing_with_io() -> None:
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted(PACKAGE.glob("*.py"))
        for name in imports_of(path)
        if any(name == prefix or name.startswith(prefix + ".") for prefix in (*IO_MODULES, "httpx", "pathlib"))
    ]
    assert offenders == []


def test_the_package_never_reads_the_clock() -> None:
    calls = [
        f"{path.name}:{node.lineno} calls {node.func.attr}"
        for path in sorted(PACKAGE.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS
    ]
    assert calls == []


def test_the_package_imports_only_within_relia_slo_rules() -> None:
    outside = [
        f"{path.name} imports {name}"
        for path in sorted(PACKAGE.glob("*.py"))
        for name in imports_of(path)
        if name.startswith("relia.") and not name.startswith("relia.slo.rules")
    ]
    assert outside == []


def test_every_public_name_is_documented() -> None:
    assert len(relia.slo.rules.__all__) == len(set(relia.slo.rules.__all__))
    for name in relia.slo.rules.__all__:
        if name.isupper() or name == "Window":  # constants and the type alias
            continue
        doc = getattr(relia.slo.rules, name).__doc__ or ""
        assert doc and not doc.startswith(f"{name}("), name  # not only the dataclass signature
