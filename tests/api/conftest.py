"""Fixtures for the API tests: a real HTTP server, and captured log output."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
import uvicorn


@dataclass
class LiveServer:
    url: str


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """The app served by uvicorn on a free port, in a thread. The socket listens before the thread starts,
    so clients may connect at once (the kernel queues them until uvicorn accepts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"
        sock.close()


@dataclass
class CapturedLogs:
    events: list[dict[str, Any]]
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture[str]

    def text(self) -> str:
        out, err = self.capsys.readouterr()
        return "\n".join([repr(self.events), self.caplog.text, out, err])


@pytest.fixture
def captured_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[CapturedLogs]:
    """Everything logged: structlog events, standard logging records, and printed output.

    structlog is reconfigured to capture every level (a CLI test may have left a warning-level filter), and
    each relia module's ``log`` is replaced by a fresh proxy: one used before may have cached the old
    configuration (``cache_logger_on_first_use``).
    """
    caplog.set_level(logging.DEBUG)
    capture = structlog.testing.LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        for name, module in list(sys.modules.items()):
            logger = getattr(module, "log", None)
            if name.startswith("relia.") and callable(getattr(logger, "info", None)):
                factory_args = getattr(logger, "_logger_factory_args", None) or (name,)
                monkeypatch.setattr(module, "log", structlog.get_logger(*factory_args))
        yield CapturedLogs(events=capture.entries, caplog=caplog, capsys=capsys)
    finally:
        structlog.configure(**previous)
