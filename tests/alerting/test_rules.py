"""The pure alerting rules: timestamps, durations, matchers, fingerprints, normalisation per source, routing,
grouping keys and windows, silences, and the group state machine. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relia.alerting import rules
from tests.alerting.support import AM_GOALERT, AM_ONCALL, GRAFANA_12, GRAFANA_DOCS, PD_TRIGGER, payload

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-08-08T14:32:08.326990857Z", datetime(2020, 8, 8, 14, 32, 8, 326990, tzinfo=UTC)),
        ("2015-07-17T08:42:58.315+0000", datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)),
        ("2021-10-12T09:51:03.157076+02:00", datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)),
        ("2026-03-02 09:00:00", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (17, None),
    ],
)
def test_timestamps_are_read_leniently(text, expected):
    assert rules.parse_timestamp(text) == expected


def test_durations_round_trip():
    assert rules.parse_duration("90m") == timedelta(minutes=90)
    assert rules.format_duration(timedelta(hours=2)) == "2h"
    assert rules.format_duration(timedelta(minutes=90)) == "90m"
    assert rules.format_duration(timedelta(days=14)) == "2w"
    for bad in ("0m", "1.5h", "h", "10y", "-1h"):
        with pytest.raises(ValueError):
            rules.parse_duration(bad)


# ---------------------------------------------------------------------------------------------- matchers


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('team!="payments"', {}, True),  # a missing label counts as empty
        ('team!=""', {}, False),
        ('team=~"pay.*"', {"team": "payments"}, True),
        ('team=~"pay"', {"team": "payments"}, False),  # anchored, as in Alertmanager
        ('team!~"pay.*|search"', {"team": "search"}, False),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
)
def test_matchers_follow_alertmanager(text, labels, expected):
    assert rules.parse_matcher(text).matches(labels) is expected


def test_matchers_print_canonically_and_refuse_nonsense():
    assert str(rules.parse_matcher(" team = payments ")) == 'team="payments"'
    assert str(rules.parse_matcher('env=~"prod|stage"')) == 'env=~"prod|stage"'
    for bad in ("team", "1team=x", 'team=~"("', 'team="unclosed', 'team=a"b'):
        with pytest.raises(ValueError):
            rules.parse_matcher(bad)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(max_size=20), max_size=6))
def test_a_matcher_printed_and_parsed_again_means_the_same(labels):
    for name, value in labels.items():
        matcher = rules.parse_matcher(str(rules.Matcher(name, "=", value)))
        assert matcher.matches(labels)


# ------------------------------------------------------------------------------------------ fingerprints


@pytest.mark.parametrize("name", [AM_GOALERT, AM_ONCALL])
def test_fingerprints_are_computed_exactly_as_alertmanager_does(name):
    for alert in payload(name)["alerts"]:
        assert rules.label_fingerprint(alert["labels"]) == alert["fingerprint"]


def test_severity_words_map_to_pagerduty_severities():
    assert [rules.severity_of(word) for word in ("critical", "page", "P2", "warn", "ticket", "info", None, "?")] == [
        "critical",
        "critical",
        "error",
        "warning",
        "warning",
        "info",
        "error",
        "error",
    ]
    assert rules.higher_severity("warning", "critical") == "critical"


# -------------------------------------------------------------------------------------------- normalising


def test_alertmanager_message_normalised():
    batch = rules.normalise_alertmanager(payload(AM_GOALERT), source="alertmanager")
    first = batch.alerts[0]
    assert (first.dedup_key, first.status, first.severity) == ("791cec13fcba0368", "firing", "critical")
    assert first.summary == "Instance 127.0.0.1:9090 down"
    assert first.source_group == "{}:{}"
    assert first.starts_at == datetime(2020, 8, 8, 14, 32, 8, 326990, tzinfo=UTC)
    assert first.ends_at is None  # Go's zero time
    assert first.links[0].text == "Source"


def test_summary_falls_back_to_title_then_alertname():
    batch = rules.normalise_alertmanager(payload(AM_ONCALL), source="alertmanager")
    assert batch.alerts[0].summary == "Instance localhost:8081 down"
    message = payload(AM_ONCALL)
    message["alerts"][0]["annotations"] = {}
    assert rules.normalise_alertmanager(message, source="alertmanager").alerts[0].summary == (
        "InstanceDown on localhost:8081"
    )


def test_grafana_extras_and_relative_links():
    batch = rules.normalise_alertmanager(payload(GRAFANA_12), source="grafana")
    alert = batch.alerts[0]
    assert {link.text: link.href for link in alert.links}["Source"] == "https://grafana.example.com/?orgId=1"
    assert alert.details["values"] == {"B": 22, "C": 1}
    docs = rules.normalise_alertmanager(payload(GRAFANA_DOCS), source="grafana")
    assert [alert.labels["zone"] for alert in docs.alerts] == ["us-1", "eu-1"]


def test_unsafe_links_are_dropped():
    assert rules.safe_link("javascript:alert(1)", "x") is None
    assert rules.safe_link("/relative", "x") is None  # no base to resolve it against
    assert rules.safe_link("/d/x", "x", "https://grafana.example/").href == "https://grafana.example/d/x"


def test_invalid_alertmanager_messages_name_each_problem():
    with pytest.raises(rules.PayloadInvalid) as raised:
        rules.normalise_alertmanager({"alerts": [{"status": "maybe"}, "nope"]}, source="alertmanager")
    assert [path for path, _ in raised.value.problems] == ["body.alerts.0.status", "body.alerts.1"]


def test_pagerduty_events_normalised_and_refused_in_pagerdutys_words():
    event = rules.normalise_pagerduty(payload(PD_TRIGGER))
    assert (event.action, event.dedup_key) == ("trigger", "srv01/mysql")
    assert event.alert is not None and event.alert.labels["component"] == "mysql"
    with pytest.raises(rules.PayloadInvalid) as raised:
        rules.normalise_pagerduty({"event_action": "trigger", "payload": {"summary": "s", "severity": "x"}})
    assert [message for _, message in raised.value.problems] == [
        "'payload.source' is missing or blank",
        "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')",
    ]


def test_text_is_made_storable():
    assert rules.clean_text("a\x00b", 10) == "a\ufffdb"
    assert rules.clean_text("x" * 20, 10) == "x" * 9 + "…"
    assert rules.clean_labels({"n": 3, "none": None, "ok": "v"}) == {"n": "3", "ok": "v"}


# ---------------------------------------------------------------------------------------- routing, groups


def _route(name: str, order: int, integration_id: int | None, matchers: list[str], service_id: int) -> rules.Route:
    return rules.Route(name, order, integration_id, tuple(rules.parse_matcher(m) for m in matchers), service_id)


def test_the_first_matching_route_wins_integration_rules_first():
    routes = rules.sort_routes(
        [
            _route("global-critical", 1, None, ['severity="critical"'], 30),
            _route("payments", 20, 7, ['team="payments"'], 10),
            _route("payments-db", 10, 7, ['team="payments"', 'component="db"'], 11),
        ]
    )
    assert [route.name for route in routes] == ["payments-db", "payments", "global-critical"]
    assert rules.choose_service(routes, 7, {"team": "payments", "component": "db"}, 99) == (11, "payments-db")
    assert rules.choose_service(routes, 7, {"team": "payments", "severity": "critical"}, 99) == (10, "payments")
    assert rules.choose_service(routes, 8, {"team": "payments", "severity": "critical"}, 99) == (30, "global-critical")
    assert rules.choose_service(routes, 8, {"team": "search"}, 99) == (99, None)


def test_group_keys():
    alert = rules.IncomingAlert("fp", "firing", "s", labels={"alertname": "A", "cluster": "eu"}, source_group="{}:{}")
    by_labels, shown = rules.group_key(alert, ["alertname", "cluster"], 1)
    assert shown == {"alertname": "A", "cluster": "eu"}
    assert by_labels == rules.group_key(alert, ["alertname", "cluster"], 2)[0]  # across integrations
    sender, _ = rules.group_key(alert, None, 1)
    assert sender != rules.group_key(alert, None, 2)[0]  # the sender's grouping stays within the integration
    alone = rules.IncomingAlert("fp", "firing", "s")
    assert rules.group_key(alone, None, 1)[0] != sender


def test_window():
    assert rules.within_window(NOW - timedelta(minutes=59), NOW, timedelta(hours=1))
    assert not rules.within_window(NOW - timedelta(hours=1), NOW, timedelta(hours=1))


def test_silences():
    silence = rules.SilenceRule(
        1, "db-maintenance", 5, (rules.parse_matcher('component="db"'),), NOW, NOW + timedelta(hours=1)
    )
    whole_service = rules.SilenceRule(2, "window", 5, (), NOW, NOW + timedelta(hours=2))
    assert rules.silence_state(NOW, NOW + timedelta(hours=1), NOW - timedelta(seconds=1)) == "pending"
    assert rules.silence_state(NOW, NOW + timedelta(hours=1), NOW) == "active"
    assert rules.silence_state(NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=1)) == "expired"
    assert rules.silencing([silence], 5, {"component": "db"}, NOW) is silence
    assert rules.silencing([silence], 6, {"component": "db"}, NOW) is None
    assert rules.silencing([silence], 5, {"component": "web"}, NOW) is None
    # The one ending last is named in the record.
    assert rules.silencing([silence, whole_service], 5, {"component": "db"}, NOW) is whole_service


def test_group_state_machine():
    assert rules.next_state("triggered", "acknowledge") == "acknowledged"
    assert rules.next_state("acknowledged", "acknowledge") == "acknowledged"
    assert rules.next_state("snoozed", "wake") == "triggered"
    assert rules.next_state("resolved", "resolve") == "resolved"
    for state, action in (("resolved", "acknowledge"), ("resolved", "snooze"), ("triggered", "wake")):
        with pytest.raises(rules.TransitionRefused):
            rules.next_state(state, action)  # type: ignore[arg-type]


def test_snooze_bounds():
    assert rules.snooze_until(NOW, duration=timedelta(hours=1), until=None) == NOW + timedelta(hours=1)
    for kwargs in (
        {"duration": None, "until": None},
        {"duration": timedelta(days=8), "until": None},
        {"duration": None, "until": NOW - timedelta(minutes=1)},
    ):
        with pytest.raises(ValueError):
            rules.snooze_until(NOW, **kwargs)
