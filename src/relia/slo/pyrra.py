"""Pyrra ``ServiceLevelObjective`` objects (``pyrra.dev/v1alpha1``) translated into Relia ``SLO`` documents.

=======================  ===================================================================================
Relia                    from Pyrra
=======================  ===================================================================================
``metadata.name``        ``metadata.name``
``spec.service``         the annotation (or label) ``relia.dev/service``; Pyrra has no services, so without
                         it the Kubernetes namespace, else the SLO's name, with a warning naming the choice
``spec.description``     ``description``
``spec.labels``          ``metadata.labels`` (a ``pyrra.dev/`` prefix dropped, as Pyrra does for its alerts;
                         other characters a Prometheus label name cannot hold become ``_``), and ``namespace``
``spec.indicator``       ``source``: the Relia DataSource ``prometheus`` (Pyrra names no Prometheus), or the
                         one named by the annotation ``relia.dev/data-source``; then by indicator type:
                         ``ratio`` -> ``ratio.bad`` = ``sum(rate(<errors>[{{.window}}]))``, ``ratio.total``
                         likewise; ``latency`` -> ``ratio.good`` = the rate of the ``le`` bucket selector,
                         ``ratio.total`` = the rate of the ``_count`` selector (exactly Pyrra's arithmetic, and
                         the ``le`` value stays as written, which a threshold indicator would respell);
                         ``latencyNative`` -> ``ratio.good`` = ``histogram_fraction(0, <latency in seconds>,
                         ...) * histogram_count(...)`` and ``ratio.total`` = ``histogram_count(...)`` over
                         ``sum(rate(<total>[{{.window}}]))``; ``bool_gauge`` -> ``probe`` with the metric
``spec.window``          rolling ``window`` (a Prometheus duration, respelled in one unit: ``1d12h`` -> ``36h``)
``spec.objectives``      one objective ``default``, target = ``target`` / 100 (a string percentage)
``spec.alerting``        Relia's default tiers for the window (not Pyrra's factors 14/7/2/1 or its ``for:``
                         delays); ``alerting.disabled`` or ``burnrates: false`` turns the burn-rate alerts
                         off; ``absent`` (Pyrra's default: on) becomes Relia's no-data alert; ``name`` is kept
=======================  ===================================================================================

Refused, naming the field: ``grouping`` (one SLO per label value: Relia has no grouped SLOs, and adding the
groups up would let one group's outage hide in the total), metrics that are not one vector selector (Pyrra
requires it too), a target of 100 or more, windows that are not whole minutes or that Relia cannot spell,
unknown fields. Warned about: ``absentName`` and ``partial_response_strategy`` (Thanos Ruler), which have no
Relia counterpart.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import promql_parser
from pydantic import ValidationError

from relia.config.documents import ConfigInvalid, ConfigProblem, Document
from relia.config.registry import API_VERSION, TranslationContext, register_translator
from relia.slo import promql
from relia.slo.openslo import duration_text, label_map, slugify
from relia.slo.rules import parse_target
from relia.slo.schemas import SLOSpec

API_VERSION_PYRRA = "pyrra.dev/v1alpha1"
KIND = "ServiceLevelObjective"
SERVICE_KEY = "relia.dev/service"
DATA_SOURCE_ANNOTATION = "relia.dev/data-source"
DEFAULT_DATA_SOURCE = "prometheus"
PYRRA_LABEL_PREFIX = "pyrra.dev/"

_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_SPEC_FIELDS = {"description", "target", "window", "indicator", "alerting", "partial_response_strategy"}
_INDICATORS = {
    "ratio": {"errors", "total", "grouping"},
    "latency": {"success", "total", "grouping"},
    "latencyNative": {"total", "latency", "grouping"},
    "bool_gauge": {"metric", "grouping"},
}
_ALERTING_FIELDS = {"disabled", "burnrates", "absent", "name", "absentName"}

Path = tuple[str | int, ...]


class _Reader:
    """Reads one Pyrra object, collecting every problem (so one run names them all)."""

    def __init__(self, document: Document, context: TranslationContext) -> None:
        self.document = document
        self.context = context
        self.body: dict[str, Any] = document.body
        self.metadata = self.body.get("metadata") if isinstance(self.body.get("metadata"), dict) else {}
        self.name = self.metadata.get("name")
        self.errors: list[ConfigProblem] = []

    def _problem(self, message: str, path: Path) -> ConfigProblem:
        return self.document.problem(message, path, kind=KIND, name=self.name)

    def error(self, message: str, path: Path) -> None:
        self.errors.append(self._problem(message, path))

    def warn(self, message: str, path: Path) -> None:
        self.context.warn(self._problem(message, path))

    def mapping(self, value: Any, path: Path, fields: set[str], *, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.error("required", path)
            return {}
        if not isinstance(value, dict):
            self.error("must be a mapping", path)
            return {}
        for key in value:
            if key not in fields:
                self.error(f"unknown field {key!r}; Pyrra's are {', '.join(sorted(fields))}", (*path, key))
        return value

    # ---- the object

    def translate(self) -> list[Document]:
        for key in self.body:
            if key not in _TOP_LEVEL:
                self.error(f"unknown top-level field {key!r}", (key,))
        spec = self.mapping(self.body.get("spec"), ("spec",), _SPEC_FIELDS, required=True)
        relia: dict[str, Any] = {"service": self.service()}
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            self.error("must be a string", ("spec", "description"))
        elif description:
            relia["description"] = description
        labels = self.labels()
        if labels:
            relia["labels"] = labels
        relia["indicator"] = self.indicator(spec.get("indicator"))
        relia["budgetingMethod"] = "Occurrences"
        relia["window"] = {"rolling": self.window(spec.get("window"))}
        relia["objectives"] = [{"name": "default", "target": self.target(spec.get("target"))}]
        alerting = self.alerting(spec.get("alerting"))
        if alerting:
            relia["alerting"] = alerting
        if spec.get("partial_response_strategy") is not None:
            self.warn(
                "partial_response_strategy is for Thanos Ruler, which Relia does not use: not applied",
                ("spec", "partial_response_strategy"),
            )
        if not self.errors:
            self.check(relia)
        if self.errors:
            raise ConfigInvalid(self.errors)
        body = {"apiVersion": API_VERSION, "kind": "SLO", "metadata": {"name": self.name}, "spec": relia}
        return [self.document.derived(body, origin=f"{API_VERSION_PYRRA} {KIND} {self.name!r}")]

    def check(self, spec: dict[str, Any]) -> None:
        """Validate the translation as Relia will, so an error points at this object."""
        try:
            SLOSpec.model_validate(spec)
        except ValidationError as exc:
            for error in exc.errors():
                relia_path = ".".join(str(part) for part in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                self.error(f"{message} (in Relia's spec.{relia_path})", ("spec",))

    def service(self) -> str | None:
        annotations = self.metadata.get("annotations") if isinstance(self.metadata.get("annotations"), dict) else {}
        labels = self.metadata.get("labels") if isinstance(self.metadata.get("labels"), dict) else {}
        given = annotations.get(SERVICE_KEY, labels.get(SERVICE_KEY))
        if given is not None:
            if not isinstance(given, str) or not given.strip():
                self.error("must name a Relia service", ("metadata", "annotations", SERVICE_KEY))
                return None
            return given.strip()
        namespace = self.metadata.get("namespace")
        chosen = slugify(namespace) if isinstance(namespace, str) else ""
        where = f"its namespace {namespace!r}" if chosen else "its own name"
        chosen = chosen or (slugify(self.name) if isinstance(self.name, str) else "")
        self.warn(
            f"Pyrra has no services; Relia puts this SLO under the service {chosen!r} ({where}), which must exist "
            f"at apply: annotate it {SERVICE_KEY}: <service> to choose",
            ("metadata",),
        )
        return chosen or None

    def labels(self) -> dict[str, str]:
        raw = self.metadata.get("labels")
        if raw is not None and not isinstance(raw, dict):
            self.error("must map strings to strings", ("metadata", "labels"))
            return {}
        stripped = {
            str(key).removeprefix(PYRRA_LABEL_PREFIX): value for key, value in (raw or {}).items() if key != SERVICE_KEY
        }
        labels, notes = label_map(stripped)
        for note in notes:
            self.warn(note, ("metadata", "labels"))
        namespace = self.metadata.get("namespace")
        if isinstance(namespace, str) and namespace and "namespace" not in labels:
            labels["namespace"] = namespace
        return labels

    # ---- indicator

    def indicator(self, value: Any) -> dict[str, Any]:
        path: Path = ("spec", "indicator")
        indicator = self.mapping(value, path, set(_INDICATORS), required=True)
        given = [key for key in _INDICATORS if indicator.get(key) is not None]
        if len(given) != 1:
            if isinstance(value, dict):
                self.error(f"give exactly one of {', '.join(_INDICATORS)}", path)
            return {"ratio": {}}
        kind = given[0]
        path = (*path, kind)
        body = self.mapping(indicator[kind], path, _INDICATORS[kind])
        grouping = body.get("grouping")
        if grouping:
            self.error(
                "grouping makes one SLO per value of "
                + ", ".join(str(label) for label in (grouping if isinstance(grouping, list) else [grouping]))
                + ": Relia has no grouped SLOs, and one SLO over all of them would let one group's outage hide in "
                "the total; write one SLO per group (with the label in its selectors)",
                (*path, "grouping"),
            )
        annotations = self.metadata.get("annotations") if isinstance(self.metadata.get("annotations"), dict) else {}
        source = annotations.get(DATA_SOURCE_ANNOTATION, DEFAULT_DATA_SOURCE)
        if not isinstance(source, str) or not source.strip():
            self.error("must name a Relia data source", ("metadata", "annotations", DATA_SOURCE_ANNOTATION))
            return {"ratio": {}}
        if kind == "bool_gauge":
            metric = self.metric(body, path)
            return {"source": source, "probe": {"query": metric}} if metric else {"ratio": {}}
        if kind == "latencyNative":
            return {"source": source, "ratio": self.native_latency(body, path)}
        good_key = "errors" if kind == "ratio" else "success"
        good = self.metric(body.get(good_key), (*path, good_key), nested=True)
        total = self.metric(body.get("total"), (*path, "total"), nested=True)
        if good is None or total is None:
            return {"ratio": {}}
        if kind == "latency":
            self.lint_latency(good, total, path)
        return {
            "source": source,
            "ratio": {"bad" if kind == "ratio" else "good": _rate(good), "total": _rate(total)},
        }

    def metric(self, value: Any, path: Path, *, nested: bool = False) -> str | None:
        """The ``metric`` selector of ``value`` (``{metric: ...}``) or, for bool_gauge, of the indicator."""
        holder = self.mapping(value, path, {"metric"}, required=True) if nested else value
        metric = holder.get("metric") if isinstance(holder, dict) else None
        where = (*path, "metric")
        if not isinstance(metric, str) or not metric.strip():
            self.error('required: a Prometheus selector such as http_requests_total{job="api"}', where)
            return None
        if promql.vector_selector(metric.strip()) is None:
            problem = promql.check(metric)
            self.error(
                problem or "must be one vector selector, metric{matchers}, without functions (Pyrra requires it too)",
                where,
            )
            return None
        return metric.strip()

    def native_latency(self, body: dict[str, Any], path: Path) -> dict[str, str]:
        total = self.metric(body.get("total"), (*path, "total"), nested=True)
        latency = body.get("latency")
        seconds = None
        try:
            seconds = promql_parser.parse_duration(latency).total_seconds() if isinstance(latency, str) else None
        except ValueError:
            seconds = None
        if seconds is None or seconds <= 0:
            self.error(f"required: a Prometheus duration such as 200ms or 1s, got {latency!r}", (*path, "latency"))
        if total is None or seconds is None:
            return {}
        rate = f"sum(rate({total}[{promql.WINDOW_VARIABLE}]))"
        return {
            "good": f"histogram_fraction(0, {seconds:g}, {rate}) * histogram_count({rate})",
            "total": f"histogram_count({rate})",
        }

    def lint_latency(self, success: str, total: str, path: Path) -> None:
        good, count = promql.vector_selector(success), promql.vector_selector(total)
        assert good is not None and count is not None
        if good.label_value("le") is None:
            self.error('must select one bucket with an le matcher, such as le="0.5"', (*path, "success", "metric"))
            return
        if good.without("le") != count.labels:
            self.warn(
                "the success and total selectors differ in more than le: the good requests may not be a subset "
                "of the total (Relia imports them as written)",
                (*path, "success", "metric"),
            )

    # ---- window, target, alerting

    def window(self, value: Any) -> str:
        path: Path = ("spec", "window")
        try:
            duration = promql_parser.parse_duration(value) if isinstance(value, str) else None
        except ValueError:
            duration = None
        if duration is None or duration <= timedelta(0):
            self.error(f"required: a Prometheus duration such as 28d or 4w, got {value!r}", path)
            return "28d"
        minutes, rest = divmod(duration, timedelta(minutes=1))
        if rest:
            self.error(f"{value!r} is not a whole number of minutes", path)
            return "28d"
        spelled = duration_text(minutes, value)
        if spelled.endswith("m"):
            self.error(f"a rolling SLO window of {value!r} is not a whole number of hours", path)
            return "28d"
        return spelled

    def target(self, value: Any) -> float:
        path: Path = ("spec", "target")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(f"required: a percentage as a string, such as '99.9', got {value!r}", path)
            return 0.5
        try:
            ratio = parse_target(value, percent=True)
        except ValueError as exc:
            self.error(f"{exc} (Pyrra's target is a percentage, such as '99.9')", path)
            return 0.5
        if ratio == 0:
            self.error("a target of 0 is always met; give the percentage of good events to aim for", path)
            return 0.5
        return float(ratio)

    def alerting(self, value: Any) -> dict[str, Any]:
        path: Path = ("spec", "alerting")
        alerting = self.mapping(value, path, _ALERTING_FIELDS)
        flags: dict[str, bool] = {}
        for key, default in (("disabled", False), ("burnrates", True), ("absent", True)):
            flag = alerting.get(key, default)
            if not isinstance(flag, bool):
                self.error("must be true or false", (*path, key))
                flag = default
            flags[key] = flag
        out: dict[str, Any] = {}
        name = alerting.get("name")
        if name is not None:
            if not isinstance(name, str):
                self.error("must be a string", (*path, "name"))
            elif name:
                out["name"] = name
        if flags["disabled"] or not flags["burnrates"]:
            out["page"] = {"enabled": False}
            out["ticket"] = {"enabled": False}
        if flags["absent"] and not flags["disabled"]:
            out["noData"] = {"enabled": True}
        if alerting.get("absentName") is not None:
            self.warn("absentName is not applied: Relia's no-data alert has no name of its own", (*path, "absentName"))
        return out


def _rate(selector: str) -> str:
    return f"sum(rate({selector}[{promql.WINDOW_VARIABLE}]))"


def translate(document: Document, context: TranslationContext) -> list[Document]:
    """The Relia SLO document of one Pyrra object. Raises ConfigInvalid naming every field Relia cannot
    honour; warnings about what is read but not applied go to ``context``."""
    if not isinstance(document.body, dict):
        raise ConfigInvalid([document.problem("a Pyrra ServiceLevelObjective must be a mapping")])
    return _Reader(document, context).translate()


register_translator(API_VERSION_PYRRA, KIND, translate)
