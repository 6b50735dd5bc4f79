"""The services' settings at start, as real processes (`python -m lotse_<service>`): without the
token issuer (in every mode) or, outside development, a secret, the start stops with one line
naming the variables; the retired shared token key is refused naming its replacement; and a token
signed with the key that used to be published is refused (401) where the issuer's is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from lotse_devstack import Stack
from lotse_runtime.auth import Role
from lotse_runtime.settings import EX_CONFIG
from tests.support import tokens
from tests.support.service_process import service_process

# The HS256 key every installation shared until issue 13 (public: in the repository's history).
OLD_PUBLISHED_KEY = "lotse-development-key-change-me-0123456789"
NO_ISSUER = "not set: LOTSE_JWT_ISSUER, LOTSE_JWT_JWKS_URL (the OpenID Connect provider"
NO_SECRET = {
    "registry": None,
    "matching": "not set: LOTSE_KEY_ENCRYPTION_KEY, LOTSE_ANSWER_LINK_SECRET (",
    "notifications": "not set: LOTSE_KEY_ENCRYPTION_KEY, LOTSE_ANSWER_LINK_SECRET (",
}


def start(service: str, home: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """The service's entry point with a clean environment: only what is given here."""
    environment = {"PATH": os.environ["PATH"], "LOTSE_HOME": str(home), **settings}
    return subprocess.run(
        [sys.executable, "-m", f"lotse_{service}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", list(NO_SECRET))
def test_outside_development_a_service_without_its_settings_refuses_to_start_naming_them(
    service: str, tmp_path: Path
) -> None:
    result = start(service, tmp_path)  # LOTSE_ENV unset: production

    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{service}: refusing to start: {NO_ISSUER}")
    missing_secret = NO_SECRET[service]
    if missing_secret is not None:
        assert missing_secret in line and "LOTSE_ENV=development" in line
    assert not (tmp_path / "secrets").exists()


def test_in_development_a_service_without_a_token_issuer_refuses_to_start_too(tmp_path: Path) -> None:
    result = start("matching", tmp_path, LOTSE_ENV="development")

    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    # The secret is generated; the issuer cannot be: a token key of its own would be one nobody uses.
    assert line.startswith(f"matching: refusing to start: {NO_ISSUER}")
    assert "LOTSE_ANSWER_LINK_SECRET" not in line


@pytest.mark.parametrize("env", ["production", "development"])
def test_the_retired_shared_token_key_stops_the_start_in_every_mode_naming_the_replacement(
    env: str, tmp_path: Path
) -> None:
    issuer = tokens.issuer()
    result = start("registry", tmp_path, LOTSE_ENV=env, LOTSE_JWT_HS256_KEY=OLD_PUBLISHED_KEY, **issuer.environment())

    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("registry: refusing to start: LOTSE_JWT_HS256_KEY is no longer supported")
    assert "set LOTSE_JWT_ISSUER and LOTSE_JWT_JWKS_URL" in line


def _hs256(claims: dict[str, object], key: bytes, kid: str | None = None) -> str:
    """An HMAC token built by hand (PyJWT refuses to use a PEM public key as an HMAC secret)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()

    header: dict[str, object] = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{part(header)}.{part(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_in_development_tokens_signed_with_the_old_key_or_the_public_key_get_401(
    stack: Stack, tmp_path: Path
) -> None:
    issuer = tokens.issuer()
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "iss": issuer.url,
        "aud": issuer.audience,
        "sub": "mallory",
        "iat": now,
        "exp": now + int(timedelta(minutes=5).total_seconds()),
        "roles": [Role.PLATFORM_ADMIN.value],
    }
    forged = {
        "old published key": jwt.encode(claims, OLD_PUBLISHED_KEY, algorithm="HS256"),
        "old key with the issuer's key id": _hs256(claims, OLD_PUBLISHED_KEY.encode(), issuer.key_id),
        "public key as HMAC secret": _hs256(claims, issuer.public_key_pem, issuer.key_id),
    }
    home = tmp_path / "installation"
    with service_process("registry", stack, tmp_path, LOTSE_ENV="development", LOTSE_HOME=str(home)) as registry:
        await registry.ready()
        genuine = tokens.issue(str(uuid.uuid4()), [Role.PLATFORM_ADMIN])
        async with httpx.AsyncClient(base_url=registry.url, timeout=10) as http:
            refused = {
                name: await http.get("/tenants", headers={"Authorization": f"Bearer {token}"})
                for name, token in forged.items()
            }
            accepted = await http.get("/tenants", headers={"Authorization": f"Bearer {genuine}"})

    for name, response in refused.items():
        assert response.status_code == 401, name
        assert response.headers["content-type"].startswith("application/problem+json")
    # The issuer's token works: the refusal is the signature's, not the route's.
    assert accepted.status_code == 200
    # No shared token key is generated any more.
    assert not (home / "secrets" / "jwt_hs256_key").exists()
