"""Against a real Prometheus: an SLO read from Prometheus (backfilled through query_range) and the same counts
pushed through the API end in the same status: SLI, budget, burn rate per window, page and ticket.

The synthetic history is built so Prometheus' rate() is exact. Samples come every 15 s and fall on every minute
boundary, so the window ``[T-1m, T]`` of Prometheus 2.x starts and ends on a sample and rate() does not
extrapolate: the minute's count is ``v(T) - v(T-1m)``. Increments are also constant inside each minute and the
counters start far from zero, so Prometheus 3's left-open windows (which extrapolate the missing quarter
minute) give the same counts. What remains is float rounding of ``rate x 60`` and of sums taken in another
order, hence the tolerance of 1e-9 (relative; absolute for values near zero).

Needs ``/usr/bin/prometheus`` and ``promtool`` (Debian: ``apt-get install -y --no-install-recommends
prometheus``); skipped without them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from relia.slo.evaluator import Evaluator
from relia.slo.models import SLO, Objective, Rollup, SourceState
from relia.slo.prometheus import PrometheusSource

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()),
        reason="needs /usr/bin/prometheus and promtool: apt-get install -y --no-install-recommends prometheus",
    ),
]

SCRAPE_SECONDS = 15
HOURS = 4
TOLERANCE = 1e-9
GOOD = 'sum(rate(http_requests_total{job="checkout",code!~"5.."}[{{.window}}]))'
TOTAL = 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))'


@dataclass(frozen=True)
class Minute:
    ok: int  # code="200"
    not_found: int  # code="404": not a server error, so good
    errors: int  # code="500"

    @property
    def total(self) -> int:
        return self.ok + self.not_found + self.errors

    @property
    def good(self) -> int:
        return self.ok + self.not_found


def synthetic_minutes() -> list[Minute]:
    """Four hours of traffic that varies minute to minute (so minutes weigh differently): a baseline error
    ratio of about 0.2 %, a 30-minute burst at 30 % errors, and the last 40 minutes at 50 %, still burning
    when Relia evaluates, so page and ticket fire. Counts are multiples of 4 (one quarter per scrape)."""
    minutes = []
    for index in range(HOURS * 60):
        requests = 4 * (150 + 15 * (index % 7))
        if 120 <= index < 150:
            errors = 4 * (requests // 4 * 3 // 10)
        elif index >= HOURS * 60 - 40:
            errors = 4 * (requests // 8)
        else:
            errors = 4 if index % 3 == 0 else 0
        minutes.append(Minute(ok=requests - errors - 8, not_found=8, errors=errors))
    return minutes


def openmetrics(start: int, minutes: list[Minute]) -> str:
    """The counters as an OpenMetrics backfill file: one sample every 15 s from ``start`` (a minute boundary),
    the increment of each minute spread evenly over its four scrapes."""
    lines = ["# HELP http_requests Requests by status code.", "# TYPE http_requests counter"]
    for code, field, offset in (("200", "ok", 1_000_000), ("404", "not_found", 20_000), ("500", "errors", 5_000)):
        value = offset  # far from zero: rate() then never extrapolates to a counter start
        lines.append(f'http_requests_total{{job="checkout",code="{code}"}} {value} {start}')
        for index, minute in enumerate(minutes):
            for quarter in range(1, 5):
                value += getattr(minute, field) // 4
                timestamp = start + index * 60 + quarter * SCRAPE_SECONDS
                lines.append(f'http_requests_total{{job="checkout",code="{code}"}} {value} {timestamp}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class RealPrometheus:
    url: str
    start: int  # epoch seconds of the first sample
    minutes: list[Minute]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def real_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealPrometheus]:
    """Prometheus on a free loopback port over a TSDB backfilled with ``synthetic_minutes``; stopped (and its
    log shown on failure) at the end of the module."""
    folder = tmp_path_factory.mktemp("prometheus")
    minutes = synthetic_minutes()
    # The history sits just behind the real clock (only to place it inside Prometheus' retention, which is
    # counted from real time); the test then runs on a simulated clock set just after it.
    start = int(time.time()) // 3600 * 3600 - (HOURS + 1) * 3600
    (folder / "history.om").write_text(openmetrics(start, minutes))
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(folder / "history.om"), str(folder / "data")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")  # no scrape jobs: history only
    port = _free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={folder / 'data'}",
                "--storage.tsdb.retention.time=30d",  # well above the oldest sample (5 h), so nothing is dropped
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield RealPrometheus(url=url, start=start, minutes=minutes)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx2.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)  # waiting for a real process to start, not for simulated time
    pytest.fail(f"prometheus was not ready within 30 s:\n{log_path.read_text()[-3000:]}")


# ------------------------------------------------------------------------------------------------------ test


def slo_body(name: str, indicator: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "service": "checkout",
        "indicator": indicator,
        "window": {"rolling": "30d"},
        "objectives": [{"target": 0.99}],
    }


def test_prometheus_fed_and_pushed_slos_agree(real_prometheus, client, org, db, clock):
    prom = real_prometheus
    end = prom.start + len(prom.minutes) * 60
    clock.set(datetime.fromtimestamp(end + 120, UTC))  # two minutes after the last sample
    admin, owner = org.headers("root:admin"), org.headers("alice:write")
    # A fractional timeout: it travels to Prometheus as the query's evaluation timeout too.
    source = {"type": "prometheus", "url": prom.url, "timeoutSeconds": 2.5, "headers": {"X-Scope-OrgID": "relia"}}
    response = client.put("/api/v1/data-sources/prom", json=source, headers=admin)
    assert response.status_code == 201, response.text
    body = slo_body("checkout-prometheus", {"source": "prom", "ratio": {"good": GOOD, "total": TOTAL}})
    assert client.post("/api/v1/slos", json=body, headers=owner).status_code == 201
    assert (
        client.post("/api/v1/slos", json=slo_body("checkout-pushed", {"ratio": {}}), headers=owner).status_code == 201
    )
    points = [
        {
            "timestamp": datetime.fromtimestamp(prom.start + index * 60, UTC).isoformat(),
            "good": minute.good,
            "total": minute.total,
        }
        for index, minute in enumerate(prom.minutes)
    ]
    pushed = client.post("/api/v1/slos/checkout-pushed/events", json={"points": points}, headers=owner)
    assert pushed.status_code == 200 and pushed.json()["minutes"] == len(points), pushed.text

    report = PrometheusSource().tick(db, clock)
    Evaluator().tick(db, clock)

    assert report.failures == 0, client.get("/api/v1/slos/checkout-prometheus", headers=owner).json()["source"]
    from_prometheus = client.get("/api/v1/slos/checkout-prometheus", headers=owner).json()
    from_pushes = client.get("/api/v1/slos/checkout-pushed", headers=owner).json()
    assert from_prometheus["source"]["backfilled"] and not from_prometheus["source"]["failing"]
    with db.reader() as session:
        state = session.scalars(select(SourceState).join(SLO).where(SLO.name == "checkout-prometheus")).one()
    assert state.last_sample_at == datetime.fromtimestamp(end, UTC)  # the query point covering the last minute
    # Minute by minute first: the same counts landed in the same minutes.
    prometheus_minutes, pushed_minutes = minutes_of(db, "checkout-prometheus"), minutes_of(db, "checkout-pushed")
    assert prometheus_minutes.keys() == pushed_minutes.keys() and len(pushed_minutes) == HOURS * 60
    assert_close(prometheus_minutes, pushed_minutes, "minutes")
    # Then the status Relia computes from them.
    status_prometheus, status_pushed = from_prometheus["objectives"][0], from_pushes["objectives"][0]
    assert status_prometheus["state"] == status_pushed["state"] != "pending"
    assert_close(status_prometheus["budgetRemaining"], status_pushed["budgetRemaining"], "budgetRemaining")
    assert_close(status_prometheus["detail"], status_pushed["detail"], "detail")
    detail = status_prometheus["detail"]
    assert detail["alerts"]["page"] and detail["alerts"]["ticket"]  # the comparison covers firing alerts
    assert {"5m", "1h", "6h", "3d"} <= detail["burnRates"].keys()


def minutes_of(db, name: str) -> dict[int, tuple[float, float]]:  # type: ignore[no-untyped-def]
    with db.reader() as session:
        rows = session.execute(
            select(Rollup.minute, Rollup.good, Rollup.total)
            .join(Objective, Rollup.objective_id == Objective.id)
            .join(SLO, Objective.slo_id == SLO.id)
            .where(SLO.name == name, Rollup.total > 0)
        ).all()
    return {minute: (good, total) for minute, good, total in rows}


def assert_close(a: object, b: object, where: str) -> None:
    """Equal structures; numbers equal within TOLERANCE (see the module docstring)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}.{index}")
    elif isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        assert a == pytest.approx(b, rel=TOLERANCE, abs=TOLERANCE), where
    else:
        assert a == b, where
