"""The OpenAPI document declares every error as a problem document, and a 405 names every method
of the resource (both found by fuzzing the services' APIs from their documents)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from lotse_runtime.auth import Principal, Role, TokenVerifier, requires
from lotse_runtime.problems import PROBLEM_JSON, install_problem_handlers, problem_responses
from tests.support import tokens

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Body(BaseModel):
    name: str


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(tokens.issuer().auth_config())
    install_problem_handlers(app)

    @app.get("/things/{thing_id}", responses=problem_responses(404))
    def read(thing_id: str, principal: Principal = Depends(requires(Role.COORDINATOR))) -> dict[str, str]:
        return {"thing_id": thing_id}

    @app.post("/things/{thing_id}")
    def change(thing_id: str, body: Body) -> dict[str, str]:
        return {"thing_id": thing_id}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return document["paths"][path][method]["responses"]


def test_validation_errors_are_documented_as_problem_documents() -> None:
    document = make_app().openapi()
    for method in ("get", "post"):
        assert responses(document, method, "/things/{thing_id}")["422"]["content"] == PROBLEM
    schemas = document["components"]["schemas"]
    assert schemas["Problem"]["required"] == ["type", "title", "status"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas


def test_token_refusals_bodies_and_declared_problems_are_documented() -> None:
    document = make_app().openapi()
    read = responses(document, "get", "/things/{thing_id}")
    assert {status: read[status]["content"] for status in ("401", "403", "404", "503")} == dict.fromkeys(
        ("401", "403", "404", "503"), PROBLEM
    )
    change = responses(document, "post", "/things/{thing_id}")
    assert change["400"]["content"] == PROBLEM  # a body that cannot be parsed
    assert "401" not in change  # no token needed
    assert set(responses(document, "get", "/health")) == {"200"}


def test_a_405_is_a_problem_that_names_every_method_of_the_resource() -> None:
    client = TestClient(make_app())
    response = client.delete("/things/1")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
