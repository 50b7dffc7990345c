"""How the CLI talks to Relia: over HTTP to RELIA_URL with RELIA_TOKEN, or, without RELIA_URL, to an
in-process app on the local database (the operator's own data; a token, if given, still applies)."""

from __future__ import annotations

import os
from typing import Any

import httpx2

from relia.core.settings import Settings


class ApiError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        self.status = status
        self.problem = problem


# The in-process apps local-mode clients built during this command: ``close_local_apps`` closes their
# databases' connections when the command ends (typer's ``call_on_close``), instead of whenever the garbage
# collector gets to them; a test process running hundreds of commands would otherwise hold their connections.
_local_apps: list[Any] = []


def close_local_apps() -> None:
    while _local_apps:
        _local_apps.pop().state.db.dispose()


class Client:
    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        settings: Settings | None = None,
        http: httpx2.Client | None = None,
    ) -> None:
        self.url = url if url is not None else os.environ.get("RELIA_URL")
        token = token if token is not None else os.environ.get("RELIA_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers["User-Agent"] = "relia-cli"
        if http is not None:
            self._http = http
            self._http.headers.update(headers)
        elif self.url:
            self._http = httpx2.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=60.0)
        else:
            from starlette.testclient import TestClient

            from relia.api.app import create_app
            from relia.core.logging import configure_logging

            configure_logging(os.environ.get("RELIA_CLI_LOG_LEVEL", "warning"), json=False)

            app = create_app(settings or Settings(), local_operator=True)
            _local_apps.append(app)
            self._http = TestClient(app, headers=headers, raise_server_exceptions=False)

    @property
    def mode(self) -> str:
        return f"remote {self.url}" if self.url else "local database"

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(
                method,
                f"/api/v1{path}",
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
            )
        except httpx2.HTTPError as exc:
            raise ApiError(0, {"title": "Cannot reach Relia", "detail": f"{self.url}: {exc}"}) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": f"HTTP {response.status_code}", "detail": response.text[:500]}
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def paginate(self, path: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        cursor = None
        while True:
            page = self.get(path, cursor=cursor, limit=500, **params)
            items.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return items
