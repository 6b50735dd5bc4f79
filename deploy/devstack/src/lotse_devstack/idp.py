"""The local OpenID provider (deploy/devstack/idp, panva's certified ``oidc-provider`` on Node.js),
its accounts file, and sign-in as a person does it.

``lotse up`` and the tests about sign-in start it; production points Lotse at the municipality's
own provider instead. What it issues is what every provider must issue for Lotse (deploy/k8s/
README.md): JWT access tokens for the audience ``lotse`` carrying ``tenant``, ``roles`` and ``org``.

- ``running_idp(...)``: the provider as a child process on a port, ready when discovery answers.
- ``AccountsFile``: the JSON file of people (``accounts``) and partner systems (``clients``) that
  it reads whenever the file changes; self-registration appends to it. Mode 600: it holds
  passwords (the demo's in plain text, so that ``make run`` can print them; hashed otherwise).
- ``sign_in`` / ``register`` / ``client_credentials``: the authorization code flow with PKCE by
  posting the provider's own login or registration form, as a browser would, and the machine
  flow of a partner system. ``lotse token`` and the tests use them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import httpx

from lotse_devstack.processes import ManagedProcess

# The provider's package (package.json, server.mjs); `make idp` installs its node_modules.
IDP_DIR = Path(os.environ.get("LOTSE_IDP_DIR", Path(__file__).resolve().parents[2] / "idp"))
PORTAL_CLIENT_ID = "lotse-portal"
CLI_CLIENT_ID = "lotse-cli"
CLI_REDIRECT_URI = "http://127.0.0.1/lotse-cli/callback"
RESOURCE = "urn:lotse:api"
READY_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 15.0
_REDIRECT_LIMIT = 10
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')
_ERROR_TEXT = re.compile(r'<p class="error" id="([\w-]+)-error">(.*?)</p>', re.S)


class IdpError(RuntimeError):
    """The provider could not be started, or a sign-in did not get through; the message says why."""


class SignInRefused(IdpError):
    """The provider's page refused the form (wrong password, a field missing); ``errors`` holds
    the messages it shows next to each field, by field name."""

    def __init__(self, status: int, errors: dict[str, str]) -> None:
        super().__init__(f"the provider refused the form ({status}): {errors or 'no message'}")
        self.status = status
        self.errors = errors


# --- the accounts file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A person who signs in. ``sub`` is a UUID: for volunteers it is their volunteer id."""

    username: str
    sub: str
    name: str
    email: str
    tenant: str | None
    roles: tuple[str, ...]
    locale: str = "de"
    org: str | None = None
    password: str | None = None  # plain, development only (the demo prints it)
    password_hash: str | None = None  # hash_password()

    def to_json(self) -> dict[str, Any]:
        return {name: value for name, value in {**asdict(self), "roles": list(self.roles)}.items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**{**known, "roles": tuple(data.get("roles", ())), "tenant": data.get("tenant")})


@dataclass(frozen=True)
class MachineClient:
    """A partner system of one municipality: the client credentials flow, role partner."""

    client_id: str
    client_secret: str
    tenant: str
    roles: tuple[str, ...] = ("partner",)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "roles": list(self.roles)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MachineClient:
        return cls(data["client_id"], data["client_secret"], data["tenant"], tuple(data.get("roles", ("partner",))))


@dataclass
class Directory:
    accounts: list[Account] = field(default_factory=list)
    clients: list[MachineClient] = field(default_factory=list)

    def account(self, username: str) -> Account:
        for account in self.accounts:
            if account.username.lower() == username.lower():
                return account
        raise KeyError(f"no account {username!r}")


class AccountsFile:
    """The provider's accounts file; written whole and renamed (the provider never sees half a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Directory:
        if not self.path.exists():
            return Directory()
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return Directory(
            [Account.from_json(item) for item in data.get("accounts", [])],
            [MachineClient.from_json(item) for item in data.get("clients", [])],
        )

    def write(self, directory: Directory) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = {
            "accounts": [account.to_json() for account in directory.accounts],
            "clients": [client.to_json() for client in directory.clients],
        }
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        draft.replace(self.path)

    def update(self, account: Account) -> None:
        """Replace the account of the same user name (or add it)."""
        directory = self.read()
        others = [a for a in directory.accounts if a.username.lower() != account.username.lower()]
        self.write(Directory([*others, account], directory.clients))


def hash_password(password: str) -> str:
    """The provider's format: ``scrypt$N$r$p$salt$hash`` (base64url, Node's scrypt parameters)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the provider process -------------------------------------------------------------------------


