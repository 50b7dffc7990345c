"""Helpers shared by the API tests (fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

API = "/api/v1"
PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, *, path: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and, given ``path``, an error at that path)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:relia:problem:")
    assert body["title"]
    if path is not None:
        paths = [error["path"] for error in body.get("errors") or []]
        assert path in paths, body
    return body


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def walk_pages(client: Any, url: str, headers: dict[str, str], limit: int, **params: Any) -> list[Any]:
    """Every item of a cursor-paginated list, following nextCursor until it runs out."""
    items: list[Any] = []
    cursor = None
    for _ in range(1000):
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        page = ok(client.get(url, params=query, headers=headers))
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return items
        assert page["items"], "a page with a next cursor must not be empty"
    raise AssertionError("pagination did not end")


def audit_entries(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    return walk_pages(client, f"{API}/audit", headers, 500, **params)
