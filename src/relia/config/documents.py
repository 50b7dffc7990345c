"""Reading config-as-code files: multi-document YAML, with the file, document number and line of every field
kept so an error can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from relia.core.errors import InvalidInput

YAML_SUFFIXES = (".yaml", ".yml")


def export_file_name(kind: str) -> str:
    """The file ``relia export -o DIR`` writes a kind's documents to: ``services.yaml``, ``escalationpolicies.yaml``."""
    plural = f"{kind.lower()[:-1]}ies" if kind.endswith("y") else f"{kind.lower()}s"
    return f"{plural}.yaml"


MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with one document. ``path`` is a dotted field path inside the document."""

    file: str
    document: int | None
    message: str
    path: str = ""
    line: int | None = None
    kind: str | None = None
    name: str | None = None
    item: int | None = None  # 1-based, when the document is a YAML list of documents (OpenSLO SDK style)

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = [where]
        if self.document is not None:
            parts.append(f"document {self.document}" + (f" item {self.item}" if self.item else ""))
        if self.kind:
            parts.append(f"{self.kind}/{self.name}" if self.name else self.kind)
        if self.path:
            parts.append(f"field {self.path}")
        return f"{', '.join(parts)}: {self.message}"


class ConfigInvalid(InvalidInput):
    slug, title = "invalid-config", "Invalid configuration"

    def __init__(self, problems: list[ConfigProblem], *, status: int = 422) -> None:
        # A refusal found while applying keeps its own status and title (403 not allowed, 409 conflict).
        self.status = status
        self.title = {403: "Not allowed", 409: "Conflict"}.get(status, "Invalid configuration")
        self.problems = problems
        count = len(problems)
        summary = str(problems[0]) if count == 1 else f"{count} problems; the first: {problems[0]}"
        super().__init__(f"Nothing was changed. {summary}")

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        body["errors"] = [problem.as_dict() for problem in self.problems]
        return body


@dataclass
class SourceFile:
    name: str
    content: str


@dataclass
class Document:
    """One YAML document as written, before it is interpreted by a kind."""

    file: str
    index: int  # 1-based, as people count
    body: Any
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)
    # Set when this document was translated from another format (OpenSLO, Sloth): where it came from.
    origin: str | None = None
    item: int | None = None  # 1-based position when the YAML document is a list of documents

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def problem(self, message: str, path: tuple[str | int, ...] = (), **extra: Any) -> ConfigProblem:
        return ConfigProblem(
            file=self.file,
            document=self.index,
            item=self.item,
            message=message,
            path=".".join(str(part) for part in path),
            line=self.line_of(path),
            **extra,
        )

    def derived(self, body: Any, *, origin: str) -> Document:
        """A document translated from this one: errors in it point at this document's first line."""
        return Document(
            file=self.file,
            index=self.index,
            body=body,
            lines={(): self.line_of(()) or 1},
            origin=origin,
            item=self.item,
        )


