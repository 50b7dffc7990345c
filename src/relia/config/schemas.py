"""Config-as-code request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from relia.core.schemas import ApiModel, OutModel


class ConfigFile(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The file's name, used in error messages."
    )
    content: Annotated[str, StringConstraints(max_length=5 * 1024 * 1024, strip_whitespace=False)]


class ConfigRequest(ApiModel):
    files: list[ConfigFile] = Field(min_length=1, max_length=1000)
    prune: bool = Field(default=False, description="Also delete config-managed objects missing from the files.")


class ValidateRequest(ApiModel):
    files: list[ConfigFile] = Field(min_length=1, max_length=1000)


class ChangeOut(OutModel):
    kind: str
    name: str
    action: Literal["create", "update", "delete", "unchanged"]
    fields: list[str]
    source: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class WarningOut(OutModel):
    file: str
    document: int | None = None
    item: int | None = None
    line: int | None = None
    kind: str | None = None
    name: str | None = None
    path: str = ""
    message: str


class PlanOut(OutModel):
    applied: bool
    counts: dict[str, int]
    changes: list[ChangeOut]
    warnings: list[WarningOut] = Field(default_factory=list, description="Read but not applied, with where")


class ValidateOut(OutModel):
    valid: bool
    objects: list[dict[str, str]]
    warnings: list[WarningOut] = Field(default_factory=list)
    note: str


class KindOut(OutModel):
    kind: str
    api_version: str
    summary: str


class ExportOut(OutModel):
    documents: dict[str, list[dict[str, Any]]] = Field(description="Documents by kind.")
