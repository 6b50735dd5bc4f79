"""The demo's sign-ins: an account per demo municipality and role at the local OpenID provider,
and a partner system (client credentials) per municipality.

Generated with random passwords into ``<state dir>/idp/accounts.json`` on the first run and kept
afterwards (mode 600), so that ``make run`` prints the same logins every time. The demo signs in
with them exactly as a person or a partner system would; Lotse signs no token itself.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from lotse_cli.demo_data import DEMO_TENANTS, DemoTenant
from lotse_devstack.idp import Account, AccountsFile, Directory, MachineClient, client_credentials, sign_in
from lotse_runtime.auth import Role

PLATFORM_ADMIN = "admin"
PASSWORD_BYTES = 12  # 16 characters


def accounts_path(home: Path) -> Path:
    return home / "idp" / "accounts.json"


def username(tenant: str | None, role: Role) -> str:
    """``admin`` for the platform, ``<tenant>-<role>`` for a municipality's people."""
    if tenant is None:
        return PLATFORM_ADMIN
    short = {Role.INITIATIVE_ADMIN: "initiative", Role.DATA_PROTECTION_OFFICER: "dpo"}.get(role, role.value)
    return f"{tenant}-{short}"


def partner_client_id(tenant: str) -> str:
    return f"{tenant}-case-management"


@dataclass(frozen=True)
class Login:
    """One line of the table ``make run`` prints."""

    tenant: str | None
    role: str
    username: str
    password: str


class DemoLogins:
    """The demo's accounts in the provider's accounts file, and tokens signed in with them."""

    def __init__(self, home: Path, tenants: tuple[DemoTenant, ...] = DEMO_TENANTS) -> None:
        self.file = AccountsFile(accounts_path(home))
        self.tenants = tenants
        self._tokens: dict[str, str] = {}

    def ensure(self) -> None:
        """Add whatever demo account or partner client is missing; existing ones keep their passwords."""
        directory = self.file.read()
        known = {account.username.lower() for account in directory.accounts}
        clients = {client.client_id for client in directory.clients}
        wanted = [self._account(None, Role.PLATFORM_ADMIN, "Plattform-Administration", "admin@lotse.example")]
        for tenant in self.tenants:
            for role, name in (
                (Role.COORDINATOR, f"Koordinierungsstelle {tenant.name}"),
                (Role.INITIATIVE_ADMIN, f"Initiative in {tenant.name}"),
                (Role.VOLUNTEER, "Samira Demo"),
                (Role.DATA_PROTECTION_OFFICER, f"Datenschutz {tenant.name}"),
            ):
                wanted.append(
                    self._account(tenant.slug, role, name, f"{username(tenant.slug, role)}@{tenant.slug}.example")
                )
        added = [account for account in wanted if account.username.lower() not in known]
        new_clients = [
            MachineClient(partner_client_id(tenant.slug), _password(), tenant.slug)
            for tenant in self.tenants
            if partner_client_id(tenant.slug) not in clients
        ]
        if added or new_clients or not self.file.path.exists():
            self.file.write(Directory([*directory.accounts, *added], [*directory.clients, *new_clients]))

    def _account(self, tenant: str | None, role: Role, name: str, email: str) -> Account:
        return Account(
            username=username(tenant, role),
            # A volunteer's subject is the volunteer id: the demo registers this volunteer with it.
            sub=str(uuid.uuid4()),
            name=name,
            email=email,
            tenant=tenant,
            roles=(role.value,),
            password=_password(),
        )

    def account(self, tenant: str | None, role: Role) -> Account:
        return self.file.read().account(username(tenant, role))

    def assign_organisation(self, tenant: str, organisation_id: str) -> None:
        """The initiative admin acts for an organisation that exists only once the demo created it."""
        account = self.account(tenant, Role.INITIATIVE_ADMIN)
        if account.org != organisation_id:
            self.file.update(replace(account, org=organisation_id))
            self._tokens.pop(account.username, None)

    def token(self, issuer: str, tenant: str | None, role: Role) -> str:
        """An access token of the demo account, signed in through the provider's login page."""
        if role is Role.PARTNER:
            assert tenant is not None
            client = next(c for c in self.file.read().clients if c.client_id == partner_client_id(tenant))
            return client_credentials(issuer, client.client_id, client.client_secret).access_token
        account = self.account(tenant, role)
        if account.username not in self._tokens:
            assert account.password is not None  # the demo's accounts keep plain passwords
            self._tokens[account.username] = sign_in(issuer, account.username, account.password).access_token
        return self._tokens[account.username]

    def table(self) -> list[Login]:
        directory = self.file.read()
        demo = {username(None, Role.PLATFORM_ADMIN)} | {
            username(tenant.slug, role)
            for tenant in self.tenants
            for role in (Role.COORDINATOR, Role.INITIATIVE_ADMIN, Role.VOLUNTEER, Role.DATA_PROTECTION_OFFICER)
        }
        logins = [
            Login(account.tenant, ", ".join(account.roles), account.username, account.password or "")
            for account in directory.accounts
            if account.username in demo
        ]
        logins += [
            Login(client.tenant, "partner (client credentials)", client.client_id, client.client_secret)
            for client in directory.clients
            if client.client_id in {partner_client_id(tenant.slug) for tenant in self.tenants}
        ]
        return sorted(logins, key=lambda login: (login.tenant or "", login.role))


def _password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)
