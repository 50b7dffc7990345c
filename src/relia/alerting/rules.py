"""Pure alerting logic: no I/O, no database, no clock (``now`` is always given).

* Payload normalisation per source: Alertmanager webhook v4, Grafana webhook v1 (the same shape plus extras),
  PagerDuty Events API v2 and Relia's own SLO burn alerts all become ``IncomingAlert`` values.
* Identity: Alertmanager's fingerprint (recomputed exactly as Alertmanager does when a sender leaves it out),
  PagerDuty's ``dedup_key``, a content hash for the generic webhook.
* Label matchers in Alertmanager's syntax (``name="value"``, ``!=``, ``=~``, ``!~``) for routing rules and
  silences; routing (first matching rule wins), grouping keys and windows, silence states.
* The alert group state machine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

# ------------------------------------------------------------------------------------------------ limits

SUMMARY_LIMIT = 1024  # PagerDuty's limit for payload.summary; other sources are cut to it
DEDUP_KEY_LIMIT = 255  # PagerDuty's limit for dedup_key
LABEL_LIMIT = 1024  # longest label or annotation value kept (longer ones are cut, never refused)
ANNOTATION_LIMIT = 10_000
MAX_LABELS = 200
MAX_LINKS = 20

SEVERITIES = ("critical", "error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(reversed(SEVERITIES))}  # info 0 ... critical 3
DEFAULT_SEVERITY = "error"
# Words senders use in a `severity` label, mapped to the four PagerDuty severities.
_SEVERITY_WORDS = {
    "critical": "critical",
    "crit": "critical",
    "page": "critical",
    "p1": "critical",
    "high": "critical",
    "emergency": "critical",
    "fatal": "critical",
    "error": "error",
    "err": "error",
    "major": "error",
    "p2": "error",
    "warning": "warning",
    "warn": "warning",
    "ticket": "warning",
    "minor": "warning",
    "medium": "warning",
    "p3": "warning",
    "info": "info",
    "informational": "info",
    "low": "info",
    "none": "info",
    "debug": "info",
    "p4": "info",
    "p5": "info",
}

AlertStatus = Literal["firing", "resolved", "acknowledged"]


def severity_of(word: str | None) -> str:
    return _SEVERITY_WORDS.get((word or "").strip().lower(), DEFAULT_SEVERITY)


def higher_severity(first: str, second: str) -> str:
    return first if SEVERITY_RANK.get(first, 0) >= SEVERITY_RANK.get(second, 0) else second


# -------------------------------------------------------------------------------------------------- text


def clean_text(value: Any, limit: int) -> str:
    """A string fit to store on both databases: NUL (PostgreSQL refuses it) becomes U+FFFD, and the text is
    cut to ``limit`` characters. Senders are never refused for such details: Alertmanager does not retry a
    4xx, so refusing would lose the alert."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_json(value: Any, depth: int = 0) -> Any:
    """Free-form details (PagerDuty's custom_details, Grafana's values) made storable: NUL replaced in
    every string and key, nesting cut at 20 levels."""
    if depth > 20:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, Mapping):
        return {clean_text(key, 200): clean_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item, depth + 1) for item in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return clean_text(value, LABEL_LIMIT)


def clean_labels(labels: Any, limit: int = LABEL_LIMIT) -> dict[str, str]:
    """A mapping of strings to strings, whatever came in (non-string values become their JSON text)."""
    if not isinstance(labels, Mapping):
        return {}
    cleaned: dict[str, str] = {}
    for key, value in list(labels.items())[:MAX_LABELS]:
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
        cleaned[clean_text(key, 200)] = clean_text(text, limit)
    return cleaned


# -------------------------------------------------------------------------------------------------- time

