"""Secrets of the settings: required outside development, generated once per installation in it,
and never a value that was published in this repository.

A settings field typed ``SecretStr | None`` with the default ``None`` is a secret. Outside
development a missing one stops the settings from loading, naming its environment variable. In
development a missing one is generated into ``<home>/secrets/<field name>`` (mode 600) on first
use and read from there afterwards, so every process of one installation shares it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings

ENV_PREFIX = "LOTSE_"
# Characters of a generated secret (token_urlsafe: about 1.3 per byte).
GENERATED_BYTES = 32
# The shortest secret accepted (an HMAC key as long as its hash, RFC 2104 / RFC 7518): an empty or
# short value would let anyone forge what it signs.
MIN_SECRET_LENGTH = 32
HOW_TO_CHOOSE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

# SHA-256 of every secret value ever committed to the Lotse repository (signing keys, answer link
# secrets, development broker passwords, test keys): they are public, so they are refused in every
# mode. Hashes, so that this list does not publish them once more.
PUBLISHED_SECRET_SHA256 = frozenset(
    {
        "a50fca1cd0c08987aca21855b4d1650bae2b85830a5312ca2e02e4a9c6a24169",  # the JWT development key
        "f5ef82b93168f27ebec014dd788c345080431d3a54058274d775103964dd5b61",  # matching's answer secret default
        "cff0d5e85788ab4b5eda4016e21603280a02536b95d89f2a73dc7e85438ee404",  # compose / k8s answer secret
        "982cec6a272da794c0c81ea40692c5e75a0186b1fd7150d32c36d771955ae0f0",  # k8s answer link secret
        "090f85da6e89a39e91ce70bc4efed11e264717f9aadeef9432526ecb1fab932c",  # compose Kafka: lotse-admin
        "ab89249812bf902ecba594bfa97b16f003ce0ab15f383d72dec5750170349385",  # compose Kafka: lotse-matching
        "8b6f324650d5aaebecc20502fbdc19ed6c185eac08233e67e3e70aa3937ea82c",  # compose Kafka: lotse-notifications
        "5528eddb51a7b5e13dca5b0c37626718143bdfa0626c5abb441f97c76f96ebee",  # compose Kafka: partner lindenau
        "c720a67ae41f2a8f803d83fc2784f6346c60ee5754b51b99e67184c42bea0bd3",  # compose Kafka: partner musterstadt
        "17d5da88f3e298e4997b0bd64044feb620597d1b3f95bc00fab0d91abb041656",  # compose Kafka: lotse-registry
        "8e11379228093186f66b68c3efb832a444ca4a5bb14fa984c520809339f4bde9",  # the API fuzz's foreign JWT key
        "922d888c93e9afecbd8fd51b7c42cd2104242ad586f0c695efb1465f3414982a",  # a unit test's answer secret
        "112ae291a178448a5dcce480453a0d5308862e3255a0db978e005291ae44460d",  # a unit test's Kafka password
    }
)


class SecretsError(ValueError):
    """One line: which settings are missing or refused, and what to do."""


def variable(field_name: str) -> str:
    return f"{ENV_PREFIX}{field_name.upper()}"


def is_published(value: str) -> bool:
    return hashlib.sha256(value.encode()).hexdigest() in PUBLISHED_SECRET_SHA256


def secret_fields(settings_class: type[BaseSettings]) -> list[str]:
    """The names of the fields typed ``SecretStr | None`` whose default is ``None``."""
    return [
        name
        for name, field in settings_class.model_fields.items()
        if _is_optional_secret(field.annotation) and field.default is None
    ]


def _is_optional_secret(annotation: object) -> bool:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return False
    return set(typing.get_args(annotation)) == {SecretStr, type(None)}


def development_secret(home: Path, name: str) -> str:
    """The installation's secret ``name``: generated on first use, then read. Several processes
    may start at once: the file appears complete or not at all (a hard link of a finished file
    fails if another won the race), and the loser reads the winner's."""
    folder = home / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A folder made before (by hand, or by an older Lotse) keeps its mode: make it this user's alone.
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    path = folder / name
    if not path.exists():
        draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(GENERATED_BYTES))
        try:
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    if path.stat().st_mode & 0o077:  # copied in, or written by hand
        path.chmod(0o600)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SecretsError(f"{path} is empty: delete it and start again to generate {variable(name)}")
    return value


def provide(
    settings: BaseSettings,
    *,
    development: bool,
    home: Path,
    not_needed: Iterable[str] = (),
    alternatives: Mapping[str, str] = {},
) -> None:
    """Fill in or refuse the secrets of ``settings`` (in place); raises SecretsError naming every
    variable that is missing or refused. ``alternatives``: field name -> what an operator may set
    instead (named in the message)."""
    skipped = set(not_needed)
    missing = []
    for name in secret_fields(type(settings)):
        if getattr(settings, name) is not None or name in skipped:
            continue
        if development:
            setattr(settings, name, SecretStr(development_secret(home, name)))
        else:
            missing.append(f"{alternatives[name]} or {variable(name)}" if name in alternatives else variable(name))
    problems = []
    short = [
        variable(name)
        for name in secret_fields(type(settings))
        if isinstance(value := getattr(settings, name), SecretStr)
        and len(value.get_secret_value().strip()) < MIN_SECRET_LENGTH
    ]
    if short:
        problems.append(
            f"{', '.join(short)} is shorter than {MIN_SECRET_LENGTH} characters; "
            f"choose a random value, e.g. {HOW_TO_CHOOSE}"
        )
    if missing:
        problems.append(
            f"not set: {', '.join(missing)} (LOTSE_ENV is production, where every secret must be set; "
            f"a random value: {HOW_TO_CHOOSE}; on a development machine set LOTSE_ENV=development)"
        )
    published = [variable(name) for name, value in _string_values(settings) if is_published(value)]
    if published:
        problems.append(
            f"{', '.join(published)} holds a value published in the Lotse repository; set a new random value, "
            f"e.g. {HOW_TO_CHOOSE}"
        )
    if problems:
        raise SecretsError("; ".join(problems))


def _string_values(settings: BaseSettings) -> Iterable[tuple[str, str]]:
    # Every text setting, not only the required secrets: optional passwords (SMTP, Kafka) count too.
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            yield name, value.get_secret_value()
        elif isinstance(value, str):
            yield name, value