@dataclass(frozen=True)
class Idp:
    """A running provider: its issuer URL, where its key set is, and the accounts file it reads."""

    issuer: str
    accounts: AccountsFile
    portal_secret: str
    process: ManagedProcess | None = None

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def environment(self) -> dict[str, str]:
        """The settings that make a Lotse service accept this provider's tokens."""
        return {"LOTSE_JWT_ISSUER": self.issuer, "LOTSE_JWT_JWKS_URL": self.jwks_url}


def node_ready() -> str | None:
    """Why the provider cannot start here, or None."""
    if shutil.which("node") is None:
        return "node (Node.js 20.19 or later) is not installed"
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"the provider's packages are not installed: run `make idp` (npm ci --prefix {IDP_DIR})"
    return None


def discovery_answers(issuer: str) -> bool:
    try:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json().get("issuer") == issuer


@contextmanager
def running_idp(
    *,
    port: int,
    state_dir: Path,
    accounts: Path,
    portal_secret: str,
    portal_redirect_uris: Sequence[str],
    portal_logout_uris: Sequence[str] = (),
    log_path: Path,
    echo: Callable[[str], None] | None = None,
) -> Iterator[Idp]:
    """Start the provider on 127.0.0.1:``port``, wait until discovery answers, stop it afterwards.

    ``state_dir`` keeps its signing and cookie keys across restarts; ``accounts`` is created
    (empty) if it does not exist."""
    missing = node_ready()
    if missing:
        raise IdpError(f"local OpenID provider: {missing}")
    issuer = f"http://127.0.0.1:{port}"
    accounts_file = AccountsFile(accounts)
    if not accounts.exists():
        accounts_file.write(Directory())
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "LOTSE_IDP_ISSUER": issuer,
        "LOTSE_IDP_ACCOUNTS": str(accounts.resolve()),
        "LOTSE_IDP_STATE_DIR": str(state_dir.resolve()),
        "LOTSE_IDP_PORTAL_SECRET": portal_secret,
        "LOTSE_IDP_PORTAL_REDIRECT_URIS": " ".join(portal_redirect_uris),
        "LOTSE_IDP_PORTAL_LOGOUT_URIS": " ".join(portal_logout_uris),
        # oidc-provider 9 warns once that it prefers Node.js 22; it runs on 20.19 and later.
        "NODE_NO_WARNINGS": "1",
    }
    process = ManagedProcess("idp", ["node", str(IDP_DIR / "server.mjs")], log_path, env=environment, echo=echo)
    process.start()
    try:
        process.wait_until(lambda: discovery_answers(issuer), READY_TIMEOUT_SECONDS)
    except RuntimeError as error:
        process.stop()
        raise IdpError(str(error)) from error
    try:
        yield Idp(issuer, accounts_file, portal_secret, process)
    finally:
        process.stop()


# --- signing in -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str | None
    refresh_token: str | None
    expires_in: int


@dataclass(frozen=True)
class Client:
    """Who signs in on the person's behalf: the CLI (public) or the portal (confidential)."""

    client_id: str = CLI_CLIENT_ID
    redirect_uri: str = CLI_REDIRECT_URI
    secret: str | None = None


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def authorization_url(issuer: str, client: Client, challenge: str | None, state: str, scope: str, **extra: str) -> str:
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        **({"code_challenge": challenge, "code_challenge_method": "S256"} if challenge else {}),
        **extra,
    }
    endpoint = _discovery(issuer)["authorization_endpoint"]
    return f"{endpoint}?{urlencode(query)}"


def sign_in(
    issuer: str,
    username: str,
    password: str,
    *,
    client: Client = Client(),
    scope: str = "openid profile email",
    **extra: str,
) -> Tokens:
    """The authorization code flow with PKCE, through the provider's login page."""
    return _flow(issuer, client, scope, "login", {"login": username, "password": password}, extra)