_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")
_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 / RFC 3339 time, read leniently: ``Z``, ``+0000`` (PagerDuty's own example), nanoseconds
    (Go), a space instead of ``T``, no zone (taken as UTC). Go's zero time (``0001-01-01T00:00:00Z``, what
    Alertmanager sends as the end of a firing alert) and anything unreadable are None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text)
    # Python reads at most microseconds: cut longer fractions (Go sends nanoseconds).
    text = _FRACTION.sub(lambda found: "." + found.group(1)[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_DURATION = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``4h``, ``7d``, ``2w``."""
    found = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a duration: a whole number and s, m, h, d or w (e.g. 30m, 4h, 7d)")
    return timedelta(seconds=int(found.group(1)) * _UNIT_SECONDS[found.group(2)])


def format_duration(delta: timedelta) -> str:
    """The shortest of the units above that is exact: 90 minutes is ``90m``, 2 hours ``2h``."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------------------------------------- matchers

MatchOp = Literal["=", "!=", "=~", "!~"]
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.S)


@dataclass(frozen=True)
class Matcher:
    """One label matcher, as in Alertmanager: regular expressions are anchored at both ends, and a label the
    alert does not have counts as the empty string (so ``team!=""`` means "has a team label")."""

    name: str
    op: MatchOp
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matcher(text: str) -> Matcher:
    """``severity="critical"``, ``team=~"pay.*"``, ``env!=staging`` (quotes optional, as in amtool)."""
    found = _MATCHER.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(
            f'{text!r} is not a label matcher: write name="value", name!="value", name=~"regex" or name!~"regex"'
        )
    name, op, raw = found.group(1), found.group(2), found.group(3)
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{text!r}: the quoted value is not a valid string ({exc.args[0]})") from None
        if not isinstance(value, str):
            raise ValueError(f"{text!r}: the value must be a string")
    elif '"' in raw:
        raise ValueError(f"{text!r}: a value with quotes must be quoted as a whole")
    else:
        value = raw
    if len(value) > LABEL_LIMIT:
        raise ValueError(f"{text!r}: the value is longer than {LABEL_LIMIT} characters")
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: not a valid regular expression ({exc})") from None
    return Matcher(name=name, op=op, value=value, pattern=pattern)  # type: ignore[arg-type]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)


def is_label_name(text: str) -> bool:
    return bool(_LABEL_NAME.match(text))


# ----------------------------------------------------------------------------------------- incoming alerts


@dataclass(frozen=True)
class Link:
    href: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"href": self.href, "text": self.text}


@dataclass
class IncomingAlert:
    """One alert as a source reported it, in Relia's terms. ``dedup_key`` is the alert's identity within its
    integration; ``source_group`` is how the sender grouped it (Alertmanager's groupKey)."""

    dedup_key: str
    status: AlertStatus
    summary: str
    severity: str = DEFAULT_SEVERITY
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    source_group: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """Everything one request reported. ``truncated`` is how many alerts the sender itself left out
    (Alertmanager's and Grafana's ``max_alerts``): recorded, since nothing may be dropped silently."""

    source: str
    alerts: list[IncomingAlert]
    truncated: int = 0
    external_url: str | None = None


class PayloadInvalid(ValueError):
    """The body cannot be read as this source's payload. ``problems`` are (path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


def safe_link(href: Any, text: str, base: str | None = None) -> Link | None:
    """A link worth showing: http(s) only (a ``javascript:`` URL would run in our pages), relative ones
    resolved against the sender's external URL (Grafana 12 test alerts send ``?orgId=1``)."""
    if not isinstance(href, str) or not href.strip():
        return None
    href = href.strip()
    if base and not urlsplit(href).scheme:
        if not urlsplit(base).scheme:
            return None
        href = urljoin(base if base.endswith("/") else base + "/", href)
    if urlsplit(href).scheme.lower() not in ("http", "https") or len(href) > 4000:
        return None
    return Link(href=clean_text(href, 4000), text=clean_text(text or href, 200))


def _unique_links(links: Iterable[Link | None]) -> list[Link]:
    seen: set[str] = set()
    out: list[Link] = []
    for link in links:
        if link is not None and link.href not in seen:
            seen.add(link.href)
            out.append(link)
    return out[:MAX_LINKS]


