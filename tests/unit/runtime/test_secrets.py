"""Secrets in the settings: required outside development, generated once per installation in it,
and never a value that was ever committed to this repository."""

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


class ServiceSettings(PlatformSettings):
    """A service with a secret of its own, as matching and notifications have."""

    answer_link_secret: SecretStr | None = Field(None, description="a secret")
    smtp_password: str | None = Field(None, description="optional, not a required secret")


@pytest.fixture(autouse=True)
def _no_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOTSE_ENV", "LOTSE_HOME", "LOTSE_JWT_HS256_KEY", "LOTSE_JWT_JWKS_URL", "LOTSE_ANSWER_LINK_SECRET"):
        monkeypatch.delenv(name, raising=False)


def development(home: Path, **values: Any) -> ServiceSettings:
    return ServiceSettings(env="development", home=home, **values)


def test_the_list_of_published_values_holds_each_known_value_once() -> None:
    assert {hashlib.sha256(value.encode()).hexdigest() for value in PUBLISHED} == (secrets.PUBLISHED_SECRET_SHA256)


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("value", PUBLISHED)
def test_a_published_value_is_refused_in_every_mode(tmp_path: Path, env: str, value: str) -> None:
    with pytest.raises(ValidationError, match="LOTSE_JWT_HS256_KEY holds a value published in the Lotse repository"):
        ServiceSettings(env=env, home=tmp_path, jwt_hs256_key=value, answer_link_secret="x" * 43)


@pytest.mark.parametrize(
    ("field", "variable"),
    [("answer_link_secret", "LOTSE_ANSWER_LINK_SECRET"), ("smtp_password", "LOTSE_SMTP_PASSWORD")],
)
def test_a_published_value_is_refused_in_any_secret_or_password(tmp_path: Path, field: str, variable: str) -> None:
    with pytest.raises(ValidationError, match=f"{variable} holds a value published"):
        development(tmp_path, **{field: "dev-03588b51d2a0c36f78b7acfb"})


def test_outside_development_every_missing_secret_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        ServiceSettings(home=tmp_path)
    message = str(refused.value)
    assert "not set: LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY, LOTSE_ANSWER_LINK_SECRET" in message
    assert "LOTSE_ENV=development" in message
    assert not (tmp_path / "secrets").exists()


def test_outside_development_given_secrets_load_and_an_optional_password_may_be_absent(tmp_path: Path) -> None:
    settings = ServiceSettings(home=tmp_path, jwt_hs256_key="k" * 32, answer_link_secret="a" * 32)
    assert settings.jwt_hs256_key is not None and settings.jwt_hs256_key.get_secret_value() == "k" * 32
    assert settings.smtp_password is None
    assert settings.auth_config().hs256_key == "k" * 32


def test_a_jwks_url_replaces_the_hs256_key_and_both_together_are_refused(tmp_path: Path) -> None:
    jwks = "https://login.example.org/certs"
    settings = ServiceSettings(home=tmp_path, jwt_jwks_url=jwks, answer_link_secret="a" * 32)
    assert settings.jwt_hs256_key is None and settings.auth_config().jwks_url == jwks
    with pytest.raises(ValidationError, match="only one of LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY"):
        ServiceSettings(home=tmp_path, jwt_jwks_url=jwks, jwt_hs256_key="k" * 32, answer_link_secret="a" * 32)
    # Development generates no key that nobody would use.
    assert development(tmp_path, jwt_jwks_url=jwks).jwt_hs256_key is None
    assert not (tmp_path / "secrets" / "jwt_hs256_key").exists()


def test_a_short_hs256_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LOTSE_JWT_HS256_KEY is shorter than 32 characters"):
        development(tmp_path, jwt_hs256_key="k" * 31)


@pytest.mark.parametrize("value", ["", " " * 40, "a-short-answer-link-secret"])
def test_an_empty_or_short_secret_is_refused_in_production(tmp_path: Path, value: str) -> None:
    # An empty HMAC key is a key anyone has: every answer link could be forged.
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_SECRET is shorter than 32 characters"):
        ServiceSettings(home=tmp_path, jwt_hs256_key="k" * 32, answer_link_secret=value)


def test_an_empty_secret_from_the_environment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTSE_ANSWER_LINK_SECRET", "")
    monkeypatch.setenv("LOTSE_JWT_HS256_KEY", "k" * 32)
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_SECRET is shorter than 32 characters"):
        ServiceSettings(home=tmp_path)


def test_development_generates_each_secret_once_with_mode_600_and_reuses_it(tmp_path: Path) -> None:
    first = development(tmp_path)
    folder = tmp_path / "secrets"
    assert sorted(path.name for path in folder.iterdir()) == ["answer_link_secret", "jwt_hs256_key"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert first.jwt_hs256_key is not None and first.answer_link_secret is not None
    key = first.jwt_hs256_key.get_secret_value()
    assert len(key) >= 32 and key == (folder / "jwt_hs256_key").read_text()
    second = development(tmp_path)
    assert second.jwt_hs256_key == first.jwt_hs256_key
    assert second.answer_link_secret == first.answer_link_secret
    # Another service of the same installation (here: the base settings) signs with the same key.
    assert PlatformSettings(env="development", home=tmp_path).auth_config() == first.auth_config()


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
    assert one.jwt_hs256_key != two.jwt_hs256_key


def test_a_set_secret_wins_over_generation_in_development(tmp_path: Path) -> None:
    settings = development(tmp_path, jwt_hs256_key="k" * 32)
    assert settings.jwt_hs256_key is not None and settings.jwt_hs256_key.get_secret_value() == "k" * 32
    assert not (tmp_path / "secrets" / "jwt_hs256_key").exists()


def test_processes_starting_at_once_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        values = set(pool.map(lambda _: secrets.development_secret(tmp_path, "jwt_hs256_key"), range(64)))
    assert len(values) == 1
    assert [path.name for path in (tmp_path / "secrets").iterdir()] == ["jwt_hs256_key"]


def test_an_empty_secret_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "jwt_hs256_key").write_text("")
    with pytest.raises(ValidationError, match="jwt_hs256_key is empty: delete it"):
        development(tmp_path)


def test_a_refused_start_prints_one_line_and_exits_with_ex_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTSE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        load_settings(ServiceSettings, "matching")
    assert exited.value.code == EX_CONFIG
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("matching: refusing to start: not set: LOTSE_JWT_JWKS_URL or LOTSE_JWT_HS256_KEY")


def test_a_malformed_setting_is_named_in_the_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTSE_ENV", "staging")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, "registry")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("registry: refusing to start: LOTSE_ENV: Input should be 'development' or 'production'")