def read_paths(paths: list[Path]) -> list[SourceFile]:
    """Files given directly, and every *.yaml / *.yml under folders, in a stable order."""
    files: list[SourceFile] = []
    problems: list[ConfigProblem] = []
    for path in paths:
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in YAML_SUFFIXES
                # Hidden folders (.github/, .git/) hold other tools' YAML, not ours.
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not candidates:
                problems.append(ConfigProblem(file=str(path), document=None, message="no .yaml or .yml files here"))
        elif path.is_file():
            candidates = [path]
        else:
            problems.append(ConfigProblem(file=str(path), document=None, message="no such file or folder"))
            continue
        for candidate in candidates:
            if candidate.stat().st_size > MAX_FILE_BYTES:
                problems.append(
                    ConfigProblem(file=str(candidate), document=None, message=f"larger than {MAX_FILE_BYTES} bytes")
                )
                continue
            try:
                files.append(SourceFile(name=str(candidate), content=candidate.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                problems.append(ConfigProblem(file=str(candidate), document=None, message="not UTF-8 text"))
    if problems:
        raise ConfigInvalid(problems)
    return files


MAX_NODES = 200_000
MAX_DEPTH = 100


class _YamlShapeError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class _Converter:
    """Turns a composed YAML node tree into Python values, recording the line of every path."""

    def __init__(self, budget: int) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        # Values this parse may still produce; see parse().
        self.budget = budget
        # A loader of its own: a loader remembers every node it constructed, so a shared one grows forever.
        self._loader = yaml.SafeLoader("")

    def convert(self, node: Node, path: tuple[str | int, ...]) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _YamlShapeError("aliases expand to too many values", node.start_mark.line + 1)
        # An alias inside the value it names would recurse forever.
        if len(path) > MAX_DEPTH:
            raise _YamlShapeError(
                f"nested more than {MAX_DEPTH} levels deep (or an alias inside itself)",
                node.start_mark.line + 1,
            )
        self.lines[path] = node.start_mark.line + 1
        # Scalars go through the safe loader, which refuses tags it does not know; collections are read by
        # shape here, so refuse theirs too rather than drop them silently.
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            raise _YamlShapeError(f"unsupported tag {node.tag!r}", node.start_mark.line + 1)
        if isinstance(node, MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise _YamlShapeError(
                        "mapping keys must be plain strings (no merge keys)", key_node.start_mark.line + 1
                    )
                key = self._loader.construct_object(key_node)
                if not isinstance(key, str):
                    raise _YamlShapeError(f"mapping keys must be strings, not {key!r}", key_node.start_mark.line + 1)
                if key in result:
                    raise _YamlShapeError(f"the key {key!r} appears twice", key_node.start_mark.line + 1)
                result[key] = self.convert(value_node, (*path, key))
            return result
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._loader.construct_object(node)


def _yaml_problem(file: str, document: int | None, exc: yaml.YAMLError) -> ConfigProblem:
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc)
    return ConfigProblem(
        file=file,
        document=document,
        message=f"not valid YAML: {reason}",
        line=mark.line + 1 if mark else None,
    )


def parse(files: list[SourceFile]) -> list[Document]:
    """Every non-empty document in every file. Raises ConfigInvalid listing every YAML error."""
    documents: list[Document] = []
    problems: list[ConfigProblem] = []
    # Aliases are expanded, so a few bytes can stand for billions of values ("billion laughs"). Without
    # aliases a value takes at least a character, so one budget shared by every document stops only what
    # aliases add, however many documents repeat the trick.
    budget = MAX_NODES + 2 * sum(len(source.content) for source in files)
    for source in files:
        if len(source.content.encode("utf-8")) > MAX_FILE_BYTES:
            problems.append(
                ConfigProblem(file=source.name, document=None, message=f"larger than {MAX_FILE_BYTES} bytes")
            )
            continue
        try:
            nodes = list(yaml.compose_all(source.content, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            problems.append(_yaml_problem(source.name, None, exc))
            continue
        except RecursionError:
            problems.append(ConfigProblem(file=source.name, document=None, message="not valid YAML: nested too deeply"))
            continue
        for index, node in enumerate(nodes, start=1):
            if node is None:
                continue
            converter = _Converter(budget)
            try:
                body = converter.convert(node, ())
            except _YamlShapeError as exc:
                problems.append(ConfigProblem(file=source.name, document=index, message=str(exc), line=exc.line))
                if converter.budget < 0:
                    # Every later document would be refused too, whatever it holds.
                    raise ConfigInvalid(problems) from None
                continue
            except yaml.YAMLError as exc:
                problems.append(_yaml_problem(source.name, index, exc))
                continue
            finally:
                budget = converter.budget
            if body is None:
                continue
            if isinstance(body, list) and body and all(isinstance(entry, dict) for entry in body):
                # A list of documents in one YAML document, as the OpenSLO SDK's examples are written.
                for position, entry in enumerate(body, start=1):
                    lines = {
                        path[1:]: line for path, line in converter.lines.items() if path and path[0] == position - 1
                    }
                    documents.append(Document(file=source.name, index=index, body=entry, lines=lines, item=position))
                continue
            documents.append(Document(file=source.name, index=index, body=body, lines=converter.lines))
    if problems:
        raise ConfigInvalid(problems)
    return documents


def dump(documents: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, default_flow_style=False)
