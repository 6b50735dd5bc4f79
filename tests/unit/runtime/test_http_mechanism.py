"""Bearer tokens and problem details, on a small app that uses the runtime's HTTP mechanism."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from lotse_runtime.auth import AuthConfig, Principal, Role, TokenVerifier, issue_token, requires
from lotse_runtime.problems import PROBLEM_JSON, install_problem_handlers

CONFIG = AuthConfig(issuer="https://auth.test", audience="lotse", hs256_key="k" * 32)


class Body(BaseModel):
    name: str = Field(min_length=1)
    radius_km: int = Field(ge=1)


def make_app() -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(CONFIG)
    install_problem_handlers(app)

    @app.post("/things")
    def create(body: Body, principal: Principal = Depends(requires(Role.COORDINATOR))) -> dict[str, str | None]:
        return {"tenant": principal.tenant}

    return app


client = TestClient(make_app())


def token(**overrides: object) -> str:
    values: dict[str, object] = {"subject": "u1", "roles": [Role.COORDINATOR], "tenant": "musterstadt"}
    values.update(overrides)
    return issue_token(CONFIG, **values)  # type: ignore[arg-type]


def post(authorization: str | None, body: object = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return client.post("/things", json=body or {"name": "x", "radius_km": 5}, headers=headers)


def test_a_valid_token_with_the_role_passes() -> None:
    response = post(f"Bearer {token()}")
    assert response.status_code == 200
    assert response.json() == {"tenant": "musterstadt"}


def test_a_missing_token_is_401_problem_json() -> None:
    response = post(None)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["title"] == "Missing token"


def test_a_wrong_role_is_403() -> None:
    response = post(f"Bearer {token(roles=[Role.VOLUNTEER])}")
    assert response.status_code == 403
    assert "coordinator" in response.json()["detail"]


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(lambda: token(lifetime=timedelta(seconds=-5)), id="expired"),
        pytest.param(
            lambda: issue_token(AuthConfig("https://auth.test", "lotse", hs256_key="x" * 32), subject="u", roles=[]),
            id="wrong-key",
        ),
        pytest.param(
            lambda: issue_token(
                AuthConfig("https://evil.test", "lotse", hs256_key="k" * 32), subject="u", roles=[], tenant="t1"
            ),
            id="other-issuer",
        ),
        pytest.param(
            lambda: _unsigned(jwt.decode(token(), options={"verify_signature": False})),
            id="alg-none",
        ),
    ],
)
def test_bad_tokens_are_refused(bad_token: Callable[[], str]) -> None:
    response = post(f"Bearer {bad_token()}")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


def _signed(claims: dict[str, object]) -> str:
    base = jwt.decode(token(), options={"verify_signature": False})
    assert CONFIG.hs256_key is not None
    return jwt.encode({**base, **claims}, CONFIG.hs256_key, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"roles": [{"coordinator": True}]}, id="role-an-object"),
        pytest.param({"roles": [["coordinator"]]}, id="role-a-list"),
        pytest.param({"roles": "coordinator"}, id="roles-a-string"),
        pytest.param({"tenant": {"$ne": None}}, id="tenant-an-object"),
        pytest.param({"tenant": ""}, id="tenant-empty"),
        pytest.param({"roles": ["platform-admin", "coordinator"], "tenant": ["musterstadt"]}, id="admin-tenant-a-list"),
    ],
)
def test_a_signed_token_with_malformed_claims_is_401_not_a_500(claims: dict[str, object]) -> None:
    response = TestClient(make_app(), raise_server_exceptions=False).post(
        "/things", json={"name": "x", "radius_km": 5}, headers={"Authorization": f"Bearer {_signed(claims)}"}
    )
    assert response.status_code == 401, response.text


def test_validation_errors_name_each_field() -> None:
    response = post(f"Bearer {token()}", {"name": "", "radius_km": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"name", "radius_km"}


def test_the_broker_refreshes_topic_metadata_as_configured() -> None:
    """Pattern subscriptions see a newly onboarded tenant's topic only after a metadata refresh."""
    from lotse_runtime.kafka import make_broker
    from lotse_runtime.settings import PlatformSettings

    broker = make_broker(PlatformSettings(topic_metadata_refresh_ms=1234), client_id="test")
    # FastStream builds every consumer and producer from these connection arguments.
    assert broker._connection_kwargs["metadata_max_age_ms"] == 1234


def test_an_unavailable_database_is_503_problem_json_with_retry_after() -> None:
    from pymongo.errors import ServerSelectionTimeoutError

    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/stored")
    def stored() -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    response = TestClient(app, raise_server_exceptions=False).get("/stored")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "5"
    assert response.json()["title"] == "Service unavailable"
    assert "27017" not in response.text  # no internals to the caller


def test_readiness_that_does_not_answer_in_time_is_not_ready() -> None:
    import asyncio

    from lotse_runtime.health import health_router

    async def hangs() -> bool:
        await asyncio.sleep(3600)  # a database away: the ping would wait for server selection
        return True

    async def answers() -> bool:
        return True

    app = FastAPI()
    app.include_router(health_router({"mongodb": hangs, "kafka": answers}, check_seconds=0.05))
    response = TestClient(app).get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"mongodb": "unavailable: TimeoutError", "kafka": "ok"}
