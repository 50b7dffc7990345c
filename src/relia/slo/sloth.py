"""Sloth SLO specs translated into Relia ``SLO`` documents.

Sloth (github.com/slok/sloth) writes SLOs in two shapes, both read here:

* ``version: "prometheus/v1"`` files: snake_case, no ``apiVersion``/``kind`` (claimed by a detector);
* Kubernetes objects ``apiVersion: sloth.slok.dev/v1``, ``kind: PrometheusServiceLevel``: the same fields in
  camelCase under ``spec``.

Each Sloth SLO becomes one ``relia.dev/v1`` SLO:

=====================  ===============================================================================
Relia                  from Sloth
=====================  ===============================================================================
``metadata.name``      ``<service>-<slo name>``: Sloth's SLO id, so exported rules keep their ``sloth_id``
``spec.service``       ``service``
``spec.description``   ``slos[].description``
``spec.labels``        the file's ``labels``, then the SLO's ``labels`` (the SLO's win, as in Sloth)
``spec.indicator``     ``source`` = the data source (below); ``sli.events`` -> ``ratio.bad``/``ratio.total``,
                       ``sli.raw`` -> ``ratio.errorRatio`` (``{{ .window }}`` is kept, as ``{{.window}}``)
``spec.window``        rolling 30d: Sloth files carry no period; 30d is Sloth's ``--default-slo-period``
``spec.objectives``    one objective, ``default``, target = ``objective`` / 100 (exact: 99.9 -> 0.999)
``spec.alerting``      ``name``, ``labels``, ``annotations``; ``page``/``ticket`` from ``page_alert``/
                       ``ticket_alert``: enabled unless ``disable``, with their labels and annotations
=====================  ===============================================================================

The data source: Sloth specs name no Prometheus (Sloth only writes rules), while Relia queries one, so each
translated SLO reads from the Relia ``DataSource`` named ``prometheus`` (:data:`DEFAULT_DATA_SOURCE`). A
Kubernetes object may name another with the annotation ``relia.dev/data-source``; callers translating
directly (:func:`convert`, :func:`translate`) may pass ``data_source=``, which wins over both.

Sloth's own checks are kept (name syntax, objective in (0, 100], queries with the window variable, error and
total queries that differ, an alert name unless both alerts are disabled). What Relia cannot honour is
refused with the field named: SLI plugins (``sli.plugin``: Go code that writes the query inside Sloth), SLO
plugin chains, an objective of 100 % (no error budget), names that cannot be a Relia name, unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from relia.config.documents import ConfigInvalid, ConfigProblem, Document, SourceFile, parse
from relia.config.registry import API_VERSION, TranslationContext, register_detected_translator, register_translator
from relia.core.schemas import SLUG_PATTERN
from relia.slo.promql import WINDOW_TEMPLATE, WINDOW_VARIABLE, check
from relia.slo.rules import exact
from relia.slo.schemas import SLOSpec

SPEC_VERSION = "prometheus/v1"
KUBERNETES_API_VERSION = "sloth.slok.dev/v1"
KUBERNETES_KIND = "PrometheusServiceLevel"
DEFAULT_DATA_SOURCE = "prometheus"
DATA_SOURCE_ANNOTATION = "relia.dev/data-source"
SLOTH_PERIOD = "30d"
OBJECTIVE_NAME = "default"

# Sloth's name rule: starts and ends alphanumeric, only [-A-Za-z0-9_.] between (so at least 2 characters).
_SLOTH_NAME = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]")
_SLUG = re.compile(SLUG_PATTERN)
_KUBERNETES_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class _Spelling:
    """The field names of one Sloth shape: the prometheus/v1 file is snake_case, the Kubernetes object
    camelCase. Errors name fields as the user wrote them."""

    format: str
    error_query: str
    total_query: str
    error_ratio_query: str
    page_alert: str
    ticket_alert: str
    slo_plugins: str


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


_SNAKE_CASE_FIELDS = ("error_query", "total_query", "error_ratio_query", "page_alert", "ticket_alert", "slo_plugins")
_FILE = _Spelling("Sloth prometheus/v1", *_SNAKE_CASE_FIELDS)
_KUBERNETES = _Spelling("Sloth PrometheusServiceLevel", *(_camel(name) for name in _SNAKE_CASE_FIELDS))


@dataclass
class Converted:
    """Relia documents translated from Sloth files, and what was read but not applied."""

    documents: list[dict[str, Any]]
    warnings: list[ConfigProblem]


# --------------------------------------------------------------------------------------------- entry points


def is_sloth_spec(body: dict[str, Any]) -> bool:
    """Whether a document without ``apiVersion`` is a Sloth ``prometheus/v<n>`` spec (other versions are
    claimed too, so that they are refused as Sloth specs rather than as broken Relia documents)."""
    version = body.get("version")
    return "apiVersion" not in body and isinstance(version, str) and version.startswith("prometheus/")


def translate(
    document: Document, context: TranslationContext | None = None, *, data_source: str | None = None
) -> list[Document]:
    """The Relia SLO documents of one Sloth document (either shape). Raises ConfigInvalid naming every field
    Relia cannot honour; warnings about what is read but not applied go to ``context``."""
    body = document.body
    if not isinstance(body, dict):
        raise ConfigInvalid([document.problem("a Sloth document must be a mapping")])
    if "apiVersion" in body:
        reader = _Reader(document, _KUBERNETES, base=("spec",))
        slos = reader.kubernetes(body, data_source)
    else:
        reader = _Reader(document, _FILE, base=())
        slos = reader.spec_file(body, data_source or DEFAULT_DATA_SOURCE)
    if reader.problems:
        raise ConfigInvalid(reader.problems)
    if context is not None:
        for warning in reader.warnings:
            context.warn(warning)
    return slos


def convert(files: list[SourceFile], *, data_source: str | None = None) -> Converted:
    """Sloth files (any mix of both shapes) as Relia document bodies, for ``relia``'s converter verbs.
    Raises ConfigInvalid for YAML errors, documents that are not Sloth's, and everything :func:`translate`
    refuses."""
    documents = parse(files)
    context = TranslationContext(documents)
    out: list[dict[str, Any]] = []
    problems: list[ConfigProblem] = []
    for document in documents:
        body = document.body
        is_kubernetes = (
            isinstance(body, dict)
            and body.get("apiVersion") == KUBERNETES_API_VERSION
            and body.get("kind") == KUBERNETES_KIND
        )
        if not (is_kubernetes or (isinstance(body, dict) and is_sloth_spec(body))):
            problems.append(
                document.problem(
                    f"not a Sloth SLO document: expected `version: {SPEC_VERSION}` or "
                    f"`apiVersion: {KUBERNETES_API_VERSION}` with `kind: {KUBERNETES_KIND}`"
                )
            )
            continue
        try:
            out += [translated.body for translated in translate(document, context, data_source=data_source)]
        except ConfigInvalid as exc:
            problems += exc.problems
    if problems:
        raise ConfigInvalid(problems)
    return Converted(out, context.warnings)


def _refuse_alert_windows(document: Document, context: TranslationContext) -> list[Document]:
    raise ConfigInvalid(
        [
            document.problem(
                "a Sloth AlertWindows catalog is not an SLO: give it to the Prometheus rules export instead, "
                "or write its tiers into an SLO's spec.alerting.windows",
                ("kind",),
            )
        ]
    )


# ------------------------------------------------------------------------------------------------ reading


class _Reader:
    """Reads one Sloth document, collecting every problem (so one run names them all)."""

    def __init__(self, document: Document, spelling: _Spelling, *, base: Path) -> None:
        self.document = document
        self.spelling = spelling
        self.base = base  # where service, labels and slos live: () in a file, ("spec",) in a Kubernetes object
        self.problems: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []

    # ---- shapes

    def kubernetes(self, body: dict[str, Any], data_source: str | None) -> list[Document]:
        for key in body:
            if key not in _KUBERNETES_TOP_LEVEL:
                self.fail(f"unknown top-level field {key!r}", (key,))
        metadata = body.get("metadata")
        annotations: dict[str, Any] = {}
        if isinstance(metadata, dict):
            annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
            kept = [f"{key} {metadata[key]!r}" for key in ("name", "namespace") if isinstance(metadata.get(key), str)]
            if kept:
                self.warnings.append(
                    self.document.problem(
                        f"not kept: the Kubernetes object's {' and '.join(kept)} (Relia names each SLO "
                        "<service>-<slo name>)",
                        ("metadata",),
                    )
                )
        elif metadata is not None:
            self.fail("must be a mapping", ("metadata",))
        source = data_source
        if source is None:
            annotated = annotations.get(DATA_SOURCE_ANNOTATION)
            if annotated is not None and not isinstance(annotated, str):
                self.fail("must be a string naming a Relia data source", ("metadata", "annotations"))
            source = annotated if isinstance(annotated, str) else DEFAULT_DATA_SOURCE
        if "spec" not in body:
            self.fail("required", ("spec",))
            return []
        spec = self.mapping(body["spec"], ("spec",), {"service", "labels", "slos", self.spelling.slo_plugins})
        return self.service_level(spec, source)

    def spec_file(self, body: dict[str, Any], data_source: str) -> list[Document]:
        version = body.get("version")
        if version != SPEC_VERSION:
            self.fail(f"unsupported Sloth spec version {version!r}; Relia reads {SPEC_VERSION!r}", ("version",))
            return []
        fields = {"version", "service", "labels", "slos", self.spelling.slo_plugins}
        return self.service_level(self.mapping(body, (), fields), data_source)

    def service_level(self, spec: dict[str, Any], data_source: str) -> list[Document]:
        """The common part: ``service``, ``labels``, ``slos`` (at the top of a file, under ``spec`` in a
        Kubernetes object)."""
        base = self.base
        if spec.get(self.spelling.slo_plugins) is not None:
            self.fail(
                "Sloth SLO plugins rewrite the generated rules inside Sloth; Relia cannot run them: remove "
                "the plugin chain (and apply its effect to the SLOs by hand)",
                (*base, self.spelling.slo_plugins),
            )
        service = self.name(spec.get("service"), (*base, "service"), what="service")
        if service is not None and not _SLUG.fullmatch(service):
            self.fail(
                f"{service!r} cannot be a Relia service name: lower-case letters, digits and dashes (at most 63), "
                "starting and ending with a letter or digit",
                (*base, "service"),
            )
            service = None
        file_labels = self.labels(spec.get("labels"), (*base, "labels"))
        slos = spec.get("slos")
        if not isinstance(slos, list) or not slos:
            self.fail("at least one SLO is required", (*base, "slos"))
            return []
        translated = []
        for index, slo in enumerate(slos):
            document = self.slo(slo, (*base, "slos", index), service, file_labels, data_source)
            if document is not None:
                translated.append(document)
        return translated

    # ---- one SLO

    def slo(
        self, slo: Any, path: Path, service: str | None, file_labels: dict[str, str], data_source: str
    ) -> Document | None:
        spelling = self.spelling
        fields = {"name", "objective", "description", "labels", "sli", "alerting", "plugins"}
        if not isinstance(slo, dict):
            self.fail("must be a mapping", path)
            return None
        before = len(self.problems)
        slo = self.mapping(slo, path, fields)
        if slo.get("plugins") is not None:
            self.fail(
                "Sloth SLO plugins rewrite the generated rules inside Sloth; Relia cannot run them: remove the "
                "plugin chain (and apply its effect to this SLO by hand)",
                (*path, "plugins"),
            )
        name = self.name(slo.get("name"), (*path, "name"), what="SLO")
        relia_name = None
        if name is not None and service is not None:
            relia_name = f"{service}-{name}"
            if not _SLUG.fullmatch(relia_name):
                self.fail(
                    f"Relia names this SLO {relia_name!r} (<service>-<slo name>), which is not a valid Relia name: "
                    "lower-case letters, digits and dashes (at most 63 in all), starting and ending with a letter "
                    "or digit; rename the SLO",
                    (*path, "name"),
                )
        target = self.objective(slo.get("objective"), (*path, "objective"))
        description = self.text(slo.get("description"), (*path, "description"))
        labels = {**file_labels, **self.labels(slo.get("labels"), (*path, "labels"))}
        indicator = self.indicator(slo.get("sli"), (*path, "sli"), data_source)
        alerting = self.alerting(slo.get("alerting"), (*path, "alerting"))
        if len(self.problems) > before or relia_name is None or target is None or indicator is None:
            return None
        spec: dict[str, Any] = {"service": service}
        if description:
            spec["description"] = description
        if labels:
            spec["labels"] = labels
        spec |= {
            "indicator": indicator,
            "budgetingMethod": "Occurrences",
            "window": {"rolling": SLOTH_PERIOD},
            "objectives": [{"name": OBJECTIVE_NAME, "target": float(target)}],
            "alerting": alerting,
        }
        fields_of = self.relia_to_sloth(path)
        self.check_spec(spec, path, fields_of)
        body = {"apiVersion": API_VERSION, "kind": "SLO", "metadata": {"name": relia_name}, "spec": spec}
        translated = self.document.derived(body, origin=f"{spelling.format} SLO {name!r} of service {service!r}")
        # Problems found later (a missing service, say) point at the line of the Sloth field they came from.
        translated.lines = {(): self.document.line_of(path) or 1}
        for relia_path, sloth_path in fields_of.items():
            line = self.document.line_of(sloth_path)
            if line is not None:
                translated.lines[relia_path] = line
        return translated

    def objective(self, value: Any, path: Path) -> Fraction | None:
        """Sloth's objective is a percentage in (0, 100]; Relia's target is a ratio below 1."""
        if value is None:
            self.fail("required: the objective as a percentage, e.g. 99.9", path)
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"must be a number (a percentage, e.g. 99.9), got {value!r}", path)
            return None
        percent = exact(value)
        if not 0 < percent <= 100:
            self.fail(f"must be above 0 and at most 100 (a percentage, e.g. 99.9), got {value!r}", path)
            return None
        if percent == 100:
            self.fail("an objective of 100 % leaves no error budget; Relia needs an objective below 100", path)
            return None
        return percent / 100

    def indicator(self, value: Any, path: Path, data_source: str) -> dict[str, Any] | None:
        spelling = self.spelling
        sli = self.mapping(value, path, {"events", "raw", "plugin"}, required=True)
        if sli.get("plugin") is not None:
            self.fail(
                "Sloth SLI plugins generate their query inside Sloth; Relia cannot run them: replace sli.plugin "
                "with sli.events or sli.raw holding the query the plugin generates",
                (*path, "plugin"),
            )
            return None
        given = [key for key in ("events", "raw") if sli.get(key) is not None]
        if len(given) != 1:
            if value is not None and isinstance(value, dict):
                self.fail("give exactly one SLI type: events or raw", path)
            return None
        if given == ["events"]:
            events_path = (*path, "events")
            events = self.mapping(sli["events"], events_path, {spelling.error_query, spelling.total_query})
            bad = self.query(events.get(spelling.error_query), (*events_path, spelling.error_query))
            total = self.query(events.get(spelling.total_query), (*events_path, spelling.total_query))
            if bad is None or total is None:
                return None
            if bad == total:
                self.fail("the error and total queries are the same (Sloth refuses it too)", events_path)
                return None
            return {"source": data_source, "ratio": {"bad": bad, "total": total}}
        raw_path = (*path, "raw")
        raw = self.mapping(sli["raw"], raw_path, {spelling.error_ratio_query})
        ratio = self.query(raw.get(spelling.error_ratio_query), (*raw_path, spelling.error_ratio_query))
        return None if ratio is None else {"source": data_source, "ratio": {"errorRatio": ratio}}

    def query(self, value: Any, path: Path) -> str | None:
        query = self.text(value, path, required=True)
        if query is None:
            return None
        if not WINDOW_TEMPLATE.search(query):
            self.fail(
                f"the query must contain the {WINDOW_VARIABLE} variable (each alert window substitutes its own "
                "range, e.g. [5m]); Sloth refuses it too",
                path,
            )
            return None
        problem = check(query)
        if problem:
            self.fail(f"{problem} (Sloth refuses it too)", path)
            return None
        # Sloth reads the variable with spaces inside the braces too; Relia's queries use one spelling.
        return WINDOW_TEMPLATE.sub(WINDOW_VARIABLE, query).strip()

    def alerting(self, value: Any, path: Path) -> dict[str, Any]:
        spelling = self.spelling
        fields = {"name", "labels", "annotations", spelling.page_alert, spelling.ticket_alert}
        alerting = self.mapping(value, path, fields)
        out: dict[str, Any] = {}
        name = self.text(alerting.get("name"), (*path, "name"))
        if name:
            out["name"] = name
        for key in ("labels", "annotations"):
            values = self.labels(alerting.get(key), (*path, key))
            if values:
                out[key] = values
        enabled_any = False
        for relia_key, sloth_key in (("page", spelling.page_alert), ("ticket", spelling.ticket_alert)):
            alert_path = (*path, sloth_key)
            alert = self.mapping(alerting.get(sloth_key), alert_path, {"disable", "labels", "annotations"})
            disable = alert.get("disable", False)
            if not isinstance(disable, bool):
                self.fail("must be true or false", (*alert_path, "disable"))
                disable = False
            out[relia_key] = {"enabled": not disable}
            enabled_any = enabled_any or not disable
            for key in ("labels", "annotations"):
                values = self.labels(alert.get(key), (*alert_path, key))
                if values:
                    out[relia_key][key] = values
        if enabled_any and not name:
            self.fail(
                f"required unless both {spelling.page_alert} and {spelling.ticket_alert} are disabled "
                "(the alerts' name; Sloth refuses it too)",
                (*path, "name"),
            )
        return out

    def check_spec(self, spec: dict[str, Any], path: Path, fields_of: dict[Path, Path]) -> None:
        """Validate the translated spec as Relia will, so that an error names the Sloth field it came from."""
        try:
            SLOSpec.model_validate(spec)
        except ValidationError as exc:
            for error in exc.errors():
                relia_path: Path = ("spec", *error["loc"])
                sloth_path = next(
                    (fields_of[relia_path[:n]] for n in range(len(relia_path), 0, -1) if relia_path[:n] in fields_of),
                    path,
                )
                message = str(error["msg"]).removeprefix("Value error, ")
                self.fail(f"{message} (in Relia's {'.'.join(str(part) for part in relia_path)})", sloth_path)

    def relia_to_sloth(self, path: Path) -> dict[Path, Path]:
        """Where each translated field came from, for error lines and messages."""
        spelling, alerting, sli = self.spelling, (*path, "alerting"), (*path, "sli")
        labels = (*self.base, "labels")
        return {
            ("metadata",): (*path, "name"),
            ("spec", "service"): (*self.base, "service"),
            ("spec", "description"): (*path, "description"),
            ("spec", "labels"): (*path, "labels") if "labels" in (_body_at(self.document, path) or {}) else labels,
            ("spec", "indicator"): sli,
            ("spec", "indicator", "ratio", "bad"): (*sli, "events", spelling.error_query),
            ("spec", "indicator", "ratio", "total"): (*sli, "events", spelling.total_query),
            ("spec", "indicator", "ratio", "errorRatio"): (*sli, "raw", spelling.error_ratio_query),
            ("spec", "objectives"): (*path, "objective"),
            ("spec", "alerting"): alerting,
            ("spec", "alerting", "page"): (*alerting, spelling.page_alert),
            ("spec", "alerting", "ticket"): (*alerting, spelling.ticket_alert),
        }

    # ---- values

    def fail(self, message: str, path: Path) -> None:
        self.problems.append(self.document.problem(message, path))

    def mapping(self, value: Any, path: Path, fields: Iterable[str], *, required: bool = False) -> dict[str, Any]:
        """``value`` as a mapping (empty when absent or wrong), with unknown fields refused: Sloth's own
        YAML reader ignores them, which turns a misspelt ``page_alert`` into an enabled page."""
        if value is None:
            if required:
                self.fail("required", path)
            return {}
        if not isinstance(value, dict):
            self.fail("must be a mapping", path)
            return {}
        allowed = set(fields)
        for key in value:
            if key not in allowed:
                self.fail(self.unknown(key, allowed), (*path, key))
        return value

    def unknown(self, key: str, allowed: set[str]) -> str:
        for other in (_snake(key), _camel(key)):
            if other != key and other in allowed:
                return f"unknown field {key!r}: the {self.spelling.format} format spells it {other!r}"
        return f"unknown field {key!r} (known here: {', '.join(sorted(allowed))})"

    def text(self, value: Any, path: Path, *, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.fail("required", path)
            return None
        if not isinstance(value, str):
            self.fail(f"must be a string, got {value!r}", path)
            return None
        return value

    def name(self, value: Any, path: Path, *, what: str) -> str | None:
        name = self.text(value, path, required=True)
        if name is not None and not _SLOTH_NAME.fullmatch(name):
            self.fail(
                f"invalid {what} name {name!r}: at least 2 characters, starting and ending with a letter or digit, "
                "with only letters, digits, '.', '_' and '-' (Sloth's rule)",
                path,
            )
            return None
        return name

    def labels(self, value: Any, path: Path) -> dict[str, str]:
        """A label or annotation map. Sloth reads every scalar as its text; a parsed float or boolean has
        lost its spelling (``1.50``, ``yes``), so those must be quoted."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail("must be a mapping of names to strings", path)
            return {}
        out: dict[str, str] = {}
        for key, item in value.items():
            if isinstance(item, str):
                out[key] = item
            elif isinstance(item, int) and not isinstance(item, bool):
                out[key] = str(item)
            else:
                self.fail(f"must be a string: quote {item!r} so that it keeps its spelling", (*path, key))
        return out


def _body_at(document: Document, path: Path) -> Any:
    value: Any = document.body
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


register_detected_translator("sloth-prometheus-v1", is_sloth_spec, translate)
register_translator(KUBERNETES_API_VERSION, KUBERNETES_KIND, translate)
register_translator(KUBERNETES_API_VERSION, "AlertWindows", _refuse_alert_windows)
