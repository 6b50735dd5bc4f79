"""Sealed personal data (crypto-shredding, issue 18).

A sealed value is personal data encrypted with the data key of the person it is about
(AES-256-GCM). The registry holds each person's key and publishes it, wrapped with the platform's
key-encryption key, on the compacted `lotse.registry.person-keys.v1` topic; an erasure destroys
the key and writes a tombstone, so that every copy of the sealed value left on a topic, in a
dead letter or in a consumer's backlog becomes unreadable at once.

Schemas only: the cryptography is `lotse_runtime.sealed`.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

from lotse_contracts.base import Contract

Plain = TypeVar("Plain", bound=BaseModel)

SEALING_ALGORITHM = "A256GCM"
EXAMPLE_KEY_ID = "7d1c9a52-3f0e-4d5b-9a51-2f6c0b8e4a17"
BASE64URL = r"^[A-Za-z0-9_-]+$"
EXAMPLE_SEALED: dict[str, Any] = {
    "key_id": EXAMPLE_KEY_ID,
    "algorithm": SEALING_ALGORITHM,
    "nonce": "q2XbU8fJ0vWcN1aE",
    "ciphertext": "Zm9vYmFyYmF6cXV4cXV1eHh5eno0MjQyNDI",
}


class Sealed(Contract, Generic[Plain]):
    """A value of the model in brackets, encrypted with its person's data key: readable only while
    the key exists (``lotse.registry.person-keys.v1``)."""

    key_id: UUID = Field(description="Id of the person's data key that sealed the value.", examples=[EXAMPLE_KEY_ID])
    algorithm: Literal["A256GCM"] = Field(
        description="AES-256-GCM; the additional authenticated data is the message key `<tenant>:<subject>`.",
        examples=["A256GCM"],
    )
    nonce: str = Field(
        min_length=16,
        max_length=16,
        pattern=BASE64URL,
        description="The 96-bit GCM nonce, base64url without padding.",
        examples=["q2XbU8fJ0vWcN1aE"],
    )
    ciphertext: str = Field(
        min_length=22,
        max_length=16384,
        pattern=BASE64URL,
        description="The JSON of the value, encrypted, with the 128-bit tag appended; base64url without padding.",
        examples=["Zm9vYmFyYmF6cXV4cXV1eHh5eno0MjQyNDI"],
    )
