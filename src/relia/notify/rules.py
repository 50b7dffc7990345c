"""Pure notification logic: a user's rules expanded into contact attempts, contact methods turned into apprise
URLs, the per-destination throttle, and bundle contents. No I/O, no database, no clock: the service passes
``now`` and the settings, and stores what these return.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

# -------------------------------------------------------------------------------------------- durations

DURATION = re.compile(r"^(0|[1-9][0-9]{0,5})(m|h|d)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``"5m"``, ``"2h"``, ``"1d"`` (``"0m"`` for "at once") in seconds; anything else is a ValueError."""
    match = DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use a whole number of minutes, hours or days (5m, 2h, 1d)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_seconds(seconds: int) -> str:
    """The shortest exact form people read: 0 min, 5 min, 1 h 30 min, 2 d."""
    if seconds <= 0:
        return "0 min"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    if secs:
        parts.append(f"{secs} s")
    return " ".join(part for part in parts if part)


# ------------------------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class ContactInfo:
    name: str
    kind: str
    address: str


@dataclass(frozen=True)
class RuleInfo:
    position: int
    contact_method: str
    delay: int  # seconds after the escalation step that pages the user


@dataclass(frozen=True)
class PlannedContact:
    """One contact attempt for one page: ``key`` tells attempts of the same page apart (rule position, or the
    contact method when the user has no usable rules) and goes into the notification's idempotency key."""

    key: str
    contact_method: str
    delay: int


@dataclass(frozen=True)
class Expansion:
    planned: list[PlannedContact]
    notes: list[str]


def expand_rules(rules: Sequence[RuleInfo], methods: Sequence[ContactInfo]) -> Expansion:
    """The contact attempts for one page of one user.

    With rules, each rule whose contact method still exists, at its delay. Without rules (or when none of them
    names an existing method) every contact method at once: a user who never set rules must still be reached,
    and a stale rule must not silence them."""
    names = {method.name for method in methods}
    notes = [
        f"rule {rule.position + 1} names contact method {rule.contact_method!r}, which no longer exists"
        for rule in rules
        if rule.contact_method not in names
    ]
    usable = [rule for rule in rules if rule.contact_method in names]
    if usable:
        planned = [PlannedContact(f"r{rule.position}", rule.contact_method, rule.delay) for rule in usable]
        return Expansion(sorted(planned, key=lambda item: (item.delay, item.key)), notes)
    if rules and methods:
        notes.append("no rule names an existing contact method: every contact method is notified at once")
    return Expansion([PlannedContact(f"c:{method.name}", method.name, 0) for method in methods], notes)


def rule_problems(contact_methods: Sequence[str], available: Sequence[str]) -> list[tuple[int, str]]:
    """(index, message) for rules naming a contact method the user does not have."""
    known = set(available)
    hint = ", ".join(sorted(known)) or "none yet; add one to your profile first"
    return [
        (index, f"there is no contact method {name!r} (yours: {hint})")
        for index, name in enumerate(contact_methods)
        if name not in known
    ]


# ------------------------------------------------------------------------------------------ destinations


def destination_for(kind: str, address: str) -> str:
    """What a notification is sent to, as stored in the outbox: ``mailto:<address>`` for email (the SMTP server
    and its credentials are added at delivery from the settings, so no secret is stored with the message), a
    ``json://`` apprise URL for plain HTTP webhooks, and the apprise (or vendor) URL as given otherwise."""
    if kind == "email":
        return f"mailto:{address}"
    if kind == "webhook":
        scheme, rest = address.split("://", 1) if "://" in address else ("", address)
        if scheme.lower() == "http":
            return f"json://{rest}"
        if scheme.lower() == "https":
            return f"jsons://{rest}"
    return address


def destination_key(destination: str) -> str:
    """A fixed-length key for per-destination state (throttle, open bundle): addresses can be long URLs."""
    return hashlib.sha256(destination.encode()).hexdigest()


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "none", "starttls" or "ssl"
    sender: str
    username: str | None = None
    password: str | None = None


_APPRISE_MODES = {"none": "insecure", "starttls": "starttls", "ssl": "ssl"}


def apprise_url(destination: str, *, smtp: SmtpConfig, idempotency_key: str | None = None) -> str:
    """The apprise URL that delivers to ``destination``.

    Email goes through the configured SMTP server (``mailto://`` in plain text, ``mailtos://`` with STARTTLS or
    TLS). JSON webhooks carry the message's idempotency key as an ``Idempotency-Key`` header, as the outbox's
    own webhook channel does, so a receiver can drop a redelivered message."""
    if destination.startswith("mailto:") and "://" not in destination:
        recipient = destination.removeprefix("mailto:")
        scheme = "mailto" if smtp.security == "none" else "mailtos"
        credentials = ""
        if smtp.username:
            credentials = quote(smtp.username, safe="")
            if smtp.password:
                credentials += ":" + quote(smtp.password, safe="")
            credentials += "@"
        query = urlencode(
            {"smtp": smtp.host, "from": smtp.sender, "to": recipient, "mode": _APPRISE_MODES[smtp.security]}
        )
        return f"{scheme}://{credentials}{smtp.host}:{smtp.port}/?{query}"
    parts = urlsplit(destination)
    if parts.scheme.lower() in {"json", "jsons"} and idempotency_key:
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)]
        query.append(("+Idempotency-Key", idempotency_key))
        return urlunsplit(parts._replace(query=urlencode(query)))
    return destination


# --------------------------------------------------------------------------------------------- throttle


def throttle_slot(recent: Sequence[datetime], now: datetime, *, limit: int, window: timedelta) -> datetime:
    """The earliest instant, not before ``now``, at which one more message to a destination keeps it to at most
    ``limit`` messages in any ``window``. ``recent`` holds the send times already given out (some may lie in
    the future: messages held back by this throttle). Later messages are delayed, never dropped."""
    ordered = sorted(recent)
    if len(ordered) < limit:
        return now
    return max(now, ordered[-limit] + window)


def remember_slot(recent: Sequence[datetime], slot: datetime, *, limit: int) -> list[datetime]:
    """The send times to keep after giving out ``slot``: only the latest ``limit`` ever matter."""
    return sorted([*recent, slot])[-limit:]


# ---------------------------------------------------------------------------------------------- bundles


def can_join_bundle(items_in_message: int, *, bundle_max: int) -> bool:
    return items_in_message < bundle_max


def bundle_text(items: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Title and body of a message listing one or more pages. Each item: ``title``, ``service``, ``groupId``,
    ``step`` (1-based), ``repeat``, ``link``, and ``reminder`` when the user's rules repeat a page later."""
    if len(items) == 1:
        item = items[0]
        title = f"[Relia] {item['title']}"
    else:
        services = sorted({str(item["service"]) for item in items})
        shown = ", ".join(services[:3]) + (f" and {len(services) - 3} more" if len(services) > 3 else "")
        title = f"[Relia] {len(items)} alert groups need you ({shown})"
    lines = []
    for item in items:
        where = f"group #{item['groupId']}, escalation step {item['step']}"
        if item.get("repeat"):
            where += f", repeat {item['repeat']}"
        line = f"- {item['title']} ({item['service']}; {where})"
        if item.get("reminder"):
            line += " - reminder"
        lines.append(line)
        if item.get("link"):
            lines.append(f"  {item['link']}")
    intro = "You are being paged." if len(items) == 1 else f"You are being paged for {len(items)} alert groups."
    return title, "\n".join([intro, "", *lines, "", "Acknowledge in Relia to stop further notifications."])
