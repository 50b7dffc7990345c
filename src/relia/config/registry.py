"""The kind registry: every config-as-code kind (Team, User, Service, later SLO, Schedule, ...) registers
a handler here, and the engine in ``config.service`` validates, plans, applies and exports through it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from relia.config.documents import ConfigInvalid, ConfigProblem, Document
from relia.core.auth import Principal
from relia.core.errors import ReliaError

API_VERSION = "relia.dev/v1"


@dataclass(frozen=True)
class Reference:
    """``spec`` field ``path`` of an object names another object (kind, name) that must exist."""

    kind: str
    name: str
    path: tuple[str | int, ...]


@dataclass
class ConfigObject:
    kind: str
    name: str
    spec: BaseModel
    document: Document
    labels: dict[str, str]

    def normalised(self) -> dict[str, Any]:
        kind = get_kind(self.kind)
        spec = self.spec.model_dump(mode="json")
        return kind.normalise(spec) if kind is not None else spec

    def problem(self, message: str, path: tuple[str | int, ...] = ()) -> ConfigProblem:
        return self.document.problem(message, path, kind=self.kind, name=self.name)


@dataclass
class Current:
    spec: dict[str, Any]
    managed: bool


class Kind(ABC):
    kind: ClassVar[str]
    order: ClassVar[int]
    spec_model: ClassVar[type[BaseModel]]
    summary: ClassVar[str] = ""
    # Specs that hold secrets or personal data are shown in plans only to administrators.
    sensitive: ClassVar[bool] = False

    def references(self, obj: ConfigObject) -> Iterable[Reference]:
        return ()

    def check_set(self, desired: dict[str, ConfigObject], current: dict[str, Current]) -> list[ConfigProblem]:
        """Rules across all objects of this kind (a dependency cycle, say). ``current`` is empty offline."""
        return []

    def may_export(self, actor: Principal) -> bool:
        return True

    def may_read_values(self, actor: Principal, name: str) -> bool:
        """Whether plans may show this object's values (and changed fields) to ``actor``."""
        return not self.sensitive or actor.acts_as_admin

    def normalise(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec in the one form plans compare: lists that are really sets get a fixed order here (not in
        validation, so errors still point at the item as written)."""
        return spec

    @abstractmethod
    def current(self, session: Session) -> dict[str, Current]: ...

    @abstractmethod
    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None: ...

    @abstractmethod
    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None: ...


class RowKind(Kind):
    """A kind whose objects are the rows of one table (``model``), named by its ``name`` column and marked by its
    ``config_managed`` column, that its domain writes with a create-or-replace function. A subclass says how a
    row reads as a spec (``spec_of``), how one object is saved (``save``) and how one is removed (``remove``)."""

    model: ClassVar[Any]

    @abstractmethod
    def spec_of(self, row: Any) -> dict[str, Any]: ...

    @abstractmethod
    def save(self, session: Session, *, actor: Principal, name: str, spec: Any, now: datetime) -> None:
        """Create or replace ``name`` with ``spec`` (``spec_model``), marked config-managed."""

    @abstractmethod
    def remove(self, session: Session, *, actor: Principal, name: str, now: datetime) -> None: ...

    def rows(self, session: Session) -> Iterable[Any]:
        return session.scalars(select(self.model))

    def unchanged_to_save(self, session: Session, unchanged: list[ConfigObject]) -> list[ConfigObject]:
        """Which unchanged objects to save again (only to mark them config-managed): by default those that config
        does not manage yet, since an object that already is needs no rights to stay as it is."""
        return unchanged_to_adopt(session, self.model, unchanged)

    def current(self, session: Session) -> dict[str, Current]:
        return {row.name: Current(self.spec_of(row), row.config_managed) for row in self.rows(session)}

    def upsert(
        self,
        session: Session,
        *,
        actor: Principal,
        creates: list[ConfigObject],
        updates: list[ConfigObject],
        unchanged: list[ConfigObject],
        now: datetime,
    ) -> None:
        for obj in [*creates, *updates, *self.unchanged_to_save(session, unchanged)]:
            with blame(obj):
                self.save(session, actor=actor, name=obj.name, spec=obj.spec, now=now)

    def delete(self, session: Session, *, actor: Principal, names: list[str], now: datetime) -> None:
        for name in names:
            self.remove(session, actor=actor, name=name, now=now)


def unchanged_to_adopt(session: Session, model: Any, unchanged: list[ConfigObject]) -> list[ConfigObject]:
    """Unchanged objects not yet managed by config (``model`` has ``name`` and ``config_managed`` columns):
    marked so a later --prune may remove them."""
    if not unchanged:
        return []
    managed = set(
        session.scalars(
            select(model.name).where(model.name.in_([obj.name for obj in unchanged]), model.config_managed.is_(True))
        )
    )
    return [obj for obj in unchanged if obj.name not in managed]


_kinds: dict[str, Kind] = {}


class TranslationContext:
    """What a translator sees besides its own document: every document of the same input (to resolve
    references such as OpenSLO's ``indicatorRef``), and a place for warnings about what is not applied."""

    def __init__(self, documents: list[Document]) -> None:
        self.documents = documents
        self.warnings: list[ConfigProblem] = []

    def find(self, api_version_prefix: str, kind: str, name: str) -> Document | None:
        for document in self.documents:
            body = document.body
            if (
                isinstance(body, dict)
                and str(body.get("apiVersion", "")).startswith(api_version_prefix)
                and body.get("kind") == kind
                and isinstance(body.get("metadata"), dict)
                and body["metadata"].get("name") == name
            ):
                return document
        return None

    def warn(self, problem: ConfigProblem) -> None:
        self.warnings.append(problem)


# Documents in other formats (OpenSLO, Sloth) are translated into Relia documents before validation. A
# translator returns the Relia documents (possibly none) or raises ConfigInvalid naming the field.
Translator = Callable[[Document, TranslationContext], list[Document]]
_translators: dict[tuple[str, str], Translator] = {}
# Formats without apiVersion/kind (Sloth's `version: prometheus/v1` files) are recognised by a detector: a
# predicate on the document's body. Keyed by a name so that registering again replaces, never duplicates.
Detector = Callable[[dict[str, Any]], bool]
_detected_translators: dict[str, tuple[Detector, Translator]] = {}


def register(kind: Kind) -> Kind:
    _kinds[kind.kind] = kind
    return kind


def register_translator(api_version: str, kind: str, translate: Translator) -> None:
    _translators[(api_version, kind)] = translate


def register_detected_translator(name: str, detect: Detector, translate: Translator) -> None:
    """``translate`` claims the documents without ``apiVersion`` whose body ``detect`` accepts."""
    _detected_translators[name] = (detect, translate)


def _ensure_loaded() -> None:
    from relia import domains

    domains.load_config_kinds()


def kinds() -> list[Kind]:
    _ensure_loaded()
    return sorted(_kinds.values(), key=lambda handler: (handler.order, handler.kind))


def get_kind(name: str) -> Kind | None:
    _ensure_loaded()
    return _kinds.get(name)


def translator_for(api_version: str, kind: str) -> Translator | None:
    _ensure_loaded()
    return _translators.get((api_version, kind))


def translator_detecting(body: dict[str, Any]) -> Translator | None:
    """The translator whose detector claims a document that has no ``apiVersion``, if any."""
    _ensure_loaded()
    for detect, translate in _detected_translators.values():
        if detect(body):
            return translate
    return None


def foreign_api_versions() -> list[str]:
    return sorted({api_version for api_version, _ in _translators})


@contextmanager
def blame(obj: ConfigObject) -> Iterator[None]:
    """Attribute an error raised while applying ``obj`` to its file, document and field."""
    try:
        yield
    except ConfigInvalid:
        raise
    except ReliaError as exc:
        if exc.errors:
            problems = [
                obj.problem(
                    f"{exc.detail} ({error.message})" if error.message not in exc.detail else exc.detail,
                    ("spec", *_split_path(error.path)),
                )
                for error in exc.errors
            ]
        else:
            problems = [obj.problem(exc.detail)]
        raise ConfigInvalid(problems, status=exc.status) from exc


def _split_path(path: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for part in path.split(".") if path else []:
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)
