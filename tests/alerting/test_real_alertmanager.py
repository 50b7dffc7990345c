"""Against a real Prometheus and a real Alertmanager (Debian's packages), both on 127.0.0.1: a rule fires, the
Alertmanager webhook opens one alert group in Relia (served by uvicorn in a thread), its repeats do not
duplicate it, and it resolves when the rule clears (the rules file is rewritten and Prometheus reloaded).

Needs ``/usr/bin/prometheus`` and ``/usr/bin/prometheus-alertmanager`` (``apt-get install -y
--no-install-recommends prometheus prometheus-alertmanager``); skipped without them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from relia.alerting.models import Alert, AlertGroup
from tests.alerting.support import make_integration

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(PROMETHEUS).exists() and Path(ALERTMANAGER).exists()),
        reason="needs /usr/bin/prometheus and /usr/bin/prometheus-alertmanager: "
        "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager",
    ),
]

FIRING_RULES = """groups:
  - name: relia-test
    interval: 1s
    rules:
      - alert: RealCheckoutDown
        expr: vector(1)
        for: 0s
        labels: {severity: critical, service: checkout}
        annotations: {summary: "Checkout is down (a real Prometheus rule)"}
"""
# The same rule, now matching nothing: Prometheus keeps the rule's state across the reload and sends the alert
# as resolved at its next evaluation.
CLEARED_RULES = FIRING_RULES.replace("expr: vector(1)", "expr: vector(1) == 0")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    name: str
    handle: subprocess.Popen[bytes]
    log: Path
    url: str

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.handle.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.handle.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx2.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{self.name} was not ready within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.terminate()
            try:
                self.handle.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.handle.kill()
                self.handle.wait()


def _start(name: str, command: list[str], log: Path, url: str) -> Process:
    with log.open("wb") as out:
        handle = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Process(name, handle, log, url)


@dataclass
class Stack:
    prometheus: Process
    alertmanager: Process
    rules: Path

    def clear_rule(self) -> None:
        self.rules.write_text(CLEARED_RULES)
        response = httpx2.post(f"{self.prometheus.url}/-/reload", timeout=10)
        assert response.status_code == 200, response.text

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log.read_text()[-4000:]}" for p in (self.prometheus, self.alertmanager))


@pytest.fixture
def stack(tmp_path: Path, live_server, db, clock, org) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """Prometheus evaluating one always-firing rule every second, and Alertmanager sending its group to Relia's
    live server with short timers (group_wait 1s, group_interval 1s, repeat_interval 2s)."""
    key = make_integration(db, clock, "real-alertmanager", "checkout")
    am_port, prom_port = _free_port(), _free_port()
    (tmp_path / "am.yml").write_text(
        f"""route:
  receiver: relia
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: relia
    webhook_configs:
      - url: {live_server.url}/api/v1/integrations/{key}/alertmanager
        send_resolved: true
"""
    )
    rules = tmp_path / "rules.yml"
    rules.write_text(FIRING_RULES)
    (tmp_path / "prometheus.yml").write_text(
        f"""global:
  evaluation_interval: 1s
rule_files: [{rules}]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{am_port}"]
"""
    )
    alertmanager = _start(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip: no other ports, no waiting for peers
            f"--storage.path={tmp_path / 'am-data'}",
        ],
        tmp_path / "alertmanager.log",
        f"http://127.0.0.1:{am_port}",
    )
    prometheus = _start(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            "--web.enable-lifecycle",  # POST /-/reload
            "--rules.alert.resend-delay=1s",
        ],
        tmp_path / "prometheus.log",
        f"http://127.0.0.1:{prom_port}",
    )
    started = Stack(prometheus=prometheus, alertmanager=alertmanager, rules=rules)
    try:
        alertmanager.wait_ready()
        prometheus.wait_ready()
        yield started
    finally:
        prometheus.stop()
        alertmanager.stop()


def _eventually(check: Callable[[], bool], stack: Stack, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} did not happen within {timeout} s\n{stack.logs()}")


def test_a_real_rule_opens_one_group_repeats_do_not_duplicate_it_and_it_resolves(stack, db):
    def groups() -> list[AlertGroup]:
        with db.reader() as session:
            return list(session.scalars(select(AlertGroup)))

    def alerts() -> list[Alert]:
        with db.reader() as session:
            return list(session.scalars(select(Alert)))

    _eventually(lambda: len(groups()) == 1, stack, "the first notification")
    # Alertmanager repeats the unchanged group every 2 s; each repeat only counts an occurrence.
    _eventually(lambda: sum(alert.occurrences for alert in alerts()) >= 3, stack, "two repeats")
    assert len(groups()) == 1 and len(alerts()) == 1
    alert = alerts()[0]
    assert (alert.summary, alert.severity, alert.status) == (
        "Checkout is down (a real Prometheus rule)",
        "critical",
        "firing",
    )
    assert alert.labels["alertname"] == "RealCheckoutDown" and len(alert.dedup_key) == 16
    group = groups()[0]
    assert (group.state, group.source, group.firing_count) == ("triggered", "alertmanager", 1)
    assert group.source_url and group.source_url.startswith("http://")

    stack.clear_rule()

    _eventually(lambda: groups()[0].state == "resolved", stack, "the resolved notification")
    group, alert = groups()[0], alerts()[0]
    assert (group.resolution, group.firing_count, len(groups()), len(alerts())) == ("source", 0, 1, 1)
    assert (alert.status, alert.resolved_by) == ("resolved", "source")
    assert alert.ends_at is not None
