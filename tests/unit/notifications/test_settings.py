"""Notifications' own settings: in production the answer links in proposal mails go out over https
(they are capabilities), plain http only to this machine."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from lotse_notifications.settings import NotificationSettings


def production(tmp_path: Path, base_url: str) -> NotificationSettings:
    return NotificationSettings(
        env="production",
        home=tmp_path,
        answer_link_secret=SecretStr(secrets.token_urlsafe(32)),
        key_encryption_key=SecretStr(secrets.token_urlsafe(32)),
        answer_link_base_url=base_url,
    )


@pytest.mark.parametrize("base_url", ["http://lotse.example.org", "http://10.0.0.5:8002", "ftp://lotse.example.org"])
def test_production_refuses_answer_links_that_would_travel_in_clear_text(tmp_path: Path, base_url: str) -> None:
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_BASE_URL must be an https URL"):
        production(tmp_path, base_url)


@pytest.mark.parametrize(
    "base_url", ["https://lotse.example.org", "http://localhost:8002", "http://127.0.0.1:8002", "http://[::1]:8002"]
)
def test_production_takes_https_and_loopback_and_development_anything(tmp_path: Path, base_url: str) -> None:
    assert production(tmp_path, base_url).answer_link_base_url == base_url
    development = NotificationSettings(env="development", home=tmp_path, answer_link_base_url="http://matching.test")
    assert development.answer_link_base_url == "http://matching.test"


def test_production_needs_the_answer_links_address_and_development_has_one(tmp_path: Path) -> None:
    # A default would mail links to this machine's loopback: dead links nobody notices.
    with pytest.raises(ValidationError, match="LOTSE_ANSWER_LINK_BASE_URL is not set"):
        production(tmp_path, "")
    development = NotificationSettings(env="development", home=tmp_path)
    assert development.answer_link_base_url == "http://127.0.0.1:8002"
