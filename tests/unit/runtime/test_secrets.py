"""Secrets in the settings: required outside development, generated once per installation in it,
and never a value that was ever committed to this repository; the token issuer required in every
mode."""

from __future__ import annotations

import hashlib
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, SecretStr, ValidationError

from lotse_runtime import secrets
from lotse_runtime.settings import EX_CONFIG, PlatformSettings, load_settings

# Every secret value that was ever committed here (they are public already; this is the one place
# they are spelled out, to prove that each is refused).
PUBLISHED = [
    "lotse-development-key-change-me-0123456789",
    "lotse-matching-answer-secret-change-me",
    "development-answer-secret-not-for-production",
    "development-answer-link-secret-not-for-production",
    "dev-03588b51d2a0c36f78b7acfb",
    "dev-e99aab4f4f75d5e2c03ce22c",
    "dev-805b4189055be0ed1a9e3cf8",
    "dev-f3977e66f2d6201e466a52f6",
    "dev-a07f4b616aa3f9a275a3ba7d",
    "dev-3c6778da07ce70cd772219cf",
    "not-the-services-key-0123456789abcdef",
    "a-secret-of-sixteen-or-more",
    "from-a-secret",
]


ISSUER = "https://login.example.org/realms/lotse"
JWKS = f"{ISSUER}/protocol/openid-connect/certs"
TOKENS: dict[str, Any] = {"jwt_issuer": ISSUER, "jwt_jwks_url": JWKS}


class ServiceSettings(PlatformSettings):
    """A service with a secret of its own, as matching and notifications have."""

    answer_link_secret: SecretStr | None = Field(None, description="a secret")
    smtp_password: str | None = Field(None, description="optional, not a required secret")


@pytest.fixture(autouse=True)
def _no_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LOTSE_ENV",
        "LOTSE_HOME",
        "LOTSE_JWT_HS256_KEY",
        "LOTSE_JWT_ISSUER",
        "LOTSE_JWT_JWKS_URL",
        "LOTSE_ANSWER_LINK_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)


def development(home: Path, **values: Any) -> ServiceSettings:
    return ServiceSettings(env="development", home=home, **{**TOKENS, **values})


def production(home: Path, **values: Any) -> ServiceSettings:
    return ServiceSettings(home=home, **{**TOKENS, **values})


def test_the_list_of_published_values_holds_each_known_value_once() -> None:
    assert {hashlib.sha256(value.encode()).hexdigest() for value in PUBLISHED} == (secrets.PUBLISHED_SECRET_SHA256)


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("value", PUBLISHED)
def test_a_published_value_is_refused_in_every_mode(tmp_path: Path, env: str, value: str) -> None:
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_SECRET holds a value published in the Lotse"):
        ServiceSettings(env=env, home=tmp_path, answer_link_secret=value, **TOKENS)


@pytest.mark.parametrize(
    ("field", "variable"),
    [("answer_link_secret", "LOTSE_ANSWER_LINK_SECRET"), ("smtp_password", "LOTSE_SMTP_PASSWORD")],
)
def test_a_published_value_is_refused_in_any_secret_or_password(tmp_path: Path, field: str, variable: str) -> None:
    with pytest.raises(ValidationError, match=f"{variable} holds a value published"):
        development(tmp_path, **{field: "dev-03588b51d2a0c36f78b7acfb"})


def test_outside_development_every_missing_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(home=tmp_path)
    message = str(refused.value)
    assert "not set: LOTSE_JWT_ISSUER, LOTSE_JWT_JWKS_URL (the OpenID Connect provider" in message
    assert "not set: LOTSE_ANSWER_LINK_SECRET" in message
    assert "LOTSE_ENV=development" in message
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize("env", ["development", "production"])
def test_the_token_issuer_is_required_in_every_mode_and_never_generated(tmp_path: Path, env: str) -> None:
    with pytest.raises(ValidationError, match="not set: LOTSE_JWT_JWKS_URL \\(") as refused:
        ServiceSettings(env=env, home=tmp_path, jwt_issuer=ISSUER, answer_link_secret="a" * 32)
    assert "LOTSE_JWT_ISSUER" not in str(refused.value).split("not set:")[1]
    with pytest.raises(ValidationError, match="LOTSE_JWT_ISSUER must be an http\\(s\\) URL"):
        ServiceSettings(env=env, home=tmp_path, jwt_issuer="lotse", jwt_jwks_url=JWKS, answer_link_secret="a" * 32)


