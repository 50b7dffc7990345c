"""Analysis measurements against real sockets: HTTP health checks and instant PromQL queries (a small fake
Prometheus answering ``/api/v1/query``). SLO burn is measured in the state-machine tests, from pushed events."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from relia.deploys import analysis
from relia.deploys.rules import Verdict
from relia.deploys.schemas import HttpCheck, PrometheusCheck
from relia.slo.schemas import DataSourceSpec
from tests.deploys.nginx_support import Backend

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend("v2").start()
    yield server
    server.stop()


def http_check(**extra: Any) -> HttpCheck:
    return HttpCheck.model_validate({"name": "health", "type": "http", **extra})


def test_an_expected_status_succeeds(backend):
    measured = analysis.measure_http(http_check(), backend.health_url)
    assert (measured.verdict, measured.value) == (Verdict.successful, 200.0)
    assert "HTTP 200 (expected 200)" in measured.detail


def test_another_status_fails(backend):
    backend.health_status = 500
    assert analysis.measure_http(http_check(), backend.health_url).verdict is Verdict.failed
    assert analysis.measure_http(http_check(expectStatus=[200, 500]), backend.health_url).verdict is Verdict.successful


def test_no_answer_is_an_error():
    measured = analysis.measure_http(http_check(timeoutSeconds=1), "http://127.0.0.1:9/healthz")
    assert measured.verdict is Verdict.error and measured.value is None


# ------------------------------------------------------------------------------------------------ prometheus


class FakePrometheus:
    """Answers /api/v1/query with ``answer`` (a JSON document) and ``status``; records the form sent."""

    def __init__(self) -> None:
        self.answer: Any = {"status": "success", "data": {"resultType": "vector", "result": []}}
        self.status = 200
        self.forms: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.forms.append({key: values[0] for key, values in parse_qs(raw).items()})
                body = fake.answer if isinstance(fake.answer, bytes) else json.dumps(fake.answer).encode()
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.source = DataSourceSpec(type="prometheus", url=f"http://127.0.0.1:{self.server.server_address[1]}")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def vector(self, *values: float) -> None:
        result = [{"metric": {"n": str(i)}, "value": [AT.timestamp(), str(v)]} for i, v in enumerate(values)]
        self.answer = {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def promql(**extra: Any) -> PrometheusCheck:
    return PrometheusCheck.model_validate(
        {"name": "errors", "type": "prometheus", "dataSource": "prom", "query": "q", "successCondition": "< 0.01",
         "failureCondition": ">= 0.05", **extra}
    )  # fmt: skip


@pytest.mark.parametrize(("value", "verdict"), [(0.001, Verdict.successful), (0.2, Verdict.failed),
                                                (0.03, Verdict.inconclusive)])  # fmt: skip
def test_the_value_is_judged_by_the_conditions(prometheus, value, verdict):
    prometheus.vector(value)
    measured = analysis.measure_prometheus(promql(), prometheus.source, 'sum(rate(x{color="green"}[1m]))', AT)
    assert (measured.verdict, measured.value) == (verdict, value)
    assert prometheus.forms[0]["query"] == 'sum(rate(x{color="green"}[1m]))'
    assert float(prometheus.forms[0]["time"]) == AT.timestamp()


def test_a_scalar_answer_counts(prometheus):
    prometheus.answer = {"status": "success", "data": {"resultType": "scalar", "result": [AT.timestamp(), "0.002"]}}
    assert analysis.measure_prometheus(promql(), prometheus.source, "q", AT).verdict is Verdict.successful


def test_an_empty_answer_is_no_data_never_success(prometheus):
    assert analysis.measure_prometheus(promql(), prometheus.source, "q", AT).verdict is Verdict.error
    inconclusive = analysis.measure_prometheus(promql(onNoData="inconclusive"), prometheus.source, "q", AT)
    assert inconclusive.verdict is Verdict.inconclusive and inconclusive.detail.startswith("no data")


def test_several_series_are_an_error(prometheus):
    prometheus.vector(0.001, 0.002)
    measured = analysis.measure_prometheus(promql(), prometheus.source, "q", AT)
    assert measured.verdict is Verdict.error and "aggregate it to one" in measured.detail


@pytest.mark.parametrize(
    ("status", "answer", "words"),
    [
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}, "parse error"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
        (502, b"<html>bad gateway</html>", "not JSON"),
    ],
)
def test_query_failures_are_errors(prometheus, status, answer, words):
    prometheus.status, prometheus.answer = status, answer
    measured = analysis.measure_prometheus(promql(), prometheus.source, "q", AT)
    assert measured.verdict is Verdict.error and words in measured.detail


def test_an_unreachable_prometheus_is_an_error():
    source = DataSourceSpec(type="prometheus", url="http://127.0.0.1:9", timeoutSeconds=1)
    assert analysis.measure_prometheus(promql(), source, "q", AT).verdict is Verdict.error


def test_measure_all_keeps_the_other_checks_when_one_crashes(backend):
    def crash() -> analysis.Measurement:
        raise RuntimeError("a bug")

    measured = analysis.measure_all(
        [
            analysis.PreparedCheck("health", lambda: analysis.measure_http(http_check(), backend.health_url)),
            analysis.PreparedCheck("broken", crash),
        ]
    )
    assert [(m.check, m.verdict) for m in measured] == [("health", Verdict.successful), ("broken", Verdict.error)]
    assert "RuntimeError: a bug" in measured[1].detail
