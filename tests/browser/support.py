"""Helpers for the browser tests: the demo organisation as the tests expect to see it, and signing in."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADMIN, MEMBER = "admin", "ada"
PASSWORDS = {ADMIN: "browser-admin-pw", MEMBER: "browser-ada-pw"}
NO_PLAYWRIGHT = "playwright is not installed: pip install -e '.[browser]'"


@cache
def examples(kind: str) -> dict[str, dict[str, Any]]:
    """``{name: spec}`` of every object of one kind in examples/."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document and document.get("kind") == kind:
                found[document["metadata"]["name"]] = document["spec"]
    return found


def sign_in(page: Any, username: str = ADMIN, *, expect_path: str = "/services") -> None:
    """Sign in through the form (works with and without JavaScript) and check where it lands."""
    from urllib.parse import urlsplit

    page.goto("/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == expect_path)
