"""Real parts for the blue-green tests (and ``bench/nginx_switch.py``): two small HTTP backends on 127.0.0.1, a
real nginx master in front of them with its whole configuration in a temporary directory, and a client loop
that keeps sending requests through nginx and records every answer.

nginx runs as ``nginx -c <conf> -p <prefix> -e <error log> -g 'daemon off;'`` in its own process group: its pid
file, logs and temporary directories all live in the temporary directory, so nothing of the system's nginx is
touched, and ``stop`` (SIGQUIT, then SIGKILL) ends it with its workers. Without an nginx binary the tests skip
(``NGINX_MISSING``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
)
NGINX_MISSING = "nginx is not installed (apt-get install nginx); the real-nginx blue-green tests need it"
UPSTREAM_NAME = "relia_live"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


# -------------------------------------------------------------------------------------------------- backends


class Backend:
    """An HTTP server answering ``/`` with its version and ``/healthz`` with ``health_status`` (settable, so a
    test can make an environment unhealthy)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.health_status = 200
        self.requests = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    status, body = backend.health_status, f"{backend.version} health {backend.health_status}"
                else:
                    backend.requests += 1
                    status, body = 200, backend.version
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"backend-{version}", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.address}/healthz"

    def start(self) -> Backend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


# ----------------------------------------------------------------------------------------------------- nginx


class NginxServer:
    """A private nginx master on a free port of 127.0.0.1, proxying to the upstream in ``upstream_file``."""

    def __init__(self, directory: Path, first_upstream: str, *, workers: int = 2) -> None:
        assert NGINX is not None, NGINX_MISSING
        self.directory = directory
        self.port = free_port()
        self.conf = directory / "nginx.conf"
        self.upstream_file = directory / "upstream.conf"
        self.error_log = directory / "error.log"
        self.pid_file = directory / "nginx.pid"
        self.process: subprocess.Popen[bytes] | None = None
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / "temp" / name).mkdir(parents=True, exist_ok=True)
        self.upstream_file.write_text(f"upstream {UPSTREAM_NAME} {{\n    server {first_upstream};\n}}\n")
        temp = directory / "temp"
        self.conf.write_text(
            f"""worker_processes {workers};
pid {self.pid_file};
error_log {self.error_log} notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {self.upstream_file};
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://{UPSTREAM_NAME};
        }}
    }}
}}
"""
        )

    def _argv(self, *extra: str) -> list[str]:
        assert NGINX is not None
        return [NGINX, *extra, "-c", str(self.conf), "-p", str(self.directory), "-e", str(self.error_log)]

    @property
    def test_command(self) -> list[str]:
        return self._argv("-t", "-q")

    @property
    def reload_command(self) -> list[str]:
        return self._argv("-s", "reload")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> NginxServer:
        self.process = subprocess.Popen(
            [*self._argv("-g", "daemon off;")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"nginx did not start: {self.error_text()}") from None
        return self

    def error_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no error log)"

    def stop(self) -> None:
        """SIGQUIT lets the master and its workers finish gracefully; SIGKILL to the group if they do not."""
        process = self.process
        if process is None:
            return
        self.process = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# ------------------------------------------------------------------------------------------------ the client


@dataclass
class Answer:
    started: float  # time.monotonic() when the request was sent
    at: float  # time.monotonic() when the answer arrived
    body: str | None  # the backend's version, None for a failure
    error: str | None = None


@dataclass
class ClientLoop:
    """Sends GET / through nginx back to back from ``threads`` threads until stopped, and keeps every answer.

    Each request opens a new connection, as most clients of a load balancer do between bursts; with ``keepalive``
    each thread reuses one connection instead, and reconnects once when nginx had closed it while idle, as HTTP
    clients do for requests that are safe to repeat (counted in ``idle_reconnects``, not as failures)."""

    port: int
    threads: int = 2
    keepalive: bool = False
    pause: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    idle_reconnects: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ClientLoop:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, name=f"client-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            if connection is None or not self.keepalive:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            answer = self._ask(connection)
            if answer.body is None and self.keepalive and answer.error and "idle" in answer.error:
                with self._lock:
                    self.idle_reconnects += 1
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                answer = self._ask(connection)
            if answer.body is None or not self.keepalive:
                connection.close()
                connection = None
            with self._lock:
                self.answers.append(answer)
            if self.pause:
                time.sleep(self.pause)
        if connection is not None:
            connection.close()

    @staticmethod
    def _ask(connection: http.client.HTTPConnection) -> Answer:
        reused = connection.sock is not None
        started = time.monotonic()
        try:
            connection.request("GET", "/", headers={"Connection": "keep-alive"})
            response = connection.getresponse()
            body = response.read().decode()
        except (OSError, http.client.HTTPException) as exc:
            # A connection nginx closed while it sat idle (a reload ends idle keep-alive connections) fails on
            # reuse before any byte of an answer: clients retry those, so it is marked apart.
            idle = reused and isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)
            label = "idle connection closed" if idle else "failed"
            return Answer(started, time.monotonic(), None, f"{label}: {type(exc).__name__}: {exc}")
        if response.status != 200:
            return Answer(started, time.monotonic(), None, f"HTTP {response.status}: {body[:100]}")
        return Answer(started, time.monotonic(), body)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def failures(self) -> list[Answer]:
        return [answer for answer in self.snapshot() if answer.body is None]

    def wait_for(self, body: str, *, count: int = 20, timeout: float = 10.0) -> float:
        """Wait until the last ``count`` answers are all ``body``; returns when the first of them arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recent = self.snapshot()[-count:]
            if len(recent) == count and all(answer.body == body for answer in recent):
                return recent[0].at
            time.sleep(0.01)
        seen = {answer.body for answer in self.snapshot()[-count:]}
        raise AssertionError(f"traffic did not settle on {body!r} within {timeout:g} s (recently: {seen})")


@contextlib.contextmanager
def blue_green_stack(directory: Path, *, workers: int = 2) -> Iterator[tuple[Backend, Backend, NginxServer]]:
    """Blue (answers v1) and green (v2) behind nginx, blue live; everything stops when the block ends."""
    blue, green = Backend("v1").start(), Backend("v2").start()
    nginx = NginxServer(directory, blue.address, workers=workers)
    try:
        nginx.start()
        yield blue, green, nginx
    finally:
        nginx.stop()
        blue.stop()
        green.stop()
