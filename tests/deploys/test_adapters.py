"""The switch adapters' contract: commands (exit status, timeouts that kill the whole group, a minimal
environment), webhooks (status classes, idempotency key), and the nginx include file (atomic rewrite, the
configuration check that puts the previous file back, the reload)."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from relia.deploys import adapters
from relia.deploys.adapters import ActionContext, AdapterError
from relia.deploys.schemas import CommandAdapter, HttpAdapter, NginxAdapter

CONTEXT = ActionContext(
    action="switch",
    deployment_id=7,
    service="checkout",
    target="checkout",
    version="v2",
    previous_version="v1",
    environment="green",
    live="green",
    new_environment="green",
    old_environment="blue",
    upstreams={"blue": "127.0.0.1:8101", "green": "127.0.0.1:8102"},
    attempt=1,
    variables={"IMAGE": "registry/checkout:v2"},
)
PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


# ---------------------------------------------------------------------------------------------------- command


def test_a_command_that_exits_zero_succeeds_with_its_output():
    detail = adapters.run_command([sys.executable, "-c", "print('switched')"], CONTEXT, timeout=10)
    assert detail.endswith("exit status 0; output: switched")


def test_a_command_that_fails_is_a_retryable_error_with_its_output():
    with pytest.raises(AdapterError) as failure:
        adapters.run_command(
            [sys.executable, "-c", "import sys; print('no capacity'); sys.exit(4)"], CONTEXT, timeout=10
        )
    assert not failure.value.permanent
    assert "exit status 4" in failure.value.detail and "no capacity" in failure.value.detail


def test_a_missing_program_is_permanent():
    with pytest.raises(AdapterError) as failure:
        adapters.run_command(["/no/such/program"], CONTEXT, timeout=10)
    assert failure.value.permanent and "no such program" in failure.value.detail


def test_the_environment_holds_the_variables_and_nothing_secret(monkeypatch):
    monkeypatch.setenv("RELIA_DATABASE_URL", "postgresql://user:secret@db/relia")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    detail = adapters.run_command(PRINT_ENV, CONTEXT, timeout=10)
    seen = json.loads(detail.split("output: ", 1)[1])
    assert seen["RELIA_VAR_IMAGE"] == "registry/checkout:v2"
    assert seen["RELIA_UPSTREAM"] == "127.0.0.1:8102"
    assert seen["RELIA_IDEMPOTENCY_KEY"] == "relia-deployment-7-switch"
    assert "RELIA_DATABASE_URL" not in seen and "AWS_SECRET_ACCESS_KEY" not in seen
    assert "PATH" in seen


def test_a_command_that_outlives_its_timeout_is_killed_with_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time;"
        f"child = subprocess.Popen(['sleep', '60']); open({str(pid_file)!r}, 'w').write(str(child.pid));"
        "time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(AdapterError, match=r"still running after 0\.5 s"):
        adapters.run_command([sys.executable, "-c", script], CONTEXT, timeout=0.5)
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the command's child outlived it"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_perform_picks_the_hook_of_the_action(tmp_path):
    log = tmp_path / "log"
    record = [sys.executable, "-c", f"import os; open({str(log)!r}, 'a').write(os.environ['RELIA_ACTION'] + ' ')"]
    spec = CommandAdapter.model_validate({"type": "command", "switch": record, "deploy": record})
    for action in ("deploy", "switch", "rollback"):
        adapters.perform(spec, ActionContext(**{**CONTEXT.__dict__, "action": action}))
    assert log.read_text() == "deploy switch rollback "
    assert adapters.has_hook(spec, "deploy") and not adapters.has_hook(spec, "retire")
    assert adapters.has_hook(spec, "rollback")


# ------------------------------------------------------------------------------------------------------ http


class Hook:
    def __init__(self) -> None:
        self.status = 200
        self.received: list[tuple[dict[str, str], dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append((dict(self.headers), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/switch"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_webhook_gets_the_deployment_with_an_idempotency_key(hook):
    spec = HttpAdapter.model_validate({"type": "http", "switch": hook.url, "headers": {"Authorization": "Bearer t"}})
    assert adapters.perform(spec, CONTEXT) == f"POST {hook.url}: HTTP 200"
    [(headers, body)] = hook.received
    assert headers["Idempotency-Key"] == "relia-deployment-7-switch"
    assert headers["Authorization"] == "Bearer t"
    assert body["action"] == "switch" and body["environment"] == "green" and body["upstream"] == "127.0.0.1:8102"
    assert body["variables"] == {"IMAGE": "registry/checkout:v2"} and body["previousVersion"] == "v1"


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (404, True), (429, False), (500, False), (503, False)])
def test_webhook_failures_are_permanent_only_for_client_errors(hook, status, permanent):
    hook.status = status
    with pytest.raises(AdapterError) as failure:
        adapters.call_webhook(hook.url, CONTEXT, headers={}, timeout=5)
    assert failure.value.permanent is permanent
    assert f"HTTP {status}" in failure.value.detail


def test_an_unreachable_webhook_is_retried():
    with pytest.raises(AdapterError) as failure:
        adapters.call_webhook("http://127.0.0.1:9/switch", CONTEXT, headers={}, timeout=2)
    assert not failure.value.permanent


# ----------------------------------------------------------------------------------------------------- nginx


def nginx_spec(path: Path, *, test: list[str], reload: list[str], name: str | None = "checkout_live") -> NginxAdapter:
    return NginxAdapter.model_validate(
        {"type": "nginx", "upstreamFile": str(path), "upstreamName": name, "testCommand": test, "reloadCommand": reload}
    )


TRUE = [sys.executable, "-c", "pass"]
FALSE = [sys.executable, "-c", "import sys; print('nginx: [emerg] bad config'); sys.exit(1)"]


def test_the_include_file_is_rewritten_and_nginx_checked_then_reloaded(tmp_path):
    path = tmp_path / "upstream.conf"
    path.write_text("upstream checkout_live {\n    server 127.0.0.1:8101;\n}\n")
    os.chmod(path, 0o640)
    reloaded = tmp_path / "reloaded"
    reload = [sys.executable, "-c", f"open({str(reloaded)!r}, 'w').write(open({str(path)!r}).read())"]
    detail = adapters.perform(nginx_spec(path, test=TRUE, reload=reload), CONTEXT)
    assert "now sends traffic to green (127.0.0.1:8102)" in detail
    text = path.read_text()
    assert "upstream checkout_live {\n    server 127.0.0.1:8102;\n}\n" in text
    assert text.startswith("# Written by Relia: deployment 7 of checkout (switch).")
    assert reloaded.read_text() == text  # the reload saw the new file
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reloaded", "upstream.conf"]  # no temporary file left


def test_without_a_name_the_file_is_just_the_server_line(tmp_path):
    path = tmp_path / "servers.conf"
    adapters.perform(nginx_spec(path, test=TRUE, reload=TRUE, name=None), CONTEXT)
    assert path.read_text().splitlines()[-1] == "server 127.0.0.1:8102;"


def test_a_configuration_nginx_refuses_puts_the_previous_file_back_and_never_reloads(tmp_path):
    path = tmp_path / "upstream.conf"
    before = "upstream checkout_live {\n    server 127.0.0.1:8101;\n}\n"
    path.write_text(before)
    reloaded = tmp_path / "reloaded"
    reload = [sys.executable, "-c", f"open({str(reloaded)!r}, 'w').write('')"]
    with pytest.raises(AdapterError) as failure:
        adapters.perform(nginx_spec(path, test=FALSE, reload=reload), CONTEXT)
    assert failure.value.permanent
    assert "[emerg] bad config" in failure.value.detail and "put back as it was" in failure.value.detail
    assert path.read_text() == before
    assert not reloaded.exists()


def test_a_new_file_that_fails_the_check_is_removed(tmp_path):
    path = tmp_path / "upstream.conf"
    with pytest.raises(AdapterError):
        adapters.perform(nginx_spec(path, test=FALSE, reload=TRUE), CONTEXT)
    assert not path.exists()


def test_a_failed_reload_is_retried_and_the_retry_is_idempotent(tmp_path):
    path = tmp_path / "upstream.conf"
    spec = nginx_spec(path, test=TRUE, reload=FALSE)
    with pytest.raises(AdapterError) as failure:
        adapters.perform(spec, CONTEXT)
    assert not failure.value.permanent and "nginx reload: exit status 1" in failure.value.detail
    first = path.read_text()
    adapters.perform(nginx_spec(path, test=TRUE, reload=TRUE), CONTEXT)
    assert path.read_text() == first


def test_rollback_points_the_file_at_the_old_environment(tmp_path):
    path = tmp_path / "upstream.conf"
    rollback = ActionContext(**{**CONTEXT.__dict__, "action": "rollback", "environment": "blue", "live": "blue"})
    adapters.perform(nginx_spec(path, test=TRUE, reload=TRUE), rollback)
    assert "server 127.0.0.1:8101;" in path.read_text()


def test_atomic_write_leaves_the_old_file_whole_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "upstream.conf"
    path.write_text("old\n")

    def broken_fsync(descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        adapters.atomic_write(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["upstream.conf"]
