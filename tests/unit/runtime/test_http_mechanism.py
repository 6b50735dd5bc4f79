"""Bearer tokens and problem details, on a small app that uses the runtime's HTTP mechanism."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from lotse_devstack.processes import free_port
from lotse_runtime.auth import VOLUNTEER_ID_NAMESPACE, AuthConfig, Principal, Role, TokenVerifier, requires
from lotse_runtime.problems import PROBLEM_JSON, install_problem_handlers
from tests.support.tokens import TokenIssuer

ISSUER = TokenIssuer()


class Body(BaseModel):
    name: str = Field(min_length=1)
    radius_km: int = Field(ge=1)


def make_app(config: AuthConfig = ISSUER.auth_config()) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(config)
    install_problem_handlers(app)

    @app.post("/things")
    def create(body: Body, principal: Principal = Depends(requires(Role.COORDINATOR))) -> dict[str, str | None]:
        return {"tenant": principal.tenant}

    return app


client = TestClient(make_app())


def token(lifetime: timedelta = timedelta(minutes=5), roles: list[Role] | None = None) -> str:
    return ISSUER.issue("u1", roles or [Role.COORDINATOR], tenant="musterstadt", lifetime=lifetime)


# Starlette's test client runs on httpx2 where it is installed (the portal's Authlib needs it).
def post(authorization: str | None, body: object = None) -> httpx2.Response:
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


def _part(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token(), options={"verify_signature": False})
    claims.update(changes)
    return claims


def _unsigned() -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(_claims())}."


def _hmac_with_the_public_key() -> str:
    """Algorithm confusion: HS256 "signed" with the issuer's public key, which anybody can fetch."""
    signing_input = f"{_part({'alg': 'HS256', 'typ': 'JWT', 'kid': ISSUER.key_id})}.{_part(_claims())}"
    signature = hmac.new(ISSUER.public_key_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _foreign_key_with_the_issuers_key_id() -> str:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(), foreign, algorithm="RS256", headers={"kid": ISSUER.key_id})


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(lambda: token(lifetime=timedelta(seconds=-5)), id="expired"),
        pytest.param(lambda: TokenIssuer().issue("u", [], tenant="t1"), id="another-issuers-key"),
        pytest.param(_foreign_key_with_the_issuers_key_id, id="wrong-key-same-kid"),
        pytest.param(lambda: ISSUER.sign(_claims(iss="https://evil.test")), id="other-issuer"),
        pytest.param(lambda: ISSUER.sign(_claims(aud="another-service")), id="wrong-audience"),
        pytest.param(lambda: ISSUER.sign({k: v for k, v in _claims().items() if k != "exp"}), id="no-expiry"),
        pytest.param(_unsigned, id="alg-none"),
        pytest.param(_hmac_with_the_public_key, id="alg-hs256-with-public-key"),
    ],
)
def test_bad_tokens_are_refused(bad_token: Callable[[], str]) -> None:
    response = post(f"Bearer {bad_token()}")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON


def test_an_unreachable_key_set_is_503_not_401() -> None:
    """The provider being away is not the caller's fault: a 401 would end a valid session."""
    unreachable = AuthConfig(ISSUER.url, "lotse", jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json")
    response = TestClient(make_app(unreachable)).post(
        "/things", json={"name": "x", "radius_km": 5}, headers={"Authorization": f"Bearer {token()}"}
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON


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
    signed = ISSUER.sign({**_claims(), "exp": datetime.now(UTC) + timedelta(minutes=5), **claims})
    response = TestClient(make_app(), raise_server_exceptions=False).post(
        "/things", json={"name": "x", "radius_km": 5}, headers={"Authorization": f"Bearer {signed}"}
    )
    assert response.status_code == 401, response.text


def test_a_uuid_subject_is_the_volunteer_id_itself() -> None:
    subject = str(uuid.uuid4())
    principal = Principal(subject=subject.upper(), tenant="t", roles=frozenset({Role.VOLUNTEER}), issuer="https://a")
    assert principal.volunteer_id == subject


def test_another_subject_maps_to_a_stable_uuid_per_issuer() -> None:
    def volunteer_id(issuer: str, subject: str) -> str:
        return Principal(subject=subject, tenant="t", roles=frozenset({Role.VOLUNTEER}), issuer=issuer).volunteer_id

    mapped = volunteer_id("https://login.example.org", "248289761001")
    assert mapped == str(uuid.uuid5(VOLUNTEER_ID_NAMESPACE, "https://login.example.org#248289761001"))
    assert mapped == volunteer_id("https://login.example.org", "248289761001")  # every sign-in, every service
    assert uuid.UUID(mapped).version == 5
    # The same subject of another provider is another person.
    assert mapped != volunteer_id("https://other.example.org", "248289761001")


def test_a_verified_token_names_its_issuer() -> None:
    principal = TokenVerifier(ISSUER.auth_config()).verify(token())
    assert principal.issuer == ISSUER.url
    assert principal.subject == "u1" and principal.tenant == "musterstadt"


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
