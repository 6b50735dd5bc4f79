"""Onboard a municipality and manage its partner credentials: `lotse tenant onboard`,
`lotse partner rotate`.

Onboarding touches three places: the registry (the tenant itself), the broker (the tenant's
partner inbound topic and its dead letters) and the deployment (a Strimzi KafkaUser for the
tenant's partner systems in deploy/k8s, since the embedded broker cannot authenticate). Every
input and every peer is checked before anything is created, and what was created is removed
again when a later step fails, so that a tenant is never half-created.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from lotse_cli import deploy_commands, kafka_ops
from lotse_cli.ops_commands import BootstrapOption, RegistryOption, on_broker
from lotse_cli.postcodes import PostcodeFileError, PostcodeRow, read_postcodes
from lotse_contracts import TenantOnboarded, dead_letter_topic, partner_inbound_topic
from lotse_contracts.events.values import TENANT_PATTERN
from lotse_contracts.topics import PARTNER_INBOUND
from lotse_runtime.topics import ensure_topics

tenant_app = typer.Typer(no_args_is_help=True)
partner_app = typer.Typer(no_args_is_help=True)

TokenOption = typer.Option(
    None,
    "--token",
    envvar="LOTSE_ADMIN_TOKEN",
    help=("A platform-admin bearer token of the identity provider (locally: `lotse token --user <name>`)"),
)
K8sOption = typer.Option(
    Path("deploy/k8s"), "--k8s-dir", help="Kubernetes folder whose tenants.yaml and generated users are updated"
)


# Outside git (see .gitignore): passwords are handed over, never committed.
SECRETS_DIR = Path(".lotse/secrets")


class OnboardingError(RuntimeError):
    """One line saying why onboarding stopped."""


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def _admin_token(token: str | None) -> str:
    """The given token: Lotse signs none itself, in no mode; tokens come from the provider."""
    if token:
        return token
    raise OnboardingError(
        "no --token given: pass a platform-admin token of your identity provider (--token or $LOTSE_ADMIN_TOKEN)"
        "; on a local installation: lotse token --user <a platform admin of .lotse/idp/accounts.json>"
    )


def _request(method: str, url: str, token: str, body: dict[str, Any] | None = None, **headers: str) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        try:
            problem = json.loads(error.read() or b"null")
        except json.JSONDecodeError:
            problem = None
        return error.code, problem
    except (urllib.error.URLError, OSError) as error:
        raise OnboardingError(f"registry at {url} unreachable: {getattr(error, 'reason', error)}") from error


def _problem_text(problem: Any) -> str:
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)
    return str(problem)


def tenant_exists(registry: str, tenant: str, token: str) -> bool:
    status, problem = _request("GET", f"{registry}/tenants/{tenant}", token)
    if status == 200:
        return True
    if status == 404:
        return False
    raise OnboardingError(f"registry answered {status} for tenant {tenant}: {_problem_text(problem)}")


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-cli", **kafka_ops.login())
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


def _password_secret(tenant: str) -> str:
    """A new random SCRAM password for the tenant's partner user, as the Secret its KafkaUser reads."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": deploy_commands.partner_password_secret(tenant),
            "labels": {"app.kubernetes.io/part-of": "lotse", "app.kubernetes.io/component": "partner"},
        },
        "type": "Opaque",
        "stringData": {"password": secrets.token_urlsafe(32)},
    }
    return yaml.safe_dump(secret, sort_keys=False)


