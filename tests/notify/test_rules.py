"""The pure notification rules: delays, rule expansion and its fallbacks, apprise URLs, the throttle, bundles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relia.notify import rules
from relia.notify.rules import ContactInfo, PlannedContact, RuleInfo, SmtpConfig

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SMTP = SmtpConfig(host="smtp.example", port=587, security="starttls", sender="relia@example.com")


@pytest.mark.parametrize(("text", "seconds"), [("0m", 0), ("5m", 300), ("2h", 7200), ("1d", 86400), (" 15m ", 900)])
def test_durations(text, seconds):
    assert rules.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5s", "1h30m", "-5m", "05m", "1.5h", "5M", "m"])
def test_durations_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        rules.parse_duration(text)


def test_format_seconds():
    assert [rules.format_seconds(s) for s in (0, 60, 5400, 86400, 90061)] == [
        "0 min",
        "1 min",
        "1 h 30 min",
        "1 d",
        "1 d 1 h 1 min 1 s",
    ]


METHODS = [ContactInfo("email", "email", "a@example.com"), ContactInfo("phone", "ntfy", "ntfys://ntfy.sh/a")]


def test_rules_in_delay_order():
    found = rules.expand_rules([RuleInfo(0, "phone", 300), RuleInfo(1, "email", 0)], METHODS)
    assert found.planned == [PlannedContact("r1", "email", 0), PlannedContact("r0", "phone", 300)]
    assert found.notes == []


def test_no_rules_means_every_method_at_once():
    found = rules.expand_rules([], METHODS)
    assert found.planned == [PlannedContact("c:email", "email", 0), PlannedContact("c:phone", "phone", 0)]


def test_a_stale_rule_is_skipped_and_never_silences_the_user():
    partly = rules.expand_rules([RuleInfo(0, "gone", 0), RuleInfo(1, "phone", 60)], METHODS)
    assert partly.planned == [PlannedContact("r1", "phone", 60)]
    assert partly.notes == ["rule 1 names contact method 'gone', which no longer exists"]
    wholly = rules.expand_rules([RuleInfo(0, "gone", 0)], METHODS)
    assert [item.contact_method for item in wholly.planned] == ["email", "phone"]
    assert wholly.notes[-1].startswith("no rule names an existing contact method")


def test_nobody_to_reach_without_methods():
    assert rules.expand_rules([RuleInfo(0, "email", 0)], []).planned == []


def test_rule_problems_name_the_methods_there_are():
    assert rules.rule_problems(["email", "sms"], ["email", "phone"]) == [
        (1, "there is no contact method 'sms' (yours: email, phone)")
    ]


@pytest.mark.parametrize(
    ("kind", "address", "destination"),
    [
        ("email", "a@example.com", "mailto:a@example.com"),
        ("webhook", "http://hooks.example:8080/x?y=1", "json://hooks.example:8080/x?y=1"),
        ("webhook", "https://hooks.example/x", "jsons://hooks.example/x"),
        ("webhook", "json://hooks.example/x", "json://hooks.example/x"),
        ("slack", "https://hooks.slack.com/services/T/B/C", "https://hooks.slack.com/services/T/B/C"),
        ("ntfy", "ntfys://ntfy.sh/topic", "ntfys://ntfy.sh/topic"),
        ("apprise", "tgram://bot/chat", "tgram://bot/chat"),
    ],
)
def test_destinations(kind, address, destination):
    assert rules.destination_for(kind, address) == destination


def test_email_goes_through_the_configured_smtp_server_with_its_login():
    url = rules.apprise_url(
        "mailto:ada+pager@acme.example",
        smtp=SmtpConfig("mail.acme.example", 465, "ssl", "relia@acme.example", "relia bot", "p@ss/word"),
    )
    parts = urlsplit(url)
    assert parts.scheme == "mailtos"
    assert parts.netloc == "relia%20bot:p%40ss%2Fword@mail.acme.example:465"
    assert parse_qs(parts.query) == {
        "smtp": ["mail.acme.example"],
        "from": ["relia@acme.example"],
        "to": ["ada+pager@acme.example"],
        "mode": ["ssl"],
    }
    plain = rules.apprise_url("mailto:a@b.example", smtp=SmtpConfig("127.0.0.1", 2525, "none", "r@x.example"))
    assert plain.startswith("mailto://127.0.0.1:2525/?") and "mode=insecure" in plain


def test_json_webhooks_carry_the_idempotency_key_as_a_header():
    url = rules.apprise_url("json://hooks.example/x?a=1", smtp=SMTP, idempotency_key="notify:page:1")
    assert parse_qs(urlsplit(url).query) == {"a": ["1"], "+Idempotency-Key": ["notify:page:1"]}
    assert rules.apprise_url("slack://T/B/C", smtp=SMTP, idempotency_key="k") == "slack://T/B/C"


def test_the_throttle_holds_back_past_the_limit_never_drops():
    window = timedelta(minutes=1)
    sent: list[datetime] = []
    slots = []
    for second in range(0, 12):
        now = T0 + timedelta(seconds=second)
        slot = rules.throttle_slot(sent, now, limit=3, window=window)
        sent = rules.remember_slot(sent, slot, limit=3)
        slots.append(slot)
    assert slots[:3] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    assert slots[3] == T0 + window, "the fourth waits until the first leaves the window"
    assert slots[5] == T0 + window + timedelta(seconds=2)
    assert slots[6] == T0 + 2 * window


@given(
    st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=120),
)
def test_throttled_slots_never_exceed_the_limit_in_any_window(arrivals, limit, window_seconds):
    window = timedelta(seconds=window_seconds)
    sent: list[datetime] = []
    slots = []
    for offset in sorted(arrivals):
        now = T0 + timedelta(seconds=offset)
        slot = rules.throttle_slot(sent, now, limit=limit, window=window)
        assert slot >= now
        sent = rules.remember_slot(sent, slot, limit=limit)
        slots.append(slot)
    slots.sort()
    for index in range(len(slots) - limit):
        assert slots[index + limit] - slots[index] >= window


def test_bundle_text_lists_every_page():
    one = rules.bundle_text(
        [{"title": "Checkout down", "service": "checkout", "groupId": 7, "step": 1, "repeat": 0, "link": "http://x/7"}]
    )
    assert one[0] == "[Relia] Checkout down"
    assert "- Checkout down (checkout; group #7, escalation step 1)" in one[1]
    many = rules.bundle_text(
        [
            {
                "title": f"Problem {n}",
                "service": f"svc-{n % 5}",
                "groupId": n,
                "step": 2,
                "repeat": 1,
                "reminder": n == 3,
            }
            for n in range(8)
        ]
    )
    assert many[0] == "[Relia] 8 alert groups need you (svc-0, svc-1, svc-2 and 2 more)"
    assert many[1].count("\n- ") == 8
    assert "group #3, escalation step 2, repeat 1) - reminder" in many[1]
    assert rules.can_join_bundle(49, bundle_max=50) and not rules.can_join_bundle(50, bundle_max=50)