# FNV-1a, 64 bits: what Alertmanager's model.LabelSet.Fingerprint() uses, so a fingerprint computed here for a
# sender that left it out equals the one Alertmanager would have sent.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_LABEL_SEPARATOR = b"\xff"


def label_fingerprint(labels: Mapping[str, str]) -> str:
    if not labels:
        return format(_FNV_OFFSET, "016x")
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name.encode(), _LABEL_SEPARATOR, labels[name].encode(), _LABEL_SEPARATOR):
            for byte in part:
                value ^= byte
                value = (value * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return format(value, "016x")


def short_hash(*parts: str, length: int = 32) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:length]


def bounded_key(text: str, limit: int = DEDUP_KEY_LIMIT) -> str:
    """Keys longer than the column are replaced by a hash of themselves (stable, so dedup still works)."""
    return text if len(text) <= limit else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _summary_of(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    for key in ("summary", "title", "message", "description"):
        if annotations.get(key, "").strip():
            return annotations[key].strip()
    name = labels.get("alertname", "").strip()
    instance = labels.get("instance", "").strip()
    if name and instance:
        return f"{name} on {instance}"
    return name or "Alert"


def _problem_if_not(kind: type | tuple[type, ...], value: Any, path: str, what: str) -> list[tuple[str, str]]:
    return [] if isinstance(value, kind) else [(path, f"must be {what}")]


def normalise_alertmanager(message: Any, *, source: Literal["alertmanager", "grafana"]) -> Batch:
    """An Alertmanager webhook (version "4") or Grafana webhook (version "1") message. Each alert's own
    ``status`` decides firing or resolved (the message's ``status`` is "firing" when any one fires). Fields
    this code does not know (``notification_reason``, ``routeLabels``, ``appVersion``, ...) are ignored."""
    if not isinstance(message, Mapping):
        raise PayloadInvalid([("body", "must be a JSON object")])
    problems: list[tuple[str, str]] = []
    alerts = message.get("alerts")
    problems += _problem_if_not(list, alerts, "body.alerts", "a list of alerts")
    external_url = message.get("externalURL") if isinstance(message.get("externalURL"), str) else None
    group_key = message.get("groupKey")
    source_group = bounded_key(group_key) if isinstance(group_key, str) and group_key else None
    truncated = message.get("truncatedAlerts")
    truncated = truncated if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0 else 0
    out: list[IncomingAlert] = []
    for index, item in enumerate(alerts if isinstance(alerts, list) else []):
        path = f"body.alerts.{index}"
        if not isinstance(item, Mapping):
            problems.append((path, "must be an object"))
            continue
        status = item.get("status")
        if status not in ("firing", "resolved"):
            problems.append((f"{path}.status", 'must be "firing" or "resolved"'))
            continue
        labels_raw = item.get("labels", {})
        annotations_raw = item.get("annotations", {})
        if not isinstance(labels_raw, Mapping) or not isinstance(annotations_raw, Mapping):
            problems.append((f"{path}.labels", "labels and annotations must be objects"))
            continue
        labels = clean_labels(labels_raw)
        annotations = clean_labels(annotations_raw, ANNOTATION_LIMIT)
        fingerprint = item.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint.strip():
            fingerprint = label_fingerprint(labels)
        links = [
            safe_link(item.get("generatorURL"), "Source", external_url),
            safe_link(annotations.get("runbook_url"), "Runbook"),
            safe_link(annotations.get("dashboard_url") or annotations.get("dashboard"), "Dashboard"),
        ]
        details: dict[str, Any] = {"fingerprint": fingerprint}
        if source == "grafana":
            links += [
                safe_link(item.get("dashboardURL"), "Dashboard", external_url),
                safe_link(item.get("panelURL"), "Panel", external_url),
                safe_link(item.get("silenceURL"), "Silence in Grafana", external_url),
                safe_link(item.get("imageURL"), "Image", external_url),
            ]
            for key in ("values", "valueString", "orgId"):
                if item.get(key) not in (None, "", {}):
                    details[key] = clean_json(item[key])
        out.append(
            IncomingAlert(
                dedup_key=bounded_key(clean_text(fingerprint.strip(), 10_000)),
                status=status,
                summary=clean_text(_summary_of(labels, annotations), SUMMARY_LIMIT),
                severity=severity_of(labels.get("severity")),
                labels=labels,
                annotations=annotations,
                links=_unique_links(links),
                starts_at=parse_timestamp(item.get("startsAt")),
                ends_at=parse_timestamp(item.get("endsAt")),
                source_group=source_group,
                details=details,
            )
        )
    if problems:
        raise PayloadInvalid(problems)
    return Batch(source=source, alerts=out, truncated=truncated, external_url=external_url)


# ------------------------------------------------------------------------------------------------ PagerDuty

PD_ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass
class PagerDutyEvent:
    """A valid Events API v2 event. ``dedup_key`` is None for a trigger that did not name one: the caller
    makes one up (PagerDuty answers with a new key) and sets it on the alert."""

    action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None
    alert: IncomingAlert | None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalise_pagerduty(event: Any) -> PagerDutyEvent:
    """Validate an event as PagerDuty does; the messages follow PagerDuty's own wording, since clients show
    them (``'payload.summary' is missing or blank``). ``routing_key`` is checked by the caller, first."""
    if not isinstance(event, Mapping):
        raise PayloadInvalid([("body", "Event object must be a JSON object")])
    errors: list[str] = []
    action = event.get("event_action")
    if _missing(action):
        errors.append("'event_action' is missing or blank")
    elif action not in PD_ACTIONS:
        errors.append("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and not isinstance(dedup_key, str):
        errors.append("'dedup_key' must be a string")
        dedup_key = None
    elif isinstance(dedup_key, str) and len(dedup_key) > DEDUP_KEY_LIMIT:
        errors.append(f"'dedup_key' is too long (maximum is {DEDUP_KEY_LIMIT} characters)")
    elif isinstance(dedup_key, str) and "\x00" in dedup_key:
        errors.append("'dedup_key' must not contain NUL characters")
    if action in ("acknowledge", "resolve") and _missing(dedup_key):
        errors.append("'dedup_key' is missing or blank")
    alert = None
    if action == "trigger":
        alert, trigger_errors = _pagerduty_trigger(event, dedup_key if not _missing(dedup_key) else None)
        errors += trigger_errors
    if errors:
        raise PayloadInvalid([("body", message) for message in errors])
    key = dedup_key if isinstance(dedup_key, str) and dedup_key.strip() else None
    return PagerDutyEvent(action=action, dedup_key=key, alert=alert)


def _pagerduty_trigger(event: Mapping[str, Any], dedup_key: str | None) -> tuple[IncomingAlert | None, list[str]]:
    errors: list[str] = []
    payload = event.get("payload")
    if not isinstance(payload, Mapping):
        return None, ["'payload' is missing or blank" if payload is None else "'payload' must be a JSON object"]
    for name in ("summary", "source", "severity"):
        value = payload.get(name)
        if _missing(value):
            errors.append(f"'payload.{name}' is missing or blank")
        elif not isinstance(value, str):
            errors.append(f"'payload.{name}' must be a string")
    summary = payload.get("summary")
    if isinstance(summary, str) and len(summary) > SUMMARY_LIMIT:
        errors.append(f"'payload.summary' is too long (maximum is {SUMMARY_LIMIT} characters)")
    severity = payload.get("severity")
    if isinstance(severity, str) and severity.strip() and severity not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')"
        )
    timestamp = payload.get("timestamp")
    starts_at = None
    if timestamp is not None:
        starts_at = parse_timestamp(timestamp)
        if starts_at is None:
            errors.append("'payload.timestamp' is invalid (must be an ISO 8601 timestamp)")
    for name in ("component", "group", "class"):
        if payload.get(name) is not None and not isinstance(payload.get(name), str):
            errors.append(f"'payload.{name}' must be a string")
    links: list[Link | None] = []
    for list_name, required in (("links", "href"), ("images", "src")):
        items = event.get(list_name)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(f"'{list_name}' must be a list")
            continue
        for index, item in enumerate(items):
            if not isinstance(item, Mapping) or _missing(item.get(required)):
                errors.append(f"'{list_name}[{index}].{required}' is missing or blank")
                continue
            if list_name == "links":
                links.append(safe_link(item.get("href"), str(item.get("text") or "Link")))
            else:
                links.append(safe_link(item.get("href") or item.get("src"), str(item.get("alt") or "Image")))
    for name in ("client", "client_url"):
        if event.get(name) is not None and not isinstance(event.get(name), str):
            errors.append(f"'{name}' must be a string")
    if errors:
        return None, errors
    assert isinstance(summary, str) and isinstance(severity, str)
    labels = {"source": clean_text(payload["source"], LABEL_LIMIT), "severity": severity}
    for name in ("component", "group", "class"):
        if isinstance(payload.get(name), str) and payload[name].strip():
            labels[name] = clean_text(payload[name], LABEL_LIMIT)
    client_link = safe_link(event.get("client_url"), str(event.get("client") or "Client"))
    details: dict[str, Any] = {}
    if payload.get("custom_details") is not None:
        details["custom_details"] = clean_json(payload["custom_details"])
    if isinstance(event.get("client"), str):
        details["client"] = clean_text(event["client"], 200)
    return (
        IncomingAlert(
            dedup_key=dedup_key or "",
            status="firing",
            summary=clean_text(summary, SUMMARY_LIMIT),
            severity=severity,
            labels=labels,
            links=_unique_links([client_link, *links]),
            starts_at=starts_at,
            details=details,
        ),
        [],
    )


# ------------------------------------------------------------------------------------------- generic, SLO


def generic_dedup_key(summary: str, source: str, labels: Mapping[str, str]) -> str:
    """The default identity of a generic alert: its source, summary and labels (so a retried request, or a
    repeat of the same problem, lands on the same alert)."""
    canonical = json.dumps({"source": source, "summary": summary, "labels": dict(sorted(labels.items()))})
    return "auto:" + short_hash(canonical, length=40)


def slo_alert(
    *, slo: str, objective: str, service: str, summary: str, severity_word: str, fired: bool, data: dict[str, Any]
) -> IncomingAlert:
    """Relia's own burn-rate alert on one objective: one alert per (SLO, objective, page|ticket)."""
    return IncomingAlert(
        dedup_key=bounded_key(f"slo/{slo}/{objective}/{severity_word}"),
        status="firing" if fired else "resolved",
        summary=clean_text(summary, SUMMARY_LIMIT),
        severity="critical" if severity_word == "page" else "warning",
        labels={
            "alertname": "SLOBurnRate",
            "slo": slo,
            "objective": objective,
            "severity": severity_word,
            "service": service,
        },
        source_group=f"slo/{slo}/{objective}/{severity_word}",
        details=clean_json(data) if isinstance(data, dict) else {},
    )


# ------------------------------------------------------------------------------------ routing and grouping


@dataclass(frozen=True)
class Route:
    """A routing rule as the router needs it. ``integration_id`` None: the rule applies to every integration."""

    name: str
    order: int
    integration_id: int | None
    matchers: tuple[Matcher, ...]
    service_id: int


def sort_routes(routes: Iterable[Route]) -> list[Route]:
    """Rules of an integration are tried before rules for every integration; within each, by ``order`` then
    name."""
    return sorted(routes, key=lambda route: (route.integration_id is None, route.order, route.name))


def choose_service(
    routes: Sequence[Route], integration_id: int | None, labels: Mapping[str, str], default_service_id: int
) -> tuple[int, str | None]:
    """The service an alert goes to, and the name of the rule that chose it (None: the integration's
    default). ``routes`` come sorted (``sort_routes``); the first that matches wins."""
    for route in routes:
        if route.integration_id not in (None, integration_id):
            continue
        if matches_all(route.matchers, labels):
            return route.service_id, route.name
    return default_service_id, None


GROUP_KEY_LIMIT = 200


def group_key(
    alert: IncomingAlert, group_by: Sequence[str] | None, integration_id: int | None
) -> tuple[str, dict[str, str]]:
    """Which alerts belong together within a service: with ``group_by`` labels, alerts that agree on them
    (from any integration); without, the sender's own grouping (Alertmanager's groupKey) within the
    integration, or else each alert on its own. Returns (key, the labels shown for the group)."""
    if group_by:
        shown = {name: alert.labels.get(name, "") for name in group_by}
        canonical = json.dumps(shown, sort_keys=True, ensure_ascii=False)
        return "labels:" + short_hash(canonical), shown
    scope = f"integration:{integration_id}" if integration_id is not None else "relia"
    if alert.source_group:
        return f"{scope}:group:" + short_hash(alert.source_group), {}
    return f"{scope}:alert:" + short_hash(alert.dedup_key), {}


def within_window(opened_at: datetime, now: datetime, window: timedelta) -> bool:
    """A new alert joins an open group only while the group is younger than its window; later, a new group
    opens (so a long-open group does not swallow a new problem without anyone hearing of it)."""
    return now - opened_at < window


# ---------------------------------------------------------------------------------------------- silences

SilenceState = Literal["pending", "active", "expired"]


@dataclass(frozen=True)
class SilenceRule:
    id: int
    name: str
    service_id: int | None
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime


def silence_state(starts_at: datetime, ends_at: datetime, now: datetime) -> SilenceState:
    if now < starts_at:
        return "pending"
    return "active" if now < ends_at else "expired"


def silencing(
    silences: Iterable[SilenceRule], service_id: int, labels: Mapping[str, str], now: datetime
) -> SilenceRule | None:
    """The silence that suppresses an alert of ``service_id`` with ``labels`` now, if any (the one ending
    last, so the record names the silence that keeps it quiet longest)."""
    found = None
    for silence in silences:
        if silence_state(silence.starts_at, silence.ends_at, now) != "active":
            continue
        if silence.service_id is not None and silence.service_id != service_id:
            continue
        if matches_all(silence.matchers, labels) and (found is None or silence.ends_at > found.ends_at):
            found = silence
    return found


# ------------------------------------------------------------------------------------------ group states

GroupState = Literal["triggered", "acknowledged", "snoozed", "resolved"]
OPEN_STATES: tuple[GroupState, ...] = ("triggered", "acknowledged", "snoozed")
GroupAction = Literal["acknowledge", "snooze", "resolve", "wake"]

# What each action may start from. Acknowledging an acknowledged group is not an error: two responders
# pressing the button at once both succeed, and nothing changes the second time.
_TRANSITIONS: dict[GroupAction, tuple[tuple[GroupState, ...], GroupState]] = {
    "acknowledge": (("triggered", "snoozed", "acknowledged"), "acknowledged"),
    "snooze": (("triggered", "acknowledged", "snoozed"), "snoozed"),
    "resolve": (("triggered", "acknowledged", "snoozed", "resolved"), "resolved"),
    "wake": (("snoozed",), "triggered"),
}


class TransitionRefused(ValueError):
    pass


def next_state(state: str, action: GroupAction) -> GroupState:
    allowed, target = _TRANSITIONS[action]
    if state not in allowed:
        raise TransitionRefused(f"an alert group that is {state} cannot be {_PAST[action]}")
    return target


_PAST = {"acknowledge": "acknowledged", "snooze": "snoozed", "resolve": "resolved", "wake": "woken"}

MAX_SNOOZE = timedelta(days=7)


def snooze_until(now: datetime, *, duration: timedelta | None, until: datetime | None) -> datetime:
    """When a snooze ends: after ``duration`` or at ``until`` (exactly one), in the future, at most a week."""
    if (duration is None) == (until is None):
        raise ValueError("give either a duration or an end time")
    end = now + duration if duration is not None else until
    assert end is not None
    if end <= now:
        raise ValueError("a snooze must end in the future")
    if end - now > MAX_SNOOZE:
        raise ValueError("a snooze lasts at most 7 days")
    return end
