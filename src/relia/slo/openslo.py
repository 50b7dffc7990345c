"""OpenSLO documents (``openslo/v1``, and ``openslo/v1alpha`` SLO and Service) translated into Relia documents.

========================  ==================================================================================
OpenSLO                   Relia
========================  ==================================================================================
DataSource                ``DataSource``: type Prometheus -> ``prometheus`` with ``connectionDetails.url``
                          (``headers``, ``timeoutSeconds`` too); any other type -> ``external`` with that
                          ``vendor``: Relia cannot query it, so SLOs reading from it are fed by pushed events
                          (a warning says so; its connection details are not kept)
Service                   ``Service`` when annotated ``relia.dev/owner: <team>`` (Relia services have an owning
                          team); without it a warning says it was read but not created
SLO                       ``SLO``: see below
SLI, AlertPolicy,         applied through the SLOs that refer to them; one that no SLO in the input uses
AlertCondition,           creates nothing, and a warning says so
AlertNotificationTarget
========================  ==================================================================================

Fields OpenSLO does not define are refused, naming them: a typo must not silently change an SLO.

An SLO: ``service``, ``metadata.displayName``, ``description``; ``metadata.labels`` become the SLO's labels
(a list value is joined with commas; a key that is not a Prometheus label name has its other characters
replaced by ``_``, with a warning). The indicator is inline or ``indicatorRef`` (an SLI of the same input);
objectives with their own indicator (composite SLOs) are refused.

Where an indicator reads from: ``metricSourceRef`` names a DataSource (its type decides; a DataSource not in
the input is taken at the word of ``metricSource.type``, else as Prometheus, with a warning). A Prometheus
``metricSource`` without a ref reads from the Relia DataSource named ``prometheus``, with a warning (the
convention of Relia's Sloth import). ``openslo/v1alpha`` has no DataSource kind: its ``source`` field names
the Relia DataSource. Type ``Relia`` means events pushed to Relia's API. Any other type is a system Relia
cannot query: the SLO is fed by pushed events and its queries are not used (a warning says so).

Prometheus queries are put in the shape Relia queries (see :mod:`relia.slo.promql`): a query that already
uses ``{{.window}}`` is kept as written; otherwise a ``ratioMetric`` leg with ``counter: true`` becomes a
per-second rate over the window, each selector wrapped (``sum(x)`` -> ``sum(rate(x[{{.window}}]))``) or its
``rate``/``increase`` range replaced (``sum(rate(x[5m]))`` -> ``sum(rate(x[{{.window}}]))``); a leg with
``counter: false`` (a gauge holding a rate, such as a recording rule) is averaged over the window
(``avg_over_time``). ``raw`` + ``rawType`` becomes ``errorRatio`` (a success ratio ``q`` as ``1 - (q)``),
its ranges replaced by the window or, without ranges, averaged over it. A query that cannot be rewritten
with certainty is refused, naming it.

``thresholdMetric``: every objective's ``op`` must be the same (Relia compares one way per indicator) and its
``value`` is the objective's threshold. Pushed values -> ``threshold`` indicator. A Prometheus query that is a
bare histogram bucket selector (``x_bucket{...}`` without ``le``) -> ``threshold`` indicator on histogram ``x``
(Relia counts the requests in the buckets up to the threshold). Any other Prometheus query gives one value
per sample, so it becomes a ``probe`` whose samples are good when the comparison holds: ``(q) < bool 500``
(one ``op``/``value`` for all objectives). An indicator annotated ``relia.dev/indicator: probe`` (written by
:mod:`relia.slo.openslo_export`) is a probe whose query is the 0/1 gauge itself, with ``op: gte`` ``value: 1``.

``timeWindow``: rolling ``{duration, isRolling: true}`` -> ``rolling``; calendar ``1w``/``1M``/``1Q``/``1Y``
with ``calendar.timeZone`` -> ``calendar`` week/month/quarter/year. A calendar ``1m`` (one minute, meaning
``1M``: the trap in OpenSLO's own example) is read as a month with a warning; a ``startTime`` that is not at a
period boundary gives a warning (Relia's periods start at local midnight on Monday / the 1st / a quarter's
or year's first day). Objectives: ``target`` or ``targetPercent``, ``timeSliceTarget``, ``timeSliceWindow``
(a number is minutes); names from ``displayName`` made into slugs (``default`` for a single unnamed
objective, else ``objective-<n>``), or from the annotation ``relia.dev/objective-names`` (comma-separated).

Alerting: each burn-rate AlertCondition of the SLO's AlertPolicies (inline or by reference) becomes a Relia
tier: ``long`` = ``lookbackWindow``, ``short`` = long / 12 rounded to a minute (or the condition's
annotation ``relia.dev/short-window``), ``budgetPercent`` = threshold x long / period x 100 (to 12
significant digits), severity
``page`` for severity page/critical, else ``ticket``. ``alertWhenNoData`` enables Relia's no-data alert.
Refused (they would change when alerts fire): ``op`` lt/lte (the alert would fire while the budget is safe),
a non-zero ``alertAfter`` (Relia has no ``for:`` delay), other condition kinds. Warned about (read, not
applied): notification targets and ``alertWhenResolved`` (notifications come in a later capability), and
policies with ``alertWhenBreaching: false`` (their conditions are not applied). An SLO with policies but no
burn-rate condition has its burn-rate alerts disabled; an SLO without policies gets Relia's default tiers.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import ValidationError

from relia.config.documents import ConfigInvalid, ConfigProblem, Document
from relia.config.registry import API_VERSION, TranslationContext, register_translator
from relia.core.schemas import SLUG_PATTERN
from relia.slo import promql
from relia.slo.rules import (
    NOMINAL_MINUTES,
    CalendarUnit,
    exact,
    format_duration,
    lint_time_window,
    parse_duration,
    parse_target,
)
from relia.slo.schemas import DURATION_PATTERN, SLOSpec

V1 = "openslo/v1"
V1ALPHA = "openslo/v1alpha"

OWNER_ANNOTATION = "relia.dev/owner"
INDICATOR_ANNOTATION = "relia.dev/indicator"  # value "probe": a 0/1 gauge written as thresholdMetric >= 1
OBJECTIVE_NAMES_ANNOTATION = "relia.dev/objective-names"
SHORT_WINDOW_ANNOTATION = "relia.dev/short-window"
PUSHED_TYPE = "Relia"  # a metricSource / DataSource type meaning: events pushed to Relia's API
RELIA_NOTIFICATION_TARGET = "relia"  # the target the export writes: alerts stay in Relia
DEFAULT_PROMETHEUS_SOURCE = "prometheus"
DEFAULT_SLICE_WINDOW = "1m"

_CALENDAR_DURATIONS = {"1w": "week", "1M": "month", "1Q": "quarter", "1Y": "year"}
_V1ALPHA_UNITS = {"Minute": "m", "Hour": "h", "Day": "d", "Week": "w", "Month": "M", "Quarter": "Q", "Year": "Y"}
_PERIOD_STARTS = {
    "week": "Monday 00:00",
    "month": "the 1st at 00:00",
    "quarter": "1 January, April, July and October at 00:00",
    "year": "1 January at 00:00",
}
_COUNTER_SUFFIXES = ("_total", "_count", "_bucket", "_sum")
_SLUG = re.compile(SLUG_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Path = tuple[str | int, ...]


# ---------------------------------------------------------------------------------------- shared helpers


def slugify(text: str) -> str:
    """``"Internal objective"`` -> ``"internal-objective"``: lower case, other characters as single dashes,
    at most 63 characters; empty when nothing is left."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:63].rstrip("-")


