"""Domain errors. The API renders them as RFC 9457 problem+json; the CLI prints them with file and field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field. ``path`` is dotted (``spec.owner``, ``members.0.user``)."""

    path: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, **self.context}


class ReliaError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return f"urn:relia:problem:{self.slug}"

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [error.as_dict() for error in self.errors]
        body.update(self.extra)
        return body


class InvalidInput(ReliaError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class BadRequest(ReliaError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ReliaError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ReliaError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ReliaError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ReliaError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(ReliaError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ReliaError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ReliaError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unavailable(ReliaError):
    status, slug, title = 503, "unavailable", "Temporarily unavailable"
