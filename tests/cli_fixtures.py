"""Running `relia` in-process with typer's CliRunner, on the test database (local mode) or against a real
server in a thread (remote mode)."""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
import uvicorn
from click.testing import Result
from structlog._config import BoundLoggerLazyProxy
from typer.testing import CliRunner

from relia.api.app import create_app
from relia.cli.main import app as cli_app

Relia = Callable[..., Result]


def _forget_cached_loggers() -> None:
    """Each run configures logging onto its own stderr, but structlog keeps the logger a module first used
    (cache_logger_on_first_use): forget those, so each run logs where it configured, and the runner's
    streams do not outlive the test."""
    for name, module in list(sys.modules.items()):
        if name.startswith("relia."):
            for value in list(vars(module).values()):
                if isinstance(value, BoundLoggerLazyProxy):
                    vars(value).pop("bind", None)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # The local client configures logging onto the runner's stderr; later tests must not inherit that.
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    structlog.configure(**saved_structlog)
    _forget_cached_loggers()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
def cli_env(settings, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    """Local mode on the test database: no RELIA_URL, no token."""
    for name in ("RELIA_URL", "RELIA_TOKEN", "RELIA_QUEUE_URL", "RELIA_CLI_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return {
        "RELIA_DATA_DIR": str(settings.data_dir),
        "RELIA_DATABASE_URL": database_url,
        "RELIA_SECRET_KEY": settings.secret_key,
        "RELIA_URL": None,
        "RELIA_TOKEN": None,
    }


@pytest.fixture
def relia(cli_env: dict[str, str | None]) -> Relia:
    """``relia("services", "list", token=..., url=...)``: runs the CLI and returns click's Result, with
    ``stdout`` and ``stderr`` kept apart."""

    def run(*args: str, token: str | None = None, url: str | None = None, **env: str) -> Result:
        overrides: dict[str, Any] = {**cli_env, "RELIA_TOKEN": token, "RELIA_URL": url, **env}
        _forget_cached_loggers()
        return CliRunner().invoke(cli_app, [str(arg) for arg in args], env=overrides, catch_exceptions=False)

    return run


@dataclass
class Server:
    url: str
    log: io.StringIO
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, once every request has finished (and logged)."""
        self._server.should_exit = True
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the test server did not stop"


@pytest.fixture
def server(settings, db) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A real HTTP server (uvicorn, in a thread) on a free local port, logging into ``log``: the CLI's
    runner swaps sys.stdout, which would otherwise mix the server's log lines into the CLI's output."""
    server_log = io.StringIO()
    _forget_cached_loggers()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=server_log))
    application = create_app(settings, db=db)
    # The socket listens before the server starts, so the first request waits in the backlog instead of
    # racing the startup.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    http_server = uvicorn.Server(config)
    thread = threading.Thread(target=http_server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    running = Server(url=f"http://127.0.0.1:{port}", log=server_log, _server=http_server, _thread=thread)
    try:
        yield running
    finally:
        running.stop()
        listener.close()