def objective_names(display_names: list[str | None]) -> list[str]:
    """The Relia objective names an import derives from OpenSLO ``displayName`` values, unique in order."""
    names: list[str] = []
    for index, display in enumerate(display_names):
        base = slugify(display) if display else ""
        if not base:
            base = "default" if len(display_names) == 1 else f"objective-{index + 1}"
        name, suffix = base, 2
        while name in names:
            name = f"{base[: 63 - len(str(suffix)) - 1]}-{suffix}"
            suffix += 1
        names.append(name)
    return names


def label_map(labels: Any) -> tuple[dict[str, str], list[str]]:
    """OpenSLO / Kubernetes labels (values may be lists) as Relia labels, and notes on renamed keys."""
    out: dict[str, str] = {}
    notes: list[str] = []
    if not isinstance(labels, dict):
        return out, notes
    for key, value in labels.items():
        name = str(key)
        if not _LABEL_NAME.match(name):
            name = re.sub(r"[^a-zA-Z0-9_]", "_", name)
            if not re.match(r"[a-zA-Z_]", name):
                name = f"_{name}"
            notes.append(f"label {key!r} is kept as {name!r} (a Prometheus label name)")
        text = ",".join(_scalar_text(item) for item in value) if isinstance(value, list) else _scalar_text(value)
        if name in out and out[name] != text:
            notes.append(f"labels {key!r} and another both become {name!r}; the values are joined")
            text = f"{out[name]},{text}"
        out[name] = text
    return out, notes


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def is_prometheus(source_type: Any) -> bool:
    return isinstance(source_type, str) and source_type.strip().lower() == "prometheus"


def calendar_boundary(unit: str, start: datetime | date) -> bool:
    """Whether a local date-time is where Relia's calendar ``unit`` periods start."""
    if isinstance(start, datetime):
        if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
            return False
        day = start.date()
    else:
        day = start
    if unit == "week":
        return day.weekday() == 0
    if unit == "month":
        return day.day == 1
    if unit == "quarter":
        return day.day == 1 and day.month in (1, 4, 7, 10)
    return (day.month, day.day) == (1, 1)


BUDGET_PERCENT_DIGITS = 12


def budget_percent(threshold: Fraction, long_minutes: int, period_minutes: int) -> float:
    """The share of a period's budget a burn rate of ``threshold`` spends in ``long_minutes``, in percent,
    to 12 significant digits: a threshold written as a float (0.9333333333333333 for 28d / 30d) carries
    noise in its last digits that would otherwise show in the share."""
    return float(f"{float(threshold * long_minutes / period_minutes * 100):.{BUDGET_PERCENT_DIGITS}g}")


def short_window(long_minutes: int) -> int:
    """The SRE Workbook's short window: a twelfth of the long one, rounded half up to a minute (at least 1)."""
    return max(1, int(Fraction(long_minutes, 12) + Fraction(1, 2)))


def duration_text(minutes: int, written: Any) -> str:
    """Keep the duration as written when Relia reads it that way (so exports round-trip), else respell it."""
    if isinstance(written, str) and _DURATION.match(written.strip()) and parse_duration(written) == minutes:
        return written.strip()
    return format_duration(minutes)


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _metadata(body: Any) -> dict[str, Any]:
    return _mapping(_mapping(body).get("metadata"))


def _annotations(metadata: dict[str, Any]) -> dict[str, Any]:
    return _mapping(metadata.get("annotations"))


def _number(value: Any) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return exact(value)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------- known fields

# The fields each kind may have, as OpenSLO defines them: a dict lists a mapping's fields (None: any value),
# a one-item list a list of such items. A field Relia does not know is refused rather than skipped, so a typo
# (timeSliceWindw) never silently changes the SLO.
_ANY = None
_METADATA = {"name": _ANY, "displayName": _ANY, "labels": _ANY, "annotations": _ANY}
_METRIC = {"metricSource": {"metricSourceRef": _ANY, "type": _ANY, "spec": _ANY}}
_SLI_SPEC = {
    "description": _ANY,
    "ratioMetric": {
        "counter": _ANY,
        "good": _METRIC,
        "bad": _METRIC,
        "total": _METRIC,
        "raw": _METRIC,
        "rawType": _ANY,
    },
    "thresholdMetric": _METRIC,
}
_CONDITION_SPEC = {
    "description": _ANY,
    "severity": _ANY,
    "condition": {"kind": _ANY, "op": _ANY, "threshold": _ANY, "lookbackWindow": _ANY, "alertAfter": _ANY},
}
_TARGET_SPEC = {"description": _ANY, "target": _ANY}
_POLICY_SPEC = {
    "description": _ANY,
    "alertWhenNoData": _ANY,
    "alertWhenBreaching": _ANY,
    "alertWhenResolved": _ANY,
    "conditions": [{"conditionRef": _ANY, "kind": _ANY, "metadata": _METADATA, "spec": _CONDITION_SPEC}],
    "notificationTargets": [{"targetRef": _ANY, "kind": _ANY, "metadata": _METADATA, "spec": _TARGET_SPEC}],
}
_INLINE_SLI = {"metadata": _METADATA, "spec": _SLI_SPEC}
_V1_SLO_SPEC = {
    "description": _ANY,
    "service": _ANY,
    "indicator": _INLINE_SLI,
    "indicatorRef": _ANY,
    "budgetingMethod": _ANY,
    "timeWindow": [{"duration": _ANY, "isRolling": _ANY, "calendar": {"startTime": _ANY, "timeZone": _ANY}}],
    "objectives": [
        {
            "displayName": _ANY,
            "op": _ANY,
            "value": _ANY,
            "target": _ANY,
            "targetPercent": _ANY,
            "timeSliceTarget": _ANY,
            "timeSliceWindow": _ANY,
            "indicator": _INLINE_SLI,
            "indicatorRef": _ANY,
            "compositeWeight": _ANY,
        }
    ],
    "alertPolicies": [{"alertPolicyRef": _ANY, "kind": _ANY, "metadata": _METADATA, "spec": _POLICY_SPEC}],
}
_V1ALPHA_QUERY = {"source": _ANY, "queryType": _ANY, "query": _ANY, "metadata": _ANY}
_V1ALPHA_SLO_SPEC = {
    "description": _ANY,
    "service": _ANY,
    "indicator": {"thresholdMetric": _V1ALPHA_QUERY},
    "budgetingMethod": _ANY,
    "timeWindows": [
        {"unit": _ANY, "count": _ANY, "isRolling": _ANY, "calendar": {"startTime": _ANY, "timeZone": _ANY}}
    ],
    "objectives": [
        {
            "displayName": _ANY,
            "op": _ANY,
            "value": _ANY,
            "target": _ANY,
            "timeSliceTarget": _ANY,
            "timeSliceWindow": _ANY,
            "ratioMetrics": {
                "incremental": _ANY,
                "good": _V1ALPHA_QUERY,
                "bad": _V1ALPHA_QUERY,
                "total": _V1ALPHA_QUERY,
                "raw": _V1ALPHA_QUERY,
                "rawType": _ANY,
            },
        }
    ],
}
_SPECS = {
    (V1, "SLO"): _V1_SLO_SPEC,
    (V1ALPHA, "SLO"): _V1ALPHA_SLO_SPEC,
    (V1, "SLI"): _SLI_SPEC,
    (V1, "DataSource"): {"description": _ANY, "type": _ANY, "connectionDetails": _ANY},
    (V1, "Service"): {"description": _ANY},
    (V1ALPHA, "Service"): {"description": _ANY},
    (V1, "AlertPolicy"): _POLICY_SPEC,
    (V1, "AlertCondition"): _CONDITION_SPEC,
    (V1, "AlertNotificationTarget"): _TARGET_SPEC,
}


def _unknown_fields(value: Any, schema: Any, path: Path) -> Iterable[tuple[Path, list[str]]]:
    """(path of each field not in ``schema``, the fields known there)."""
    if isinstance(schema, dict) and isinstance(value, dict):
        for key, item in value.items():
            if key not in schema:
                yield (*path, key), sorted(schema)
            elif schema[key] is not None:
                yield from _unknown_fields(item, schema[key], (*path, key))
    elif isinstance(schema, list) and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema[0], (*path, index))


