"""Errors as RFC 9457 problem details (application/problem+json), naming each bad field, and
the OpenAPI document saying so: every error response is declared as a problem document."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lotse_runtime.failures import is_transient

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; a refused request names each bad field in errors.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "about:blank: the title says what went wrong"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

PROBLEM_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    403: "The token's roles do not allow this",
    404: "Not found (also when it belongs to another tenant)",
    409: "Conflicts with the current state",
    422: "Invalid request; errors name each bad field",
    503: "The database or the broker is unavailable for a moment; try again after Retry-After",
}

log = structlog.get_logger("lotse.http")


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.extensions = extensions


def problem_response(status: int, title: str, detail: str | None = None, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    # nosniff here as well as in http_guards.SecurityHeaders: the 500 of an unexpected error is sent
    # by Starlette's ServerErrorMiddleware, outside every middleware an app adds.
    headers = {"X-Content-Type-Options": "nosniff"}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "languages", 0, "level")`` → ``languages[0].level``; query and path keep their prefix."""
    parts = list(location)
    prefix = ""
    if parts and parts[0] == "body":
        parts = parts[1:]
    elif parts and parts[0] in {"query", "path", "header"}:
        prefix = f"{parts.pop(0)}."
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return prefix + (text or "body")


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(error.status, error.title, error.detail, **error.extensions)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": field_path(item["loc"]), "message": item["msg"]} for item in error.errors()]
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
        return problem_response(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        response = problem_response(error.status_code, str(error.detail), None)
        response.headers.update(error.headers or {})
        if error.status_code == 405:
            # RFC 9110: Allow lists every method of the resource; Starlette names only those of the
            # first route whose path matched.
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_transient(error):
            log.warning("infrastructure unavailable", route=_route(request), error=repr(error))
            response = problem_response(503, "Service unavailable", "a backing service is unavailable; try again")
            response.headers["Retry-After"] = "5"
            return response
        log.exception("unhandled error", route=_route(request))
        return problem_response(500, "Internal error", "the error was logged")

    document_problems(app)


def _route(request: Request) -> str:
    # The route template, never the path: a path may hold a capability (an answer-link token).
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else "(unmatched)"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the problem documents it answers with beyond those every route
    may give (401 and 403 with a token, 422 with parameters; see :func:`document_problems`)."""
    return {status: _problem_response(status) for status in statuses}


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": PROBLEM_DESCRIPTIONS.get(status, "Problem"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def document_problems(app: FastAPI) -> None:
    """Make the app's OpenAPI document tell the truth about errors: FastAPI declares its own 422
    body (``HTTPValidationError``) as application/json, and nothing for a refused token."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            describe_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    # FastAPI's documented way to extend the OpenAPI document is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]


def describe_problems(document: dict[str, Any]) -> None:
    """In place: every 422 is a problem document, an operation with a body may answer 400 (a body
    that cannot be parsed), one that needs a token 401, 403 and 503 (it reads or writes the
    database), and the Problem schema is among the components."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = _problem_response(422)
            if "requestBody" in operation:
                responses.setdefault("400", _problem_response(400))
            if operation.get("security"):
                for status in (401, 403, 503):
                    responses.setdefault(str(status), _problem_response(status))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
