"""Browser tests: the real app served by uvicorn on 127.0.0.1, driven by Debian's Chromium through the
Playwright sync API. SQLite only (the pages add nothing database-specific). Without /usr/bin/chromium
(RELIA_TEST_CHROMIUM names another binary) or Playwright every browser test is skipped with the reason; CI
installs Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from relia.catalog import service
from relia.config import service as config_service
from relia.config.documents import read_paths
from relia.core.auth import Principal, hash_password
from relia.core.db import Database
from tests.browser.support import EXAMPLES, NO_PLAYWRIGHT, PASSWORDS

CHROMIUM = Path(os.environ.get("RELIA_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000
SEEDED_AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # an hour before the shared ``clock`` fixture's now


@pytest.fixture(scope="session")
def demo_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file holding the demo organisation from examples/ and passwords for an administrator
    and a team manager; each test gets its own copy."""
    path = tmp_path_factory.mktemp("browser-template") / "demo.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    system, now = Principal.system(), SEEDED_AT
    try:
        with database.transaction() as session:
            config_service.apply(session, read_paths([EXAMPLES]), actor=system, now=now)
            for username, password in PASSWORDS.items():
                hashed = hash_password(password)
                service.set_password(session, actor=system, username=username, password_hash=hashed, now=now)
    finally:
        database.dispose()
    return path


@pytest.fixture
def database_url(tmp_path: Path, demo_template: Path) -> str:
    """Overrides the shared, database-parametrized fixture: browser tests run on SQLite alone, seeded with
    the demo organisation."""
    path = tmp_path / "relia.db"
    shutil.copy(demo_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def playwright_browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (or set RELIA_TEST_CHROMIUM) to run them")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason=NO_PLAYWRIGHT).sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app under uvicorn in a background thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _new_context(browser: Any, base_url: str, **options: Any) -> Any:
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def new_context(playwright_browser: Any, live_server: str) -> Iterator[Any]:
    """A factory for extra browser contexts (own cookies; e.g. ``java_script_enabled=False``)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = _new_context(playwright_browser, live_server, **options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Any) -> Any:
    return new_context().new_page()


@pytest.fixture
def nojs_page(new_context: Any) -> Any:
    return new_context(java_script_enabled=False).new_page()