# ------------------------------------------------------------------------------------------- the reader


@dataclass(frozen=True)
class _Where:
    """A field of some document of the input (the SLO's own, or an SLI / policy / condition it uses)."""

    document: Document
    path: Path

    def at(self, *more: str | int) -> _Where:
        return _Where(self.document, (*self.path, *more))


class _Reader:
    """Reads one OpenSLO document, collecting every problem (so one run names them all)."""

    def __init__(self, document: Document, context: TranslationContext) -> None:
        self.document = document
        self.context = context
        body = _mapping(document.body)
        self.kind = str(body.get("kind"))
        self.name = _metadata(body).get("name")
        self.errors: list[ConfigProblem] = []
        self._warned: set[str] = set()

    def here(self, *path: str | int) -> _Where:
        return _Where(self.document, path)

    def _problem(self, message: str, where: _Where) -> ConfigProblem:
        body = _mapping(where.document.body)
        return where.document.problem(message, where.path, kind=str(body.get("kind")), name=_metadata(body).get("name"))

    def error(self, message: str, where: _Where) -> None:
        self.errors.append(self._problem(message, where))

    def warn(self, message: str, where: _Where) -> None:
        if message not in self._warned:  # one warning per message and document, however many fields cause it
            self._warned.add(message)
            self.context.warn(self._problem(message, where))

    def check_fields(self) -> None:
        """Refuse fields this kind does not have (see ``_SPECS``)."""
        body = _mapping(self.document.body)
        spec = _SPECS.get((str(body.get("apiVersion")), self.kind), _ANY)
        schema = {"apiVersion": _ANY, "kind": _ANY, "metadata": _METADATA, "spec": spec}
        for path, known in _unknown_fields(body, schema, ()):
            self.error(f"unknown field {path[-1]!r}; known here: {', '.join(known)}", self.here(*path))

    def finish(self, documents: list[Document]) -> list[Document]:
        if self.errors:
            raise ConfigInvalid(self.errors)
        return documents

    def text(self, value: Any, where: _Where, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.error("required", where)
            return None
        if not isinstance(value, str) or (required and not value.strip()):
            self.error("must be a non-empty string" if required else "must be a string", where)
            return None
        return value


def _relia_document(source: Document, kind: str, name: Any, spec: dict[str, Any], **metadata: Any) -> Document:
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}
    origin_body = _mapping(source.body)
    return source.derived(body, origin=f"{origin_body.get('apiVersion')} {origin_body.get('kind')} {name!r}")


# ----------------------------------------------------------------------------------- DataSource, Service


def translate_data_source(document: Document, context: TranslationContext) -> list[Document]:
    reader = _Reader(document, context)
    reader.check_fields()
    spec = _mapping(_mapping(document.body).get("spec"))
    source_type = reader.text(spec.get("type"), reader.here("spec", "type"), required=True)
    description = reader.text(spec.get("description"), reader.here("spec", "description")) or ""
    details_value = spec.get("connectionDetails")
    details: dict[str, Any] = {}
    # The OpenSLO spec shows a mapping; the SDK's examples write a list of one-key mappings.
    for index, part in enumerate(details_value if isinstance(details_value, list) else [details_value]):
        if part is None:
            continue
        if not isinstance(part, dict):
            where = reader.here("spec", "connectionDetails", *([index] if isinstance(details_value, list) else []))
            reader.error("must be a mapping of connection fields", where)
            continue
        details.update(part)
    labels, _ = label_map(_metadata(document.body).get("labels"))
    relia: dict[str, Any] = {}
    if source_type is not None and is_prometheus(source_type):
        where = reader.here("spec", "connectionDetails")
        url = reader.text(details.get("url"), where.at("url"), required=True)
        relia = {"type": "prometheus", "url": url}
        headers = details.get("headers")
        if headers is not None:
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                reader.error("must map header names to strings", where.at("headers"))
            else:
                relia["headers"] = {str(key): value for key, value in headers.items()}
        if details.get("timeoutSeconds") is not None:
            relia["timeoutSeconds"] = details["timeoutSeconds"]
        unused = sorted(set(details) - {"url", "headers", "timeoutSeconds"})
        if unused:
            reader.warn(
                f"connectionDetails {', '.join(unused)} are not used: Relia sends url, headers and timeoutSeconds",
                where,
            )
    elif source_type is not None:
        relia = {"type": "external"}
        if source_type != PUSHED_TYPE:
            relia["vendor"] = source_type
            reader.warn(
                f"Relia cannot query {source_type}: SLOs that read from this data source are fed by events "
                "pushed to Relia's API" + (", and its connectionDetails are not kept" if details else ""),
                reader.here("spec", "type"),
            )
    if description:
        relia["description"] = description
    metadata = {"labels": labels} if labels else {}
    return reader.finish([_relia_document(document, "DataSource", reader.name, relia, **metadata)])


def translate_service(document: Document, context: TranslationContext) -> list[Document]:
    reader = _Reader(document, context)
    reader.check_fields()
    metadata = _metadata(document.body)
    spec = _mapping(_mapping(document.body).get("spec"))
    owner = _annotations(metadata).get(OWNER_ANNOTATION)
    if owner is None:
        reader.warn(
            f"read but not created: a Relia service needs an owning team; annotate it {OWNER_ANNOTATION}: "
            "<team> to create it (SLOs that name this service are still checked against Relia's services)",
            reader.here("metadata"),
        )
        return reader.finish([])
    owner = reader.text(owner, reader.here("metadata", "annotations", OWNER_ANNOTATION), required=True)
    description = reader.text(spec.get("description"), reader.here("spec", "description")) or ""
    display = metadata.get("displayName")
    relia: dict[str, Any] = {"name": display if isinstance(display, str) and display else reader.name, "owner": owner}
    if description:
        relia["description"] = description
    labels, _ = label_map(metadata.get("labels"))
    extra = {"labels": labels} if labels else {}
    return reader.finish([_relia_document(document, "Service", reader.name, relia, **extra)])


# ------------------------------------------------------------------------------------- documents SLOs use


