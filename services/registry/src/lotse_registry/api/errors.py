"""Domain and persistence errors as problem+json answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.errors import DuplicateKeyError

from lotse_registry.domain import DomainError
from lotse_registry.store import InvalidCursor, StaleVersion
from lotse_runtime.problems import problem_response


def install_domain_errors(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, error: DomainError) -> JSONResponse:
        if error.field is not None:
            errors = [{"field": error.field, "message": error.detail}]
            return problem_response(error.status, error.title, error.detail, errors=errors)
        return problem_response(error.status, error.title, error.detail)

    @app.exception_handler(DuplicateKeyError)
    async def _duplicate(request: Request, error: DuplicateKeyError) -> JSONResponse:
        return problem_response(409, "Conflict", "the resource already exists")

    @app.exception_handler(InvalidCursor)
    async def _cursor(request: Request, error: InvalidCursor) -> JSONResponse:
        errors = [{"field": "query.cursor", "message": str(error)}]
        return problem_response(422, "Invalid request", f"query.cursor: {error}", errors=errors)

    @app.exception_handler(StaleVersion)
    async def _stale(request: Request, error: StaleVersion) -> JSONResponse:
        return problem_response(409, "Changed concurrently", "the resource changed meanwhile; read it and try again")