def _write_secret(tenant: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(_password_secret(tenant), encoding="utf-8")


def default_secret_path(tenant: str) -> Path:
    return SECRETS_DIR / f"{deploy_commands.partner_password_secret(tenant)}.yaml"


def _add_to_tenant_file(k8s_dir: Path, tenant: str) -> None:
    path = k8s_dir / deploy_commands.TENANTS_FILE
    if tenant in deploy_commands.load_tenants(path):
        return
    text = path.read_text(encoding="utf-8")
    path.write_text(text + ("" if text.endswith("\n") else "\n") + f"  - {tenant}\n", encoding="utf-8")


@tenant_app.command("onboard")
def onboard(
    slug: str = typer.Argument(..., help="Tenant slug, e.g. musterstadt (lowercase letters, digits, '-')"),
    name: str = typer.Option(..., help="Display name, e.g. 'Stadt Musterstadt'"),
    municipality_key: str = typer.Option(..., help="Amtlicher Gemeindeschlüssel (8 digits)"),
    coordination_email: str = typer.Option(..., help="Functional mailbox of the coordination office"),
    language: list[str] = typer.Option(["de", "en"], help="Supported languages, the first is the default"),
    timezone: str = typer.Option("Europe/Berlin", help="IANA time zone of the municipality"),
    radius_km: int = typer.Option(10, help="Default search radius of matching, in km"),
    registry: str = RegistryOption,
    bootstrap: str = BootstrapOption,
    token: str | None = TokenOption,
    k8s_dir: Path = K8sOption,
    manifests: bool = typer.Option(True, help="Add the tenant's partner KafkaUser to the Kubernetes manifests"),
    secret_out: Path | None = typer.Option(
        None, help="Where to write the partner password Secret (default: .lotse/secrets/, mode 600, not in git)"
    ),
) -> None:
    """Onboard a municipality: the tenant in the registry, its partner topics, its partner user."""
    if not re.fullmatch(TENANT_PATTERN, slug):
        _fail(f"tenant onboard: {slug!r} is not a tenant slug (lowercase letters, digits, '-'; 2-40 chars)")
    try:
        settings = TenantOnboarded(
            name=name,
            municipality_key=municipality_key,
            default_language=language[0],
            supported_languages=language,
            timezone=timezone,
            coordination_email=coordination_email,
        )
    except ValidationError as error:
        first = error.errors()[0]
        _fail(f"tenant onboard: {'.'.join(map(str, first['loc']))}: {first['msg']}")
    if manifests and not (k8s_dir / deploy_commands.TENANTS_FILE).is_file():
        _fail(f"tenant onboard: {k8s_dir / deploy_commands.TENANTS_FILE} not found (pass --k8s-dir or --no-manifests)")
    try:
        _onboard(
            slug,
            settings,
            radius_km,
            registry,
            bootstrap,
            _admin_token(token),
            k8s_dir if manifests else None,
        )
        if manifests:
            path = secret_out or default_secret_path(slug)
            _write_secret(slug, path)
            typer.echo(f"secret    {path} (mode 600): apply it with the manifests, hand the password to the partner")
    except OnboardingError as error:
        _fail(f"tenant onboard: {error}")


def _onboard(
    slug: str, settings: TenantOnboarded, radius_km: int, registry: str, bootstrap: str, token: str, k8s: Path | None
) -> None:
    if tenant_exists(registry, slug, token):
        raise OnboardingError(f"tenant {slug} is already onboarded")
    topics = [PARTNER_INBOUND.for_tenant(slug)]
    topics.append(topics[0].model_copy(update={"name": dead_letter_topic(topics[0].name)}))
    try:
        created = asyncio.run(ensure_topics(bootstrap, topics, kafka_ops.login()))
    except (KafkaError, OSError) as error:
        raise OnboardingError(f"broker {bootstrap} not reachable: {error}") from error
    except Exception as error:
        raise OnboardingError(f"broker {bootstrap} not usable: {type(error).__name__}: {error}") from error
    body = {"slug": slug, "default_search_radius_km": radius_km, **settings.model_dump(mode="json")}
    status, answer = _request("POST", f"{registry}/tenants", token, body, Idempotency_Key=f"onboard-{slug}")
    if status not in (200, 201):
        if created:
            asyncio.run(_delete_topics(bootstrap, created))
        raise OnboardingError(f"registry refused tenant {slug} ({status}): {_problem_text(answer)}")
    typer.echo(f"tenant    {slug} onboarded in the registry")
    for topic in topics:
        typer.echo(f"topic     {topic.name} {'created' if topic.name in created else 'present'}")
    if k8s is not None:
        _add_to_tenant_file(k8s, slug)
        for path in deploy_commands.write(k8s):
            typer.echo(f"manifest  {path}")
        typer.echo(
            f"partner   KafkaUser {deploy_commands.partner_user_name(slug)} (SCRAM-SHA-512) added; "
            "commit and apply the manifests"
        )


@partner_app.command("rotate")
def rotate(
    tenant: str = typer.Argument(..., help="The tenant whose partner credentials are replaced"),
    registry: str = RegistryOption,
    bootstrap: str = BootstrapOption,
    token: str | None = TokenOption,
    output: Path | None = typer.Option(
        None, help="Where to write the Secret with the new password (default: .lotse/secrets/, mode 600)"
    ),
) -> None:
    """Replace a tenant's partner password: a new random SCRAM password as a Kubernetes Secret that
    the tenant's KafkaUser reads (`spec.authentication.password.valueFrom`). Apply it, then hand the
    password to the municipality's partner systems; the old one stops working."""
    if not re.fullmatch(TENANT_PATTERN, tenant):
        _fail(f"partner rotate: {tenant!r} is not a tenant slug")
    try:
        known = tenant_exists(registry, tenant, _admin_token(token))
    except OnboardingError as error:
        _fail(f"partner rotate: {error}")
    if not known:
        _fail(f"partner rotate: unknown tenant {tenant}")
    if partner_inbound_topic(tenant) not in on_broker("partner rotate", bootstrap, kafka_ops.list_topics(bootstrap)):
        _fail(f"partner rotate: tenant {tenant} has no partner topic on {bootstrap}; run `lotse topics sync`")
    path = output or default_secret_path(tenant)
    _write_secret(tenant, path)
    typer.echo(f"wrote {path} (mode 600): apply it, then hand the new password to {tenant}'s partner systems")


@tenant_app.command("postcodes")
def postcodes(
    tenant: str = typer.Argument(..., help="The tenant whose postcode table is replaced"),
    file: Path = typer.Argument(..., help="CSV with the columns postcode,lat,lon,district (',' or ';')"),
    registry: str = RegistryOption,
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="LOTSE_ADMIN_TOKEN",
        help="A bearer token of a coordinator of the tenant or a platform admin",
    ),
) -> None:
    """Load a municipality's postcode table: each postcode's centroid and district, so that a
    volunteer who gives only a postcode gets a place. Replaces the table; every row is checked
    first, and nothing is loaded if any row is bad."""
    if not re.fullmatch(TENANT_PATTERN, tenant):
        _fail(f"tenant postcodes: {tenant!r} is not a tenant slug")
    try:
        rows = read_postcodes(file)
    except PostcodeFileError as error:
        _fail("\n".join(f"tenant postcodes: {file}: {problem}" for problem in error.problems) + "\nnothing loaded")
    if not token:
        _fail(
            "tenant postcodes: no --token given: pass a token of a coordinator or platform admin ($LOTSE_ADMIN_TOKEN)"
        )
    body = {"postcodes": [row.as_json() for row in rows]}
    try:
        status, answer = _request("PUT", f"{registry}/tenants/{tenant}/postcodes", token, body)
    except OnboardingError as error:
        _fail(f"tenant postcodes: {error}")
    if status != 200:
        _fail(f"tenant postcodes: registry refused the table ({status}): {_refusal(answer, rows)}; nothing loaded")
    typer.echo(f"postcodes {answer['postcodes']} loaded for {tenant}")


def _refusal(problem: Any, rows: list[PostcodeRow]) -> str:
    """The registry's problem, its ``postcodes[i]`` fields named by the file's line numbers."""
    if not isinstance(problem, dict) or not problem.get("errors"):
        return _problem_text(problem)
    named = []
    for error in problem["errors"]:
        field = str(error.get("field", ""))
        match = re.match(r"postcodes\[(\d+)\]\.?(.*)", field)
        if match and int(match.group(1)) < len(rows):
            field = f"line {rows[int(match.group(1))].line}: {match.group(2) or 'row'}"
        named.append(f"{field}: {error.get('message', '')}")
    return "; ".join(named)
