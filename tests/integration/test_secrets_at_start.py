"""The services' secrets at start, as real processes (`python -m lotse_<service>`): outside
development a missing or published secret stops the start with one line naming the variable; in
development a token signed with the key that used to be published is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from lotse_devstack import Stack
from lotse_runtime.auth import AuthConfig, Role, issue_token
from lotse_runtime.settings import EX_CONFIG, PlatformSettings
from tests.support.service_process import service_process

# The HS256 key every installation shared until issue 13 (public: in the repository's history).
OLD_PUBLISHED_KEY = "lotse-development-key-change-me-0123456789"
MISSING = {
    "registry": "not set: LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY (",
    "matching": "not set: LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY, LOTSE_ANSWER_LINK_SECRET (",
    "notifications": "not set: LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY, LOTSE_ANSWER_LINK_SECRET (",
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


@pytest.mark.parametrize("service", list(MISSING))
def test_outside_development_a_service_without_its_secrets_refuses_to_start_naming_them(
    service: str, tmp_path: Path
) -> None:
    result = start(service, tmp_path)  # LOTSE_ENV unset: production

    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{service}: refusing to start: {MISSING[service]}")
    assert "LOTSE_ENV=development" in line
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("env", ["production", "development"])
def test_a_service_given_a_published_key_refuses_to_start_in_every_mode(env: str, tmp_path: Path) -> None:
    result = start("registry", tmp_path, LOTSE_ENV=env, LOTSE_JWT_HS256_KEY=OLD_PUBLISHED_KEY)

    assert result.returncode == EX_CONFIG, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "registry: refusing to start: LOTSE_JWT_HS256_KEY holds a value published in the Lotse repository"
    )


async def test_in_development_a_token_signed_with_the_old_published_key_gets_401(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "installation"
    with service_process("registry", stack, tmp_path, LOTSE_ENV="development", LOTSE_HOME=str(home)) as registry:
        await registry.ready()
        settings = PlatformSettings(env="development", home=home)
        forged = issue_token(
            AuthConfig(settings.jwt_issuer, settings.jwt_audience, hs256_key=OLD_PUBLISHED_KEY),
            subject="mallory",
            roles=[Role.PLATFORM_ADMIN],
        )
        genuine = issue_token(settings.auth_config(), subject=str(uuid.uuid4()), roles=[Role.PLATFORM_ADMIN])
        async with httpx.AsyncClient(base_url=registry.url, timeout=10) as http:
            refused = await http.get("/tenants", headers={"Authorization": f"Bearer {forged}"})
            accepted = await http.get("/tenants", headers={"Authorization": f"Bearer {genuine}"})

    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    # The installation's own generated key works: the refusal is the key's, not the route's.
    assert accepted.status_code == 200
    key = home / "secrets" / "jwt_hs256_key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
