"""PromQL checks and the rewrites importers use to put foreign queries over ``{{.window}}``. No database."""

from __future__ import annotations

import pytest

from relia.slo import promql
from relia.slo.promql import PromQLRewriteError


@pytest.mark.parametrize(
    "query",
    [
        'sum(rate(http_requests_total{job="api",code!~"5.."}[{{.window}}]))',
        "sum(rate(http_requests_total[{{ .window }}]))",
        "sum(rate(x[{{.window}}])) / sum(rate(y[{{.window}}]))",
        "1 - (sum(sum_over_time(ratio[{{.window}}])) / sum(count_over_time(ratio[{{.window}}])))",
        "probe_success",
        'probe_success{job="blackbox"}',
        "histogram_fraction(0, 0.2, sum(rate(x[{{.window}}]))) * histogram_count(sum(rate(x[{{.window}}])))",
        "avg_over_time((sum(x) / sum(y))[{{.window}}:])",
        "sum by (code) (rate(x[5m]))",
        "(api_server_requestMsec) > bool 200",
    ],
)
def test_valid_queries_pass(query):
    assert promql.check(query) is None


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sum(rate(x[{{.window}}])", "unclosed left parenthesis"),
        ("rate(x)", "expected type matrix"),
        ('x{job="api"', "inside braces"),
        ("sum(rate(x[{{.interval}}]))", "only the template variable {{.window}}"),
        ("", "empty"),
        ("   ", "empty"),
        ("x and bool y", "bool modifier"),
        ("x" * 10_001, "longer than"),
    ],
)
def test_invalid_queries_name_the_reason(query, reason):
    problem = promql.check(query)
    assert problem is not None
    assert reason in problem


def test_the_window_variable_is_found_in_either_spelling():
    assert promql.has_window("rate(x[{{.window}}])")
    assert promql.has_window("rate(x[{{ .window }}])")
    assert not promql.has_window("rate(x[5m])")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Bare selectors: the rate is taken per series, before the aggregation.
        (
            'sum(http_requests{cluster="prod",code=~"2xx|4xx"})',
            'sum(rate(http_requests{cluster="prod",code=~"2xx|4xx"}[{{.window}}]))',
        ),
        ("sum by (job) (x) / sum(y)", "sum by (job) (rate(x[{{.window}}])) / sum(rate(y[{{.window}}]))"),
        ("sum(x) by (job)", "sum(rate(x[{{.window}}])) by (job)"),
        ('{__name__="x"}', 'rate({__name__="x"}[{{.window}}])'),
        # Existing ranges of rate/increase become the window; increase (a count) becomes rate (per second).
        ("sum(rate(x[5m]))", "sum(rate(x[{{.window}}]))"),
        ('sum(increase(x{path="a[5m]"}[1h]))', 'sum(rate(x{path="a[5m]"}[{{.window}}]))'),
        # Escapes in matchers are kept as written.
        (r'sum(x{path=~"a\\.b"})', r'sum(rate(x{path=~"a\\.b"}[{{.window}}]))'),
        # A query that already has the variable is left alone.
        ("sum(rate(x[{{ .window }}]))", "sum(rate(x[{{ .window }}]))"),
    ],
)
def test_a_counter_becomes_a_rate_over_the_window(query, expected):
    rewritten = promql.rate_over_window(query, counter=True)
    assert rewritten == expected
    assert promql.check(rewritten) is None


def test_a_gauge_that_is_a_rate_is_averaged_over_the_window():
    assert promql.rate_over_window('job:requests:rate5m{job="a"}', counter=False) == (
        'avg_over_time(job:requests:rate5m{job="a"}[{{.window}}])'
    )
    assert promql.rate_over_window("sum(avg_over_time(x[5m]))", counter=False) == ("sum(avg_over_time(x[{{.window}}]))")


@pytest.mark.parametrize(
    ("query", "counter", "reason"),
    [
        ("sum(rate(x[5m] offset 1h))", True, "offset and @"),
        ("sum(x @ 1700000000)", True, "offset and @"),
        ("rate(x[5m:])", True, "subqueries"),
        ("rate(x[5m:1m])", True, "subqueries"),
        ("sum(irate(x[5m]))", True, "irate()"),
        ("sum(rate(x[5m])) + sum(y)", True, "some selectors have a range"),
        ("sum(rate(x[5m]))", False, "rate()"),
        ("vector(1)", True, "selects no series"),
        ("sum(x", True, "not valid PromQL"),
    ],
)
def test_what_cannot_be_rewritten_with_certainty_is_refused(query, counter, reason):
    with pytest.raises(PromQLRewriteError) as raised:
        promql.rate_over_window(query, counter=counter)
    assert reason in str(raised.value)


def test_a_ratio_keeps_its_shape_over_the_window():
    assert promql.ratio_over_window("sum(rate(e[5m])) / sum(rate(t[5m]))") == (
        "sum(rate(e[{{.window}}])) / sum(rate(t[{{.window}}]))"
    )
    # A ratio gauge is averaged over the window as a subquery.
    assert promql.ratio_over_window("sum(up) / count(up)") == "avg_over_time((sum(up) / count(up))[{{.window}}:])"
    with pytest.raises(PromQLRewriteError, match="offset"):
        promql.ratio_over_window("up offset 5m")


def test_a_single_selector_is_recognised_with_its_matchers_as_written():
    selector = promql.vector_selector('caddy_http_response_duration_seconds_bucket{job="caddy", le="0.05"}')
    assert selector is not None
    assert selector.name == "caddy_http_response_duration_seconds_bucket"
    assert selector.matchers == 'job="caddy", le="0.05"'
    assert selector.label_value("le") == "0.05"
    assert selector.without("le") == {("job", "=", "caddy")}
    assert promql.vector_selector("up").matchers == ""  # type: ignore[union-attr]
    for not_one in ("sum(x)", '{job="a"}', "x offset 5m", "rate(x[5m])", "x{"):
        assert promql.vector_selector(not_one) is None


def test_comparisons_and_metric_names():
    assert promql.comparison("lag", "lte", 500) == "(lag) <= bool 500"
    assert promql.comparison(" lag ", "gt", 0.25) == "(lag) > bool 0.25"
    with pytest.raises(PromQLRewriteError):
        promql.comparison("lag", "eq", 1)
    assert promql.metric_names("sum(rate(a_total[{{.window}}])) / sum(b)") == {"a_total", "b"}
    assert promql.metric_names("sum(") == set()