def register(
    issuer: str,
    tenant: str,
    *,
    email: str,
    name: str,
    password: str,
    client: Client = Client(),
    scope: str = "openid profile email",
    **extra: str,
) -> Tokens:
    """Self-registration (``prompt=create``) for the municipality ``tenant``, signed in at once."""
    form = {"email": email, "name": name, "password": password}
    return _flow(issuer, client, scope, "register", form, {"prompt": "create", "lotse_tenant": tenant, **extra})


def client_credentials(issuer: str, client_id: str, client_secret: str) -> Tokens:
    """A partner system's access token (client credentials, RFC 6749 section 4.4)."""
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        response = http.post(
            _discovery(issuer)["token_endpoint"],
            data={"grant_type": "client_credentials", "resource": RESOURCE},
            auth=(client_id, client_secret),
        )
    return _tokens(response)


def refresh(issuer: str, refresh_token: str, *, client: Client = Client()) -> Tokens:
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        response = http.post(
            _discovery(issuer)["token_endpoint"],
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **_public(client)},
            auth=_basic(client),
        )
    return _tokens(response)


def _flow(issuer: str, client: Client, scope: str, action: str, form: dict[str, str], extra: dict[str, str]) -> Tokens:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as http:
        page = _follow(http, authorization_url(issuer, client, challenge, state, scope, **extra), client)
        if isinstance(page, str):
            raise IdpError("the provider signed in without asking (a session of this client already?)")
        target = _FORM_ACTION.search(page.text) if page.status_code == 200 else None
        if target is None or not target.group(1).endswith(f"/{action}"):
            raise IdpError(f"the provider answered {page.status_code} instead of its {action} page: {page.text[:300]}")
        # Where the page's form posts to, as a browser would.
        submitted = http.post(urljoin(str(page.url), html.unescape(target.group(1))), data=form)
        if submitted.status_code >= 400:
            raise SignInRefused(submitted.status_code, _page_errors(submitted.text))
        callback = _follow(http, submitted, client)
        if not isinstance(callback, str):
            raise IdpError(f"the provider did not return to the client ({callback.status_code}): {callback.text[:300]}")
        answer = parse_qs(urlparse(callback).query)
        if "error" in answer:
            raise IdpError(f"the provider refused: {answer['error'][0]}: {answer.get('error_description', [''])[0]}")
        if answer.get("state") != [state]:
            raise IdpError("the provider returned another state")
        response = http.post(
            _discovery(issuer)["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
                **_public(client),
            },
            auth=_basic(client),
        )
    return _tokens(response)


def _follow(http: httpx.Client, start: str | httpx.Response, client: Client) -> httpx.Response | str:
    """Follow redirects until a page, or until the redirect to the client (returned as its URL:
    nothing listens there)."""
    response = http.get(start) if isinstance(start, str) else start
    for _ in range(_REDIRECT_LIMIT):
        if response.status_code not in (302, 303):
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(client.redirect_uri):
            return location
        response = http.get(location)
    raise IdpError("the provider redirected too often")


def _page_errors(page: str) -> dict[str, str]:
    return {name: html.unescape(text.strip()) for name, text in _ERROR_TEXT.findall(page)}


def _public(client: Client) -> dict[str, str]:
    return {} if client.secret else {"client_id": client.client_id}


def _basic(client: Client) -> httpx.Auth:
    # A confidential client authenticates with HTTP Basic; a public one names itself in the body.
    return httpx.BasicAuth(client.client_id, client.secret) if client.secret else _NO_AUTH


class _NoAuth(httpx.Auth):
    pass


_NO_AUTH = _NoAuth()


def _tokens(response: httpx.Response) -> Tokens:
    if response.status_code != 200:
        raise IdpError(f"the token endpoint answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    return Tokens(body["access_token"], body.get("id_token"), body.get("refresh_token"), int(body["expires_in"]))


_discovered: dict[str, dict[str, Any]] = {}


def _discovery(issuer: str) -> dict[str, Any]:
    if issuer not in _discovered:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        _discovered[issuer] = response.json()
    return _discovered[issuer]
