"""RFC 9457 problem+json for every error the API returns, and the OpenAPI description of it."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from relia.core.errors import ReliaError

log = structlog.get_logger("relia.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemFieldError(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str = Field(description="Dotted path of the field, e.g. `body.owner` or `spec.members.0.user`.")
    message: str


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


def _problem_response(
    status: int,
    title: str,
    detail: str,
    slug: str,
    request: Request,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:relia:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_response(exc: ReliaError, request: Request) -> JSONResponse:
    return JSONResponse(
        exc.problem(request.url.path),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers or None,
    )


def _validation_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


_STATUS_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ReliaError)
    async def _relia_error(request: Request, exc: ReliaError) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        malformed_json = False
        for error in exc.errors():
            if error.get("type") == "json_invalid":
                malformed_json = True
            message = str(error.get("msg", "invalid"))
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if error.get("type") == "extra_forbidden":
                message = "unknown field"
            errors.append({"path": _validation_path(tuple(error.get("loc", ()))), "message": message})
        if malformed_json:
            return _problem_response(
                400,
                "Malformed JSON",
                "The request body is not valid JSON.",
                "malformed-json",
                request,
                errors,
            )
        return _problem_response(
            422,
            "Invalid input",
            "The request does not match the schema; see errors.",
            "invalid-input",
            request,
            errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _STATUS_TITLES.get(exc.status_code, ("error", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        return _problem_response(exc.status_code, title, detail, slug, request, headers=getattr(exc, "headers", None))

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return _problem_response(
            409,
            "Conflict",
            "The object changed while this request was writing it; read it again and retry.",
            "conflict",
            request,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("api.integrity_error", error=str(exc.orig)[:300])
        return _problem_response(
            409,
            "Conflict",
            "The change conflicts with another one made at the same time (a name taken, or an object in use); retry.",
            "conflict",
            request,
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The input passed validation but the database refuses the value: PostgreSQL takes no NUL character
        # in text (SQLite does). That is the caller's input, not our failure.
        log.info("api.data_error", error=str(exc.orig)[:300])
        return _problem_response(
            400,
            "Bad request",
            "A value in the request cannot be stored or searched for (for example, it contains a NUL character).",
            "bad-request",
            request,
        )

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("api.database_unavailable", error=str(exc.orig)[:300])
        return _problem_response(
            503,
            "Temporarily unavailable",
            "The database did not answer; retry shortly.",
            "unavailable",
            request,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unhandled_error")
        return _problem_response(
            500,
            "Internal error",
            "Something went wrong on our side; it has been logged.",
            "internal",
            request,
        )


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": title, "model": Problem, "content": _problem_content()}
    for status, title in {
        400: "Malformed request",
        401: "Authentication required",
        403: "Not allowed",
        413: "Request body too large",
        415: "Unsupported media type",
        422: "Invalid input (errors name each field)",
        503: "Temporarily unavailable",
    }.items()
}
NOT_FOUND = {404: {"description": "Not found", "model": Problem, "content": _problem_content()}}
CONFLICT = {
    409: {
        "description": "Stale version or conflicting change",
        "model": Problem,
        "content": _problem_content(),
    },
    412: {
        "description": "If-Match does not match the current ETag",
        "model": Problem,
        "content": _problem_content(),
    },
}
