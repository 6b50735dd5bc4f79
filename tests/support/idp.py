"""The local OpenID provider for the tests about sign-in: the real Node.js process of
deploy/devstack/idp on a free port, with accounts of the test's own, and sign-in as the portal does
it (authorization code flow with PKCE, confidential client ``lotse-portal``).

Tests that are not about sign-in take their tokens from tests/support/tokens.py instead.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lotse_devstack.idp import (
    PORTAL_CLIENT_ID,
    Account,
    AccountsFile,
    Client,
    Directory,
    Idp,
    MachineClient,
    Tokens,
    node_ready,
    running_idp,
    sign_in,
)
from lotse_devstack.processes import free_port
from lotse_runtime.auth import AuthConfig, Role

# Nothing listens there: the sign-in stops at the redirect and takes the code from its address.
PORTAL_CALLBACK = "http://127.0.0.1:9/signin/callback"
PORTAL_HOME = "http://127.0.0.1:9/"


def account(username: str, role: Role, tenant: str | None = None, org: str | None = None) -> Account:
    """A person with a random password and a UUID subject."""
    return Account(
        username=username,
        sub=str(uuid.uuid4()),
        name=username.title(),
        email=f"{username}@example.org",
        tenant=tenant,
        roles=(role.value,),
        org=org,
        password=secrets.token_urlsafe(12),
    )


@dataclass(frozen=True)
class TestIdp:
    """A running provider, its accounts by user name, and the portal's client at it."""

    __test__ = False  # a support class, not tests

    idp: Idp
    accounts: dict[str, Account]
    portal: Client

    @property
    def issuer(self) -> str:
        return self.idp.issuer

    def auth_config(self) -> AuthConfig:
        return AuthConfig(self.idp.issuer, "lotse", jwks_url=self.idp.jwks_url)

    def sign_in(self, username: str, password: str | None = None, **extra: str) -> Tokens:
        """Sign in as the portal does, with the account's password unless another is given."""
        if password is None:
            password = self.accounts[username].password
        assert password is not None
        return sign_in(
            self.issuer,
            username,
            password,
            client=self.portal,
            scope="openid profile email offline_access",
            **extra,
        )


@contextmanager
def local_idp(
    folder: Path, accounts: Iterable[Account] = (), clients: Iterable[MachineClient] = ()
) -> Iterator[TestIdp]:
    """The provider on a free port, reading ``accounts`` from a file in ``folder``; skipped (with
    the command that installs it) where Node.js or the provider's packages are missing."""
    missing = node_ready()
    if missing:
        pytest.skip(f"local OpenID provider: {missing}")
    people = list(accounts)
    accounts_file = folder / "accounts.json"
    AccountsFile(accounts_file).write(Directory(people, list(clients)))
    portal = Client(PORTAL_CLIENT_ID, PORTAL_CALLBACK, secrets.token_urlsafe(32))
    with running_idp(
        port=free_port(),
        state_dir=folder / "state",
        accounts=accounts_file,
        portal_secret=portal.secret or "",
        portal_redirect_uris=[PORTAL_CALLBACK],
        portal_logout_uris=[PORTAL_HOME],
        log_path=folder / "idp.log",
    ) as idp:
        yield TestIdp(idp, {person.username: person for person in people}, portal)
