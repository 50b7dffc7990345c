"""Request plumbing as plain ASGI (cheaper than BaseHTTPMiddleware): request ids, access logs, latency
metrics by route, and the request body size limit."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("relia.http")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _problem(status: int, slug: str, title: str, detail: str) -> bytes:
    return json.dumps(
        {"type": f"urn:relia:problem:{slug}", "title": title, "status": status, "detail": detail}
    ).encode()


def route_template(scope: Scope, status: int) -> str:
    """The matched route's full template (``/api/v1/services/{slug}``), to keep metric labels bounded.

    Routes of included routers know only their path below the router's static prefix, so the prefix is
    taken from the request path: the segments before the route's own.
    """
    route = scope.get("route")
    relative = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not relative:
        return "unmatched" if status == 404 else "other"
    request_segments = scope["path"].rstrip("/").split("/")
    route_segments = relative.rstrip("/").split("/")
    if len(request_segments) < len(route_segments):
        return relative
    prefix = "/".join(request_segments[: len(request_segments) - len(route_segments) + 1])
    return (prefix + relative) if relative != "/" else (prefix or "/")


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry,
        max_body_bytes: int,
        large_body_paths: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.large_body_paths = large_body_paths or {}
        self.latency = Histogram(
            "relia_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.large_body_paths.items():
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}
        limit = self._limit_for(scope["path"])

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._reject(
                    send_with_id,
                    413,
                    "payload-too-large",
                    "Request body too large",
                    f"The body is larger than {limit} bytes.",
                )
                return
            app_receive = receive
            if declared is None:
                # A body without Content-Length (chunked) is read here, up to the limit, before the app sees
                # it: FastAPI turns any error raised while it reads the body into a 400, not a 413.
                buffered = await self._read_body(receive, limit)
                if buffered is None:
                    await self._reject(
                        send_with_id,
                        413,
                        "payload-too-large",
                        "Request body too large",
                        f"The body is larger than {limit} bytes.",
                    )
                    return
                app_receive = self._replay(buffered, receive)
            await self.app(scope, app_receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            template = route_template(scope, status_holder["status"])
            self.latency.labels(scope["method"], template, str(status_holder["status"])).observe(duration)
            log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status_holder["status"],
                duration_ms=round(duration * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
        """The request's messages up to the end of its body, or None once the body exceeds ``limit``."""
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            received += len(message.get("body", b""))
            if received > limit:
                return None
            if not message.get("more_body", False):
                return messages

    @staticmethod
    def _replay(messages: list[Message], receive: Receive) -> Receive:
        async def replaying_receive() -> Message:
            return messages.pop(0) if messages else await receive()

        return replaying_receive

    @staticmethod
    async def _reject(send: Any, status: int, slug: str, title: str, detail: str) -> None:
        body = _problem(status, slug, title, detail)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