_SUPPORTING_KINDS = ("SLI", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
# One input is translated with one context, so what its SLOs use is worked out once per context.
_usage_cache: weakref.WeakKeyDictionary[TranslationContext, dict[str, set[str]]] = weakref.WeakKeyDictionary()


def _used_names(context: TranslationContext) -> dict[str, set[str]]:
    """Names of the SLIs, policies, conditions and targets that some SLO of the input uses, by kind."""
    cached = _usage_cache.get(context)
    if cached is not None:
        return cached
    used: dict[str, set[str]] = {kind: set() for kind in _SUPPORTING_KINDS}

    def policy_uses(policy_spec: dict[str, Any]) -> None:
        for condition in _list(policy_spec.get("conditions")):
            if isinstance(condition, dict) and isinstance(condition.get("conditionRef"), str):
                used["AlertCondition"].add(condition["conditionRef"])
        for target in _list(policy_spec.get("notificationTargets")):
            if isinstance(target, dict) and isinstance(target.get("targetRef"), str):
                used["AlertNotificationTarget"].add(target["targetRef"])

    for document in context.documents:
        body = document.body
        if not (isinstance(body, dict) and body.get("apiVersion") == V1 and body.get("kind") == "SLO"):
            continue
        spec = _mapping(body.get("spec"))
        for holder in [spec, *[_mapping(objective) for objective in _list(spec.get("objectives"))]]:
            if isinstance(holder.get("indicatorRef"), str):
                used["SLI"].add(holder["indicatorRef"])
        for policy in _list(spec.get("alertPolicies")):
            if not isinstance(policy, dict):
                continue
            if isinstance(policy.get("alertPolicyRef"), str):
                used["AlertPolicy"].add(policy["alertPolicyRef"])
                found = context.find(V1, "AlertPolicy", policy["alertPolicyRef"])
                if found is not None:
                    policy_uses(_mapping(_mapping(found.body).get("spec")))
            else:
                policy_uses(_mapping(policy.get("spec")))
    _usage_cache[context] = used
    return used


def translate_supporting(document: Document, context: TranslationContext) -> list[Document]:
    """SLI, AlertPolicy, AlertCondition, AlertNotificationTarget: applied through the SLOs that use them."""
    reader = _Reader(document, context)
    reader.check_fields()
    if reader.name in _used_names(context).get(reader.kind, set()):
        return reader.finish([])
    reader.warn(
        f"this {reader.kind} is not used by any SLO in these files, so it creates nothing "
        "(Relia applies SLIs, alert policies, conditions and targets through the SLOs that use them)",
        reader.here("metadata", "name"),
    )
    spec = _mapping(_mapping(document.body).get("spec"))
    if reader.kind == "AlertCondition":
        _lint_condition(reader, spec, reader.here("spec"))
    elif reader.kind == "AlertPolicy":
        for index, condition in enumerate(_list(spec.get("conditions"))):
            if isinstance(condition, dict) and "spec" in condition:
                _lint_condition(reader, _mapping(condition["spec"]), reader.here("spec", "conditions", index, "spec"))
    return reader.finish([])


def _lint_condition(reader: _Reader, spec: dict[str, Any], where: _Where) -> None:
    condition = _mapping(spec.get("condition"))
    op = condition.get("op")
    if condition.get("kind", "burnrate") == "burnrate" and op in ("lt", "lte"):
        reader.warn(
            f"a burn-rate condition with op {op} fires while the budget burns slowly (burn rate "
            f"{'<' if op == 'lt' else '<='} {condition.get('threshold')}), not when it burns fast: "
            "you probably meant gt",
            where.at("condition", "op"),
        )


# ---------------------------------------------------------------------------------------------------- SLO


@dataclass(frozen=True)
class _Source:
    """Where an indicator's data comes from: a Relia DataSource name (or None: pushed events)."""

    name: str | None
    prometheus: bool
    vendor: str | None = None  # the type as written, for messages


@dataclass
class _Leg:
    """One query of an indicator as written: ``good``, ``bad``, ``total``, ``raw`` or the threshold metric."""

    role: str
    query: Any
    source: _Source
    where: _Where  # the query field
    options: dict[str, Any] = field(default_factory=dict)  # the rest of metricSource.spec (unit, ...)


@dataclass
class _Objective:
    display_name: str | None
    target: Any
    target_percent: Any
    op: Any
    value: Any
    time_slice_target: Any
    time_slice_window: Any
    where: _Where
    composite: bool = False
    composite_weight: Any = None


class _SLOReader(_Reader):
    def __init__(self, document: Document, context: TranslationContext) -> None:
        super().__init__(document, context)
        body = _mapping(document.body)
        self.api_version = body.get("apiVersion")
        self.metadata = _metadata(body)
        self.spec = _mapping(body.get("spec"))
        self.period_minutes: int | None = None
        self.fields_of: dict[Path, Path] = {}  # Relia path -> OpenSLO path, for lines and messages

    def map_field(self, relia_path: Path, where: _Where) -> None:
        """Remember where a translated field came from, when that is in this document (not in an SLI)."""
        if where.document is self.document:
            self.fields_of[relia_path] = where.path

    # ---- the whole SLO

    def translate(self) -> list[Document]:
        self.check_fields()
        if not isinstance(self.document.body.get("spec"), dict):
            self.error("required: a mapping", self.here("spec"))
            return self.finish([])
        spec: dict[str, Any] = {}
        service = self.text(self.spec.get("service"), self.here("spec", "service"), required=True)
        spec["service"] = service
        self.fields_of[("spec", "service")] = ("spec", "service")
        display = self.metadata.get("displayName")
        if isinstance(display, str) and display.strip():
            spec["displayName"] = display.strip()
        description = self.text(self.spec.get("description"), self.here("spec", "description"))
        if description:
            spec["description"] = description
        labels, notes = label_map(self.metadata.get("labels"))
        for note in notes:
            self.warn(note, self.here("metadata", "labels"))
        if labels:
            spec["labels"] = labels
        method = self.spec.get("budgetingMethod", "Occurrences")
        if method not in ("Occurrences", "Timeslices", "RatioTimeslices"):
            self.error(
                f"must be Occurrences, Timeslices or RatioTimeslices, got {method!r}",
                self.here("spec", "budgetingMethod"),
            )
            method = "Occurrences"
        spec["budgetingMethod"] = method
        spec["window"] = self.window()
        objectives = self.objectives()
        indicator, thresholds = self.indicator(objectives)
        spec["indicator"] = indicator
        spec["objectives"] = self.relia_objectives(objectives, method, thresholds)
        alerting = self.alerting()
        if alerting:
            spec["alerting"] = alerting
        if self.errors:
            return self.finish([])
        self.check(spec)
        translated = _relia_document(self.document, "SLO", self.name, spec)
        translated.lines = {(): self.document.line_of(()) or 1}
        for relia_path, openslo_path in self.fields_of.items():
            line = self.document.line_of(openslo_path)
            if line is not None:
                translated.lines[relia_path] = line
        return self.finish([translated])

    def check(self, spec: dict[str, Any]) -> None:
        """Validate the translation as Relia will, so an error names the OpenSLO field it came from."""
        try:
            SLOSpec.model_validate(spec)
        except ValidationError as exc:
            for error in exc.errors():
                relia_path: Path = ("spec", *error["loc"])
                openslo_path = next(
                    (
                        self.fields_of[relia_path[:size]]
                        for size in range(len(relia_path), 0, -1)
                        if relia_path[:size] in self.fields_of
                    ),
                    ("spec",),
                )
                message = str(error["msg"]).removeprefix("Value error, ")
                where = ".".join(str(part) for part in relia_path)
                self.error(f"{message} (in Relia's {where})", self.here(*openslo_path))

    # ---- window

    def window(self) -> dict[str, Any]:
        if self.api_version == V1ALPHA:
            return self.v1alpha_window()
        windows = self.spec.get("timeWindow")
        where = self.here("spec", "timeWindow")
        if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
            self.error("required: a list of exactly one time window", where)
            return {"rolling": "30d"}
        window = windows[0]
        where = where.at(0)
        duration = window.get("duration")
        if not isinstance(duration, str) or not duration.strip():
            self.error("required: a duration such as 28d or 1M", where.at("duration"))
            return {"rolling": "30d"}
        return self.window_from(duration.strip(), window.get("isRolling"), window.get("calendar"), where)

    def v1alpha_window(self) -> dict[str, Any]:
        windows = self.spec.get("timeWindows")
        where = self.here("spec", "timeWindows")
        if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
            self.error("required: a list of exactly one time window", where)
            return {"rolling": "30d"}
        window = windows[0]
        where = where.at(0)
        unit, count = window.get("unit"), window.get("count")
        if unit not in _V1ALPHA_UNITS:
            self.error(f"must be one of {', '.join(_V1ALPHA_UNITS)}, got {unit!r}", where.at("unit"))
            return {"rolling": "30d"}
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            self.error(f"must be a positive whole number, got {count!r}", where.at("count"))
            return {"rolling": "30d"}
        duration = f"{count}{_V1ALPHA_UNITS[unit]}"
        return self.window_from(duration, window.get("isRolling"), window.get("calendar"), where, unit_field="unit")

    def window_from(
        self, duration: str, is_rolling: Any, calendar: Any, where: _Where, *, unit_field: str = "duration"
    ) -> dict[str, Any]:
        self.fields_of[("spec", "window")] = where.path
        if calendar is not None:
            if is_rolling is True:
                self.error("calendar cannot be set when isRolling is true", where.at("calendar"))
            if not isinstance(calendar, dict):
                self.error("must be a mapping with startTime and timeZone", where.at("calendar"))
                calendar = {}
            unit = _CALENDAR_DURATIONS.get(duration)
            lints = lint_time_window(duration, calendar=True)
            if unit is None and duration == "1m":
                self.warn(
                    f"{lints[0].message}: a calendar minute means nothing, so Relia reads it as 1M (a calendar "
                    "month); write 1M",
                    where.at(unit_field),
                )
                unit = "month"
            if unit is None:
                self.error(
                    f"a calendar window is one week, month, quarter or year (1w, 1M, 1Q or 1Y), got {duration!r}",
                    where.at(unit_field),
                )
                return {"rolling": "30d"}
            zone = calendar.get("timeZone", "UTC")
            if not isinstance(zone, str) or zone not in _time_zones():
                self.error(f"{zone!r} is not an IANA time zone (e.g. Europe/Berlin)", where.at("calendar", "timeZone"))
                zone = "UTC"
            self.start_time(calendar.get("startTime"), unit, zone, where.at("calendar", "startTime"))
            self.period_minutes = NOMINAL_MINUTES[CalendarUnit(unit)]
            return {"calendar": unit, "timeZone": zone}
        if is_rolling is False:
            self.warn("isRolling is false but no calendar is given: read as a rolling window", where.at("isRolling"))
        for lint in lint_time_window(duration, calendar=False):
            self.error(f"{lint.message} (a rolling SLO window in minutes is refused)", where.at(unit_field))
            return {"rolling": "30d"}
        try:
            minutes = parse_duration(duration)
        except ValueError as exc:
            self.error(str(exc), where.at(unit_field))
            return {"rolling": "30d"}
        self.period_minutes = minutes
        return {"rolling": duration_text(minutes, duration)}

    def start_time(self, value: Any, unit: str, zone: str, where: _Where) -> None:
        if value is None:
            return
        start: datetime | date
        if isinstance(value, datetime | date):
            start = value  # YAML reads "2022-01-01 12:00:00" as a timestamp already
        else:
            try:
                start = datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                self.error(f"must be a date and time as YYYY-MM-DD HH:MM:SS, got {value!r}", where)
                return
        if not calendar_boundary(unit, start):
            self.warn(
                f"startTime {value} is not the start of a calendar {unit}: Relia's {unit}s start on "
                f"{_PERIOD_STARTS[unit]} local time in {zone}, so this SLO's periods start there",
                where,
            )

    # ---- objectives

    def objectives(self) -> list[_Objective]:
        values = self.spec.get("objectives")
        where = self.here("spec", "objectives")
        if not isinstance(values, list) or not values:
            self.error("required: at least one objective", where)
            return []
        objectives = []
        for index, value in enumerate(values):
            item = where.at(index)
            if not isinstance(value, dict):
                self.error("must be a mapping", item)
                continue
            display = value.get("displayName")
            objectives.append(
                _Objective(
                    display_name=display.strip() if isinstance(display, str) and display.strip() else None,
                    target=value.get("target"),
                    target_percent=value.get("targetPercent"),
                    op=value.get("op"),
                    value=value.get("value"),
                    time_slice_target=value.get("timeSliceTarget"),
                    time_slice_window=value.get("timeSliceWindow"),
                    where=item,
                    composite=self.api_version == V1 and ("indicator" in value or "indicatorRef" in value),
                    composite_weight=value.get("compositeWeight"),
                )
            )
        return objectives

    def names(self, objectives: list[_Objective]) -> list[str]:
        given = _annotations(self.metadata).get(OBJECTIVE_NAMES_ANNOTATION)
        if given is not None:
            names = [name.strip() for name in str(given).split(",")]
            where = self.here("metadata", "annotations", OBJECTIVE_NAMES_ANNOTATION)
            if len(names) != len(objectives) or not all(_SLUG.fullmatch(name) for name in names):
                self.error(f"must list {len(objectives)} objective name(s), comma-separated, each a slug", where)
            elif len(set(names)) != len(names):
                self.error("objective names must be unique", where)
            else:
                return names
        return objective_names([objective.display_name for objective in objectives])

    def relia_objectives(
        self, objectives: list[_Objective], method: str, thresholds: list[float] | None
    ) -> list[dict[str, Any]]:
        out = []
        names = self.names(objectives)
        for index, (objective, name) in enumerate(zip(objectives, names, strict=False)):
            self.fields_of[("spec", "objectives", index)] = objective.where.path
            relia: dict[str, Any] = {"name": name}
            if objective.display_name and objective.display_name != name:
                relia["displayName"] = objective.display_name
            relia["target"] = self.target(objective)
            if thresholds is not None and index < len(thresholds):
                relia["threshold"] = thresholds[index]
            relia.update(self.slices(objective, method))
            if objective.composite_weight is not None and objective.composite_weight != 1:
                self.warn(
                    "compositeWeight applies to composite SLOs, which Relia does not read: ignored",
                    objective.where.at("compositeWeight"),
                )
            out.append(relia)
        return out

    def target(self, objective: _Objective) -> float:
        if objective.target is not None and objective.target_percent is not None:
            self.error("give target or targetPercent, not both", objective.where)
            return 0.5
        percent = objective.target is None
        value = objective.target_percent if percent else objective.target
        where = objective.where.at("targetPercent" if percent else "target")
        if value is None:
            self.error("required: target (a ratio such as 0.999) or targetPercent (such as 99.9)", objective.where)
            return 0.5
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"not a number: {value!r}")
            ratio = parse_target(value, percent=percent)
        except ValueError as exc:
            self.error(str(exc), where)
            return 0.5
        if ratio == 0:
            self.error("a target of 0 is always met; give the share of good events to aim for", where)
            return 0.5
        return float(ratio)

    def slices(self, objective: _Objective, method: str) -> dict[str, Any]:
        where = objective.where
        given = [
            key
            for key, value in (
                ("timeSliceTarget", objective.time_slice_target),
                ("timeSliceWindow", objective.time_slice_window),
            )
            if value is not None
        ]
        if method == "Occurrences":
            if given:
                self.warn(
                    f"{' and '.join(given)} ignored: Occurrences counts events, not time slices", where.at(given[0])
                )
            return {}
        out: dict[str, Any] = {}
        if method == "Timeslices":
            target = _number(objective.time_slice_target)
            if objective.time_slice_target is None:
                self.error("required for Timeslices: the share of good events that makes a slice good", where)
            elif target is None or not 0 < target <= 1:
                self.error(
                    f"must be a ratio above 0 and at most 1, got {objective.time_slice_target!r}",
                    where.at("timeSliceTarget"),
                )
            else:
                out["timeSliceTarget"] = float(target)
        elif objective.time_slice_target is not None:
            self.warn(
                "timeSliceTarget ignored: RatioTimeslices averages the slices' ratios", where.at("timeSliceTarget")
            )
        window = objective.time_slice_window
        if window is None:
            self.warn(f"no timeSliceWindow: Relia uses {DEFAULT_SLICE_WINDOW} slices", where)
            out["timeSliceWindow"] = DEFAULT_SLICE_WINDOW
            return out
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            out["timeSliceWindow"] = format_duration(window)  # a number is minutes
            return out
        try:
            minutes = parse_duration(str(window)) if isinstance(window, str) else None
        except ValueError as exc:
            self.error(str(exc), where.at("timeSliceWindow"))
            return out
        if minutes is None:
            self.error(f"must be a duration such as 1m or 5m, or a number of minutes, got {window!r}", where)
            return out
        out["timeSliceWindow"] = duration_text(minutes, window)
        return out

    # ---- indicator

    def indicator(self, objectives: list[_Objective]) -> tuple[dict[str, Any], list[float] | None]:
        """The Relia indicator, and each objective's threshold for a threshold indicator."""
        self.fields_of[("spec", "indicator")] = ("spec", "indicator")
        composite = [objective for objective in objectives if objective.composite]
        if composite:
            self.error(
                "composite SLOs (an indicator per objective) are not supported: give one indicator for the SLO, "
                "or split it into SLOs",
                composite[0].where,
            )
            return {"ratio": {}}, None
        if self.api_version == V1ALPHA:
            return self.v1alpha_indicator(objectives)
        inline, ref = self.spec.get("indicator"), self.spec.get("indicatorRef")
        if (inline is None) == (ref is None):
            self.error("give exactly one of indicator or indicatorRef", self.here("spec"))
            return {"ratio": {}}, None
        if ref is not None:
            where = self.here("spec", "indicatorRef")
            found = self.context.find(V1, "SLI", ref) if isinstance(ref, str) else None
            if found is None:
                self.error(f"there is no openslo/v1 SLI named {ref!r} in these files", where)
                return {"ratio": {}}, None
            self.fields_of[("spec", "indicator")] = ("spec", "indicatorRef")
            sli, metadata, where = _mapping(found.body).get("spec"), _metadata(found.body), _Where(found, ("spec",))
        else:
            if not isinstance(inline, dict) or not isinstance(inline.get("spec"), dict):
                self.error("must be a mapping with metadata and spec", self.here("spec", "indicator"))
                return {"ratio": {}}, None
            sli, metadata, where = inline["spec"], _metadata(inline), self.here("spec", "indicator", "spec")
        if not isinstance(sli, dict):
            self.error("must be a mapping with ratioMetric or thresholdMetric", where)
            return {"ratio": {}}, None
        ratio, threshold = sli.get("ratioMetric"), sli.get("thresholdMetric")
        if (ratio is None) == (threshold is None):
            self.error("give exactly one of ratioMetric or thresholdMetric", where)
            return {"ratio": {}}, None
        probe = _annotations(metadata).get(INDICATOR_ANNOTATION) == "probe"
        if ratio is not None:
            return self.ratio_indicator(ratio, where.at("ratioMetric"), objectives), None
        leg = self.v1_leg("threshold", threshold, where.at("thresholdMetric"))
        return self.threshold_indicator(leg, objectives, probe=probe) if leg else ({"ratio": {}}, None)

    def v1_leg(self, role: str, value: Any, where: _Where) -> _Leg | None:
        if not isinstance(value, dict) or not isinstance(value.get("metricSource"), dict):
            self.error("required: a mapping with metricSource", where)
            return None
        source = value["metricSource"]
        where = where.at("metricSource")
        spec = _mapping(source.get("spec"))
        return _Leg(role, spec.get("query"), self.v1_source(source, where), where.at("spec", "query"), spec)

    def v1_source(self, metric_source: dict[str, Any], where: _Where) -> _Source:
        ref, source_type = metric_source.get("metricSourceRef"), metric_source.get("type")
        if isinstance(ref, str) and ref:
            found = self.context.find(V1, "DataSource", ref)
            if found is not None:
                found_type = _mapping(_mapping(found.body).get("spec")).get("type")
                return _Source(ref, is_prometheus(found_type), _text_or_none(found_type))
            if source_type is not None:
                return _Source(ref, is_prometheus(source_type), _text_or_none(source_type))
            self.warn(
                f"DataSource {ref!r} is not in these files and metricSource.type is not given: read as a Prometheus "
                "source (whether it exists is checked at apply)",
                where.at("metricSourceRef"),
            )
            return _Source(ref, True)
        if is_prometheus(source_type):
            self.warn(
                f"this Prometheus metricSource names no DataSource (metricSourceRef): Relia reads from its data "
                f"source {DEFAULT_PROMETHEUS_SOURCE!r} (whether it exists is checked at apply)",
                where,
            )
            return _Source(DEFAULT_PROMETHEUS_SOURCE, True)
        # Pushed events: type Relia, or a system Relia cannot query.
        return _Source(None, False, _text_or_none(source_type))

    def unqueried(self, legs: list[_Leg]) -> None:
        """Warn once when queries are read but not used because the source is not Prometheus."""
        written = [leg for leg in legs if leg.query is not None and not leg.source.prometheus]
        if written:
            source = written[0].source
            what = f"data source {source.name!r}" if source.name else "this metric source"
            kind = f" ({source.vendor})" if source.vendor else ""
            self.warn(
                f"Relia cannot query {what}{kind}, only Prometheus: this SLO is fed by events pushed to Relia's "
                "API, and its queries are not used",
                written[0].where,
            )

    def ratio_indicator(self, ratio: Any, where: _Where, objectives: list[_Objective]) -> dict[str, Any]:
        if not isinstance(ratio, dict):
            self.error("must be a mapping", where)
            return {"ratio": {}}
        counter = ratio.get("counter")
        if counter is not None and not isinstance(counter, bool):
            self.error("must be true or false", where.at("counter"))
        if "raw" in ratio:
            legs = [self.v1_leg("raw", ratio.get("raw"), where.at("raw"))]
            raw_type = ratio.get("rawType")
            if raw_type not in ("success", "failure"):
                self.error(f"must be success or failure, got {raw_type!r}", where.at("rawType"))
        else:
            given = [role for role in ("good", "bad") if ratio.get(role) is not None]
            if len(given) != 1:
                self.error("give exactly one of good or bad, with total (or raw with rawType)", where)
                return {"ratio": {}}
            legs = [
                self.v1_leg(given[0], ratio[given[0]], where.at(given[0])),
                self.v1_leg("total", ratio.get("total"), where.at("total")),
            ]
            raw_type = None
        self.ignored_comparisons(objectives)
        found = [leg for leg in legs if leg is not None]
        if len(found) != len(legs):
            return {"ratio": {}}
        return self.ratio_body(found, counter=counter is True, raw_type=raw_type)

    def ratio_body(self, legs: list[_Leg], *, counter: bool, raw_type: str | None) -> dict[str, Any]:
        source = self.one_source(legs)
        if source is None:
            return {"ratio": {}}
        if not source.prometheus:
            self.unqueried(legs)
            return {"source": source.name, "ratio": {}} if source.name else {"ratio": {}}
        ratio: dict[str, Any] = {}
        for leg in legs:
            query = self.text(leg.query, leg.where, required=True)
            if query is None:
                continue
            try:
                if leg.role == "raw":
                    rewritten = promql.ratio_over_window(query)
                    key = "errorRatio"
                    rewritten = rewritten if raw_type == "failure" else f"1 - ({rewritten.strip()})"
                else:
                    self.lint_counter(query, counter, leg.where)
                    rewritten = promql.rate_over_window(query, counter=counter)
                    key = leg.role
            except promql.PromQLRewriteError as exc:
                self.error(f"{exc}", leg.where)
                continue
            problem = promql.check(rewritten)
            if problem is not None:
                self.error(problem, leg.where)
                continue
            ratio[key] = promql.WINDOW_TEMPLATE.sub(promql.WINDOW_VARIABLE, rewritten).strip()
            self.map_field(("spec", "indicator", "ratio", key), leg.where)
        return {"source": source.name, "ratio": ratio}

    def lint_counter(self, query: str, counter: bool, where: _Where) -> None:
        if counter or promql.has_window(query):
            return
        names = sorted(name for name in promql.metric_names(query) if name.endswith(_COUNTER_SUFFIXES))
        if names:
            self.warn(
                f"{names[0]} looks like a counter but counter is not true: Relia averages the query as a gauge "
                "over the window; set counter: true to take its rate",
                where,
            )

    def one_source(self, legs: list[_Leg]) -> _Source | None:
        sources = {leg.source for leg in legs}
        if len(sources) > 1:
            self.error("the queries of one indicator must read from the same data source", legs[-1].where)
            return None
        source = legs[0].source
        if source.name is not None:
            self.map_field(("spec", "indicator", "source"), _Where(legs[0].where.document, legs[0].where.path[:-2]))
        return source

    def ignored_comparisons(self, objectives: list[_Objective]) -> None:
        for objective in objectives:
            given = [key for key, value in (("op", objective.op), ("value", objective.value)) if value is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                self.warn(
                    f"{' and '.join(given)} {verb} to threshold metrics only; ignored for a ratio metric",
                    objective.where.at(given[0]),
                )

    def comparisons(self, objectives: list[_Objective]) -> tuple[str | None, list[float]]:
        """The one ``op`` of a threshold metric's objectives, and each objective's ``value``."""
        ops: list[str] = []
        values: list[float] = []
        for objective in objectives:
            if objective.op not in promql.COMPARISONS:
                self.error(
                    f"required for a threshold metric: one of {', '.join(promql.COMPARISONS)}, got {objective.op!r}",
                    objective.where.at("op"),
                )
                continue
            value = _number(objective.value)
            if value is None:
                self.error(f"required for a threshold metric: a number, got {objective.value!r}", objective.where)
                continue
            if ops and objective.op != ops[0]:
                self.error(
                    f"every objective of a Relia threshold indicator compares the same way; the first uses "
                    f"{ops[0]}, this one {objective.op}: split them into SLOs",
                    objective.where.at("op"),
                )
            ops.append(objective.op)
            values.append(float(value))
        return (ops[0] if ops else None), values

    def threshold_indicator(
        self, leg: _Leg, objectives: list[_Objective], *, probe: bool
    ) -> tuple[dict[str, Any], list[float] | None]:
        op, values = self.comparisons(objectives)
        if op is None or len(values) != len(objectives):
            return {"ratio": {}}, None
        source = leg.source
        relia: dict[str, Any] = {"source": source.name} if source.name else {}
        if not source.prometheus:
            self.unqueried([leg])
        unit = leg.options.get("unit") if isinstance(leg.options.get("unit"), str) else None
        if probe:
            if (op, values) != ("gte", [1.0] * len(values)):
                self.error(
                    f"an indicator annotated {INDICATOR_ANNOTATION}: probe is a 0/1 gauge: its objectives are "
                    "op gte, value 1",
                    objectives[0].where.at("op"),
                )
            query = self.text(leg.query, leg.where, required=True) if source.prometheus else None
            if query is not None:
                self.check_query(query, leg.where)
            return {**relia, "probe": {"query": query} if query else {}}, None
        if not source.prometheus:
            threshold: dict[str, Any] = {"op": op}
            if unit:
                threshold["unit"] = unit
            return {**relia, "threshold": threshold}, values
        query = self.text(leg.query, leg.where, required=True)
        if query is None:
            return {"ratio": {}}, None
        selector = promql.vector_selector(query)
        if (
            selector is not None
            and selector.name.endswith("_bucket")
            and not any(label == "le" for label, _, _ in selector.labels)
        ):
            threshold = {"metric": selector.name.removesuffix("_bucket"), "selector": selector.matchers, "op": op}
            if unit:
                threshold["unit"] = unit
            return {**relia, "threshold": threshold}, values
        if len(set(values)) > 1:
            self.error(
                "a Prometheus threshold query gives one value per sample, which Relia compares with one threshold "
                "(as a probe: the share of samples that pass); these objectives have different values: split them "
                "into SLOs",
                objectives[1].where.at("value"),
            )
            return {"ratio": {}}, None
        self.check_query(query, leg.where)
        self.map_field(("spec", "indicator", "probe", "query"), leg.where)
        return {**relia, "probe": {"query": promql.comparison(query, op, values[0])}}, None

    def check_query(self, query: str, where: _Where) -> None:
        problem = promql.check(query)
        if problem is not None:
            self.error(problem, where)

    def v1alpha_indicator(self, objectives: list[_Objective]) -> tuple[dict[str, Any], list[float] | None]:
        threshold = _mapping(self.spec.get("indicator")).get("thresholdMetric")
        values = self.spec.get("objectives") if isinstance(self.spec.get("objectives"), list) else []
        ratios = [(index, value.get("ratioMetrics")) for index, value in enumerate(values) if isinstance(value, dict)]
        ratios = [(index, ratio) for index, ratio in ratios if ratio is not None]
        if threshold is not None and ratios:
            self.error("give indicator.thresholdMetric or objectives' ratioMetrics, not both", self.here("spec"))
            return {"ratio": {}}, None
        if threshold is not None:
            where = self.here("spec", "indicator", "thresholdMetric")
            leg = self.v1alpha_leg("threshold", threshold, where)
            return self.threshold_indicator(leg, objectives, probe=False) if leg else ({"ratio": {}}, None)
        if not ratios or len(ratios) != len(values):
            self.error("every objective needs ratioMetrics (or give indicator.thresholdMetric)", self.here("spec"))
            return {"ratio": {}}, None
        first_index, ratio = ratios[0]
        for index, other in ratios[1:]:
            if other != ratio:
                self.error(
                    "Relia measures one indicator per SLO, and these objectives' ratioMetrics differ: split them "
                    "into SLOs",
                    self.here("spec", "objectives", index, "ratioMetrics"),
                )
                return {"ratio": {}}, None
        where = self.here("spec", "objectives", first_index, "ratioMetrics")
        if not isinstance(ratio, dict):
            self.error("must be a mapping", where)
            return {"ratio": {}}, None
        self.fields_of[("spec", "indicator")] = where.path
        self.ignored_comparisons(objectives)
        if "raw" in ratio:
            leg = self.v1alpha_leg("raw", ratio.get("raw"), where.at("raw"))
            raw_type = ratio.get("rawType", "failure")
            if raw_type not in ("success", "failure"):
                self.error(f"must be success or failure, got {raw_type!r}", where.at("rawType"))
            return (self.ratio_body([leg], counter=False, raw_type=raw_type) if leg else {"ratio": {}}), None
        given = [role for role in ("good", "bad") if ratio.get(role) is not None]
        if len(given) != 1:
            self.error("give exactly one of good or bad, with total", where)
            return {"ratio": {}}, None
        legs = [
            self.v1alpha_leg(given[0], ratio[given[0]], where.at(given[0])),
            self.v1alpha_leg("total", ratio.get("total"), where.at("total")),
        ]
        found = [leg for leg in legs if leg is not None]
        if len(found) != 2:
            return {"ratio": {}}, None
        return self.ratio_body(found, counter=ratio.get("incremental") is True, raw_type=None), None

    def v1alpha_leg(self, role: str, value: Any, where: _Where) -> _Leg | None:
        if not isinstance(value, dict):
            self.error("required: a mapping with source, queryType and query", where)
            return None
        source = value.get("source")
        if not isinstance(source, str) or not source.strip():
            self.error("required: the data source", where.at("source"))
            return None
        if is_prometheus(source):
            relia_source = _Source(slugify(source) or DEFAULT_PROMETHEUS_SOURCE, True)
        else:
            relia_source = _Source(None, False, source)
        return _Leg(role, value.get("query"), relia_source, where.at("query"))

    # ---- alerting

    def alerting(self) -> dict[str, Any]:
        policies = self.spec.get("alertPolicies")
        if self.api_version != V1 or policies is None:
            return {}
        where = self.here("spec", "alertPolicies")
        if not isinstance(policies, list):
            self.error("must be a list of alert policies", where)
            return {}
        if not policies:
            return {}
        self.fields_of[("spec", "alerting")] = where.path
        tiers: list[dict[str, Any]] = []
        no_data = False
        for index, entry in enumerate(policies):
            item = where.at(index)
            if not isinstance(entry, dict):
                self.error("must be an inline AlertPolicy or an alertPolicyRef", item)
                continue
            if "alertPolicyRef" in entry:
                ref = entry["alertPolicyRef"]
                found = self.context.find(V1, "AlertPolicy", ref) if isinstance(ref, str) else None
                if found is None:
                    self.error(
                        f"there is no openslo/v1 AlertPolicy named {ref!r} in these files", item.at("alertPolicyRef")
                    )
                    continue
                policy, policy_where = _mapping(_mapping(found.body).get("spec")), _Where(found, ("spec",))
            else:
                if entry.get("kind", "AlertPolicy") != "AlertPolicy":
                    self.error(f"must be an AlertPolicy, got {entry.get('kind')!r}", item.at("kind"))
                    continue
                policy, policy_where = _mapping(entry.get("spec")), item.at("spec")
            policy_tiers, policy_no_data = self.policy(policy, policy_where)
            tiers += policy_tiers
            no_data = no_data or policy_no_data
        alerting: dict[str, Any] = {}
        if len(tiers) > 8:
            self.error(f"Relia alerts on at most 8 burn-rate tiers per SLO; these policies give {len(tiers)}", where)
        elif tiers:
            alerting["windows"] = tiers
        else:
            # Policies that ask for no burn-rate alert are kept to: Relia's default tiers are off.
            alerting["page"] = {"enabled": False}
            alerting["ticket"] = {"enabled": False}
        if no_data:
            alerting["noData"] = {"enabled": True}
        return alerting

    def policy(self, policy: dict[str, Any], where: _Where) -> tuple[list[dict[str, Any]], bool]:
        no_data = policy.get("alertWhenNoData") is True
        if policy.get("alertWhenResolved") is True:
            self.warn(
                "alertWhenResolved: Relia records when an alert resolves on the service's timeline; notifications "
                "come in a later capability",
                where.at("alertWhenResolved"),
            )
        targets = [
            target
            for target in _list(policy.get("notificationTargets"))
            if not (
                isinstance(target, dict) and _mapping(target.get("spec")).get("target") == RELIA_NOTIFICATION_TARGET
            )
        ]
        if targets:
            self.warn(
                "notificationTargets are read but not applied: notifications come in a later capability; until "
                "then this SLO's alerts show in Relia only",
                where.at("notificationTargets"),
            )
        conditions = _list(policy.get("conditions"))
        if policy.get("alertWhenBreaching", True) is not True:
            if conditions:
                self.warn(
                    "alertWhenBreaching is false: this policy's burn-rate conditions are not applied",
                    where.at("alertWhenBreaching"),
                )
            return [], no_data
        tiers = []
        for index, entry in enumerate(conditions):
            item = where.at("conditions", index)
            if not isinstance(entry, dict):
                self.error("must be an inline AlertCondition or a conditionRef", item)
                continue
            if "conditionRef" in entry:
                ref = entry["conditionRef"]
                found = self.context.find(V1, "AlertCondition", ref) if isinstance(ref, str) else None
                if found is None:
                    self.error(
                        f"there is no openslo/v1 AlertCondition named {ref!r} in these files", item.at("conditionRef")
                    )
                    continue
                spec, metadata, spec_where = (
                    _mapping(_mapping(found.body).get("spec")),
                    _metadata(found.body),
                    _Where(found, ("spec",)),
                )
            else:
                spec, metadata, spec_where = _mapping(entry.get("spec")), _metadata(entry), item.at("spec")
            tier = self.tier(spec, metadata, spec_where)
            if tier is not None:
                tiers.append(tier)
        return tiers, no_data

    def tier(self, spec: dict[str, Any], metadata: dict[str, Any], where: _Where) -> dict[str, Any] | None:
        condition = spec.get("condition")
        if not isinstance(condition, dict):
            self.error("required: a mapping with kind, op, threshold and lookbackWindow", where.at("condition"))
            return None
        where_condition = where.at("condition")
        before = len(self.errors)
        severity = spec.get("severity")
        if not isinstance(severity, str) or not severity.strip():
            self.error("required: page, ticket, critical, warning, ...", where.at("severity"))
        kind = condition.get("kind", "burnrate")
        if kind != "burnrate":
            self.error(f"Relia alerts on burn rates only (kind: burnrate), got {kind!r}", where_condition.at("kind"))
        op = condition.get("op")
        if op in ("lt", "lte"):
            self.error(
                f"op {op} would fire while the budget burns slowly (burn rate {'<' if op == 'lt' else '<='} "
                f"{condition.get('threshold')}), and stay quiet when it burns fast; Relia alerts when the burn rate "
                "exceeds the threshold: use gt",
                where_condition.at("op"),
            )
        elif op not in ("gt", "gte"):
            self.error(f"required: gt (or gte), got {op!r}", where_condition.at("op"))
        threshold = _number(condition.get("threshold"))
        if threshold is None or threshold <= 0:
            self.error(
                f"required: a burn rate above 0, got {condition.get('threshold')!r}", where_condition.at("threshold")
            )
        lookback = condition.get("lookbackWindow")
        long_minutes = None
        try:
            long_minutes = parse_duration(lookback) if isinstance(lookback, str) else None
        except ValueError as exc:
            self.error(str(exc), where_condition.at("lookbackWindow"))
        else:
            if long_minutes is None:
                self.error("required: a duration such as 1h", where_condition.at("lookbackWindow"))
        after = condition.get("alertAfter")
        if after is not None:
            try:
                zero = isinstance(after, int | str) and re.fullmatch(r"0+[a-z]*", str(after).strip()) is not None
                delay = 0 if zero else parse_duration(after)
            except ValueError as exc:
                self.error(str(exc), where_condition.at("alertAfter"))
            else:
                if delay:
                    self.error(
                        f"Relia fires as soon as both of a tier's windows burn too fast; it cannot wait {after} "
                        "first (there is no alertAfter / for: delay): remove it or set 0m",
                        where_condition.at("alertAfter"),
                    )
        short = _annotations(metadata).get(SHORT_WINDOW_ANNOTATION)
        short_minutes = None
        if long_minutes is not None:
            short_minutes = short_window(long_minutes)
            if short is not None:
                try:
                    short_minutes = parse_duration(str(short))
                except ValueError as exc:
                    self.error(str(exc), _Where(where.document, (*where.path[:-1], "metadata", "annotations")))
        if len(self.errors) > before or threshold is None or long_minutes is None or short_minutes is None:
            return None
        assert self.period_minutes is not None
        percent = budget_percent(threshold, long_minutes, self.period_minutes)
        if percent > 100:
            self.error(
                f"a burn rate of {condition['threshold']} over {lookback} spends {percent:.4g} % of this SLO's "
                f"budget, more than all of it, so it could never fire",
                where_condition.at("threshold"),
            )
            return None
        return {
            "severity": "page" if str(severity).strip().lower() in ("page", "critical") else "ticket",
            "budgetPercent": percent,
            "long": duration_text(long_minutes, lookback),
            "short": duration_text(short_minutes, short) if short is not None else format_duration(short_minutes),
        }


def translate_slo(document: Document, context: TranslationContext) -> list[Document]:
    return _SLOReader(document, context).translate()


# ------------------------------------------------------------------------------------------- registration


def _register(pairs: Iterable[tuple[str, str]], translate: Any) -> None:
    for api_version, kind in pairs:
        register_translator(api_version, kind, translate)


_register([(V1, "SLO"), (V1ALPHA, "SLO")], translate_slo)
_register([(V1, "Service"), (V1ALPHA, "Service")], translate_service)
_register([(V1, "DataSource")], translate_data_source)
_register([(V1, kind) for kind in _SUPPORTING_KINDS], translate_supporting)
