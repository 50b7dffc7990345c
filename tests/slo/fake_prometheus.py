"""A tiny fake Prometheus HTTP API for tests: ``/api/v1/query_range`` answered from canned functions, on a real
socket (127.0.0.1, a free port), in a thread. It records every request, and can be told to fail, to answer
slowly, or to run a hook while a request is in flight."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# A canned series: the value at an evaluation timestamp (epoch seconds), None for no sample there, or a string
# sent as is (e.g. "NaN").
Series = Callable[[int], float | str | None]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]

    @property
    def query(self) -> str:
        return self.params.get("query", "")

    @property
    def start(self) -> int:
        return int(float(self.params["start"]))

    @property
    def end(self) -> int:
        return int(float(self.params["end"]))

    @property
    def points(self) -> int:
        return (self.end - self.start) // int(float(self.params["step"])) + 1


@dataclass
class Failure:
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakePrometheus:
    def __init__(self) -> None:
        self.series: dict[str, Series] = {}
        self.requests: list[Request] = []
        self.failure: Failure | None = None
        self.delay_seconds = 0.0
        self.on_request: Callable[[Request], None] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for the serving loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-prometheus", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, query: str, series: Series) -> None:
        self.series[query] = series

    def fail(self, status: int, body: Any, *, content_type: str = "application/json", **headers: str) -> None:
        """Answer every request with this until :meth:`recover`."""
        text = body if isinstance(body, str) else json.dumps(body)
        self.failure = Failure(status, text, content_type, headers)

    def recover(self) -> None:
        self.failure = None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def requests_for(self, query: str) -> list[Request]:
        return [request for request in self.requests if request.query == query]

    # --------------------------------------------------------------------------------------------- serving

    def _respond(self, request: Request) -> tuple[int, str, str, dict[str, str]]:
        hook, self.on_request = self.on_request, None  # a hook runs once
        if hook is not None:
            hook(request)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.failure is not None:
            failure = self.failure
            return failure.status, failure.body, failure.content_type, failure.headers
        if request.path != "/api/v1/query_range":
            return 404, "404 page not found", "text/plain", {}
        series = self.series.get(request.query)
        if series is None:
            error = {"status": "error", "errorType": "bad_data", "error": f"fake: no canned data for {request.query}"}
            return 400, json.dumps(error), "application/json", {}
        step = int(float(request.params["step"]))
        values = []
        for timestamp in range(request.start, request.end + 1, step):
            value = series(timestamp)
            if value is not None:
                values.append([timestamp, value if isinstance(value, str) else repr(float(value))])
        result = [{"metric": {}, "values": values}] if values else []
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        return 200, json.dumps(body), "application/json", {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve(urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(self.rfile.read(length).decode())

            def _serve(self, encoded: str) -> None:
                params = {key: values[-1] for key, values in parse_qs(encoded).items()}
                request = Request(
                    method=self.command,
                    path=urlsplit(self.path).path,
                    params=params,
                    headers={key.lower(): value for key, value in self.headers.items()},
                )
                with fake._lock:
                    fake.requests.append(request)
                status, body, content_type, headers = fake._respond(request)
                payload = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        return Handler