def test_outside_development_given_settings_load_and_an_optional_password_may_be_absent(tmp_path: Path) -> None:
    settings = production(tmp_path, answer_link_secret="a" * 32)
    assert settings.smtp_password is None
    config = settings.auth_config()
    assert (config.issuer, config.audience, config.jwks_url) == (ISSUER, "lotse", JWKS)


@pytest.mark.parametrize("env", ["development", "production"])
def test_the_retired_shared_token_key_is_refused_naming_what_replaces_it(
    tmp_path: Path, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOTSE_JWT_HS256_KEY", "k" * 32)
    with pytest.raises(ValidationError, match="LOTSE_JWT_HS256_KEY is no longer supported") as refused:
        ServiceSettings(env=env, home=tmp_path, answer_link_secret="a" * 32, **TOKENS)
    assert "set LOTSE_JWT_ISSUER and LOTSE_JWT_JWKS_URL" in str(refused.value)


@pytest.mark.parametrize("value", ["", " " * 40, "a-short-answer-link-secret"])
def test_an_empty_or_short_secret_is_refused_in_production(tmp_path: Path, value: str) -> None:
    # An empty HMAC key is a key anyone has: every answer link could be forged.
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_SECRET is shorter than 32 characters"):
        production(tmp_path, answer_link_secret=value)


def test_an_empty_secret_from_the_environment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTSE_ANSWER_LINK_SECRET", "")
    monkeypatch.setenv("LOTSE_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("LOTSE_JWT_JWKS_URL", JWKS)
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_SECRET is shorter than 32 characters"):
        ServiceSettings(home=tmp_path)


def test_development_generates_each_secret_once_with_mode_600_and_reuses_it(tmp_path: Path) -> None:
    first = development(tmp_path)
    folder = tmp_path / "secrets"
    # No token key among them: tokens come from the provider in every mode.
    assert sorted(path.name for path in folder.iterdir()) == ["answer_link_secret"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert first.answer_link_secret is not None
    secret = first.answer_link_secret.get_secret_value()
    assert len(secret) >= 32 and secret == (folder / "answer_link_secret").read_text()
    second = development(tmp_path)
    assert second.answer_link_secret == first.answer_link_secret


def test_a_secrets_folder_or_file_others_may_read_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    written = folder / "answer_link_secret"
    written.write_text("w" * 40)
    written.chmod(0o644)
    settings = development(tmp_path)
    assert settings.answer_link_secret is not None and settings.answer_link_secret.get_secret_value() == "w" * 40
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_two_installations_get_different_secrets(tmp_path: Path) -> None:
    one, two = development(tmp_path / "one"), development(tmp_path / "two")
    assert one.answer_link_secret != two.answer_link_secret


def test_a_set_secret_wins_over_generation_in_development(tmp_path: Path) -> None:
    settings = development(tmp_path, answer_link_secret="k" * 32)
    assert settings.answer_link_secret is not None and settings.answer_link_secret.get_secret_value() == "k" * 32
    assert not (tmp_path / "secrets" / "answer_link_secret").exists()


def test_processes_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        values = set(pool.map(lambda _: secrets.development_secret(tmp_path, "answer_link_secret"), range(64)))
    assert len(values) == 1
    assert [path.name for path in (tmp_path / "secrets").iterdir()] == ["answer_link_secret"]


def test_an_empty_secret_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "answer_link_secret").write_text("")
    with pytest.raises(ValidationError, match="answer_link_secret is empty: delete it"):
        development(tmp_path)


def test_a_refused_start_prints_one_line_and_exits_with_ex_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTSE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings, "matching")
    assert exited.value.code == EX_CONFIG
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("matching: refusing to start: not set: LOTSE_JWT_ISSUER, LOTSE_JWT_JWKS_URL (")
    assert "not set: LOTSE_ANSWER_LINK_SECRET (" in line


def test_a_malformed_setting_is_named_in_the_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTSE_ENV", "staging")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, "registry")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("registry: refusing to start: LOTSE_ENV: Input should be 'development' or 'production'")
