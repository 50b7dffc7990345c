"""Config as code: validate, plan (diff), apply (all or nothing), export.

``apply`` runs inside the caller's transaction and goes through each domain's service functions with the
caller's identity, so the same rights and the same audit entries apply as through the API.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from relia.config import registry
from relia.config.documents import ConfigInvalid, ConfigProblem, Document, SourceFile, parse
from relia.config.registry import API_VERSION, ConfigObject, Current
from relia.core.auth import Principal, Via
from relia.core.schemas import SLUG_PATTERN

TOP_LEVEL_KEYS = {"apiVersion", "kind", "metadata", "spec"}
METADATA_KEYS = {"name", "labels", "annotations"}
_slug = re.compile(SLUG_PATTERN)

Action = Literal["create", "update", "delete", "unchanged"]


@dataclass
class Change:
    kind: str
    name: str
    action: Action
    fields: list[str] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: str | None = None

    def as_dict(self, *, with_values: bool = True) -> dict[str, Any]:
        # Without values, the changed field names are withheld too: they would confirm a guessed secret.
        body: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": self.fields if with_values else [],
        }
        if self.source:
            body["source"] = self.source
        if with_values:
            body["before"], body["after"] = self.before, self.after
        return body


@dataclass
class Plan:
    changes: list[Change]
    warnings: list[ConfigProblem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0, "unchanged": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)


# ------------------------------------------------------------------------------------------ interpreting


def _translate(documents: list[Document]) -> tuple[list[Document], list[ConfigProblem], list[ConfigProblem]]:
    """Relia documents, problems, warnings."""
    context = registry.TranslationContext(documents)
    out: list[Document] = []
    problems: list[ConfigProblem] = []
    for document in documents:
        body = document.body
        translate = None
        if isinstance(body, dict) and body.get("apiVersion") not in (None, API_VERSION):
            translate = registry.translator_for(str(body.get("apiVersion")), str(body.get("kind")))
        elif isinstance(body, dict) and "apiVersion" not in body:
            translate = registry.translator_detecting(body)
        if translate is not None:
            try:
                out.extend(translate(document, context))
            except ConfigInvalid as exc:
                problems.extend(exc.problems)
            continue
        out.append(document)
    return out, problems, context.warnings


def _interpret(document: Document) -> ConfigObject | list[ConfigProblem]:
    body = document.body
    if not isinstance(body, dict):
        return [document.problem("a document must be a mapping with apiVersion, kind, metadata and spec")]
    problems = [
        document.problem(f"unknown top-level field {key!r}", (key,)) for key in body if key not in TOP_LEVEL_KEYS
    ]
    problems += [document.problem("required", (key,)) for key in sorted(TOP_LEVEL_KEYS - set(body))]
    api_version, kind_name = body.get("apiVersion"), body.get("kind")
    if "apiVersion" in body and api_version != API_VERSION:
        known = ", ".join([API_VERSION, *registry.foreign_api_versions()])
        problems.append(
            document.problem(
                f"unsupported apiVersion {api_version!r} for kind {kind_name!r}; this server reads {known}",
                ("apiVersion",),
            )
        )
    kind = registry.get_kind(kind_name) if isinstance(kind_name, str) else None
    if "kind" in body and kind is None:
        known = ", ".join(handler.kind for handler in registry.kinds())
        problems.append(document.problem(f"unknown kind {kind_name!r}; known kinds: {known}", ("kind",)))
    metadata = body.get("metadata")
    name: str | None = None
    labels: dict[str, str] = {}
    if "metadata" in body:
        if not isinstance(metadata, dict):
            problems.append(document.problem("must be a mapping with at least a name", ("metadata",)))
        else:
            problems += [
                document.problem(f"unknown field {key!r}", ("metadata", key))
                for key in metadata
                if key not in METADATA_KEYS
            ]
            raw_name = metadata.get("name")
            if raw_name is None:
                problems.append(document.problem("required", ("metadata", "name")))
            # fullmatch: with match, the pattern's "$" also accepts a name that ends in a newline.
            elif not isinstance(raw_name, str) or not _slug.fullmatch(raw_name):
                problems.append(
                    document.problem(
                        "must be lower-case letters, digits and dashes (at most 63), starting and ending "
                        "with a letter or digit",
                        ("metadata", "name"),
                    )
                )
            else:
                name = raw_name
            raw_labels = metadata.get("labels", {})
            if not isinstance(raw_labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in raw_labels.items()
            ):
                problems.append(document.problem("must map strings to strings", ("metadata", "labels")))
            else:
                labels = raw_labels
    if kind is None or problems:
        return problems
    spec_body = body.get("spec")
    if not isinstance(spec_body, dict):
        return [document.problem("must be a mapping", ("spec",), kind=kind.kind, name=name)]
    try:
        spec = kind.spec_model.model_validate(spec_body)
    except ValidationError as exc:
        return [
            document.problem(_pydantic_message(error), ("spec", *error["loc"]), kind=kind.kind, name=name)
            for error in exc.errors()
        ]
    assert name is not None
    return ConfigObject(kind=kind.kind, name=name, spec=spec, document=document, labels=labels)


def _pydantic_message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return message


@dataclass
class Loaded:
    objects: list[ConfigObject]
    warnings: list[ConfigProblem]


def load_objects(files: list[SourceFile]) -> Loaded:
    """Parse and validate each document on its own; raise ConfigInvalid with every problem found.
    Warnings name what was read but is not applied (an imported format's feature Relia lacks)."""
    documents, problems, warnings = _translate(parse(files))
    objects: list[ConfigObject] = []
    seen: dict[tuple[str, str], ConfigObject] = {}
    for document in documents:
        result = _interpret(document)
        if isinstance(result, list):
            problems.extend(result)
            continue
        first = seen.get((result.kind, result.name))
        if first is not None and first.normalised() == result.normalised():
            # The same object twice (as the OpenSLO SDK's examples repeat one with other annotations).
            warnings.append(
                result.problem(
                    f"{result.kind} {result.name!r} is also defined in {first.document.file} document "
                    f"{first.document.index}, identically; using it once",
                    ("metadata", "name"),
                )
            )
            continue
        if first is not None:
            problems.append(
                result.problem(
                    f"{result.kind} {result.name!r} is defined twice; first in {first.document.file} "
                    f"document {first.document.index}",
                    ("metadata", "name"),
                )
            )
            continue
        seen[(result.kind, result.name)] = result
        objects.append(result)
    if problems:
        raise ConfigInvalid(problems)
    return Loaded(objects, warnings)


def _by_kind(objects: list[ConfigObject]) -> dict[str, dict[str, ConfigObject]]:
    grouped: dict[str, dict[str, ConfigObject]] = defaultdict(dict)
    for obj in objects:
        grouped[obj.kind][obj.name] = obj
    return grouped


def validate(files: list[SourceFile]) -> Loaded:
    """Offline checks: syntax, kinds, fields, duplicates, and rules within the files (dependency cycles).
    References to objects outside the files are checked against the server by plan and apply."""
    loaded = load_objects(files)
    grouped = _by_kind(loaded.objects)
    problems: list[ConfigProblem] = []
    for kind in registry.kinds():
        problems += kind.check_set(grouped.get(kind.kind, {}), {})
    if problems:
        raise ConfigInvalid(problems)
    return loaded


# ----------------------------------------------------------------------------------------------- planning


def _changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        fields: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            fields += _changed_fields(before.get(key), after.get(key), f"{prefix}{key}.")
        return fields
    return [prefix.rstrip(".")] if before != after else []


def _plan_with_state(
    session: Session, objects: list[ConfigObject], *, prune: bool
) -> tuple[Plan, dict[str, dict[str, Current]], dict[str, dict[str, ConfigObject]]]:
    grouped = _by_kind(objects)
    state = {kind.kind: kind.current(session) for kind in registry.kinds()}
    problems: list[ConfigProblem] = []
    changes: list[Change] = []
    for kind in registry.kinds():
        desired, current = grouped.get(kind.kind, {}), state[kind.kind]
        problems += kind.check_set(desired, current)
        for name, obj in sorted(desired.items()):
            after = obj.normalised()
            existing = current.get(name)
            source = f"{obj.document.file}#{obj.document.index}"
            if existing is None:
                changes.append(Change(kind.kind, name, "create", sorted(after), None, after, source))
            else:
                fields = _changed_fields(existing.spec, after)
                changes.append(
                    Change(
                        kind.kind,
                        name,
                        "update" if fields else "unchanged",
                        fields,
                        existing.spec,
                        after,
                        source,
                    )
                )
        if prune:
            for name, existing in sorted(current.items()):
                if name not in desired and existing.managed:
                    changes.append(Change(kind.kind, name, "delete", [], existing.spec, None))

    deleted = {(change.kind, change.name) for change in changes if change.action == "delete"}
    for obj in objects:
        for reference in registry.get_kind(obj.kind).references(obj):  # type: ignore[union-attr]
            target = (reference.kind, reference.name)
            in_files = reference.name in grouped.get(reference.kind, {})
            in_db = reference.name in state.get(reference.kind, {}) and target not in deleted
            if not (in_files or in_db):
                why = " (it would be pruned)" if target in deleted else ""
                problems.append(
                    obj.problem(
                        f"refers to {reference.kind} {reference.name!r}, which does not exist{why}",
                        ("spec", *reference.path),
                    )
                )
    if problems:
        raise ConfigInvalid(problems)
    return Plan(changes), state, grouped


def plan(session: Session, files: list[SourceFile], *, prune: bool = False) -> Plan:
    loaded = load_objects(files)
    result, _, _ = _plan_with_state(session, loaded.objects, prune=prune)
    result.warnings = loaded.warnings
    return result


def apply(session: Session, files: list[SourceFile], *, actor: Principal, now: datetime, prune: bool = False) -> Plan:
    """Apply in the caller's transaction. Raises ConfigInvalid (nothing to commit) on the first problem."""
    actor = actor.with_via(Via.config)
    loaded = load_objects(files)
    result, state, grouped = _plan_with_state(session, loaded.objects, prune=prune)
    result.warnings = loaded.warnings
    by_kind: dict[str, dict[Action, list[Change]]] = defaultdict(lambda: defaultdict(list))
    for change in result.changes:
        by_kind[change.kind][change.action].append(change)
    for kind in registry.kinds():
        actions = by_kind.get(kind.kind, {})
        desired = grouped.get(kind.kind, {})
        kind.upsert(
            session,
            actor=actor,
            creates=[desired[change.name] for change in actions.get("create", [])],
            updates=[desired[change.name] for change in actions.get("update", [])],
            # Only to mark them config-managed: an object that already is needs no rights to stay as it is,
            # so anyone may apply a repository that holds other teams' objects unchanged.
            unchanged=[
                desired[change.name]
                for change in actions.get("unchanged", [])
                if not state[kind.kind][change.name].managed
            ],
            now=now,
        )
    for kind in reversed(registry.kinds()):
        names = [change.name for change in by_kind.get(kind.kind, {}).get("delete", [])]
        if names:
            kind.delete(session, actor=actor, names=names, now=now)
    session.flush()
    return result


# ----------------------------------------------------------------------------------------------- export


def export(session: Session, *, actor: Principal) -> dict[str, list[dict[str, Any]]]:
    """Documents per kind, with default values left out, ready to be written as YAML and applied again."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in registry.kinds():
        if not kind.may_export(actor):
            continue
        documents = []
        for name, current in sorted(kind.current(session).items()):
            spec = kind.spec_model.model_validate(current.spec).model_dump(mode="json", exclude_defaults=True)
            documents.append({"apiVersion": API_VERSION, "kind": kind.kind, "metadata": {"name": name}, "spec": spec})
        out[kind.kind] = documents
    return out
