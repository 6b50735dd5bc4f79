"""`lotse tenant onboard` and `lotse partner rotate` against a real registry process, broker and
database: a tenant is created whole or not at all."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lotse_cli.main import app
from lotse_contracts import dead_letter_topic, partner_inbound_topic
from lotse_devstack import Stack
from lotse_devstack.processes import ManagedProcess, free_port
from lotse_runtime.auth import Role
from tests.support import tokens

REPO = Path(__file__).resolve().parents[2]
# Every command runs with a platform admin's token of the provider, unless a test takes it away.
ADMIN_TOKEN = tokens.issue("lotse-cli", [Role.PLATFORM_ADMIN], lifetime=timedelta(hours=6))
runner = CliRunner(env={"LOTSE_ADMIN_TOKEN": ADMIN_TOKEN})


@pytest.fixture(scope="module")
def registry(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    environment = {
        **os.environ,
        "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LOTSE_MONGO_URL": stack.mongo_url,
        "LOTSE_HTTP_PORT": str(port),
        "LOTSE_DATABASE": f"registry_{uuid.uuid4().hex[:8]}",
    }
    process = ManagedProcess(
        "registry", [sys.executable, "-m", "lotse_registry"], tmp_path_factory.mktemp("logs") / "r.log", env=environment
    )
    process.start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        process.wait_until(ready, 60)
        yield url
    finally:
        process.stop()


@pytest.fixture
def k8s_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(REPO / "deploy" / "k8s", copy)
    return copy


def lotse(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def onboard_args(stack: Stack, registry: str, k8s_dir: Path, slug: str, *extra: str) -> list[str]:
    return [
        "tenant", "onboard", slug, "--name", "Stadt Teststadt", "--municipality-key", "05999123",
        "--coordination-email", "ehrenamt@teststadt.example", "--language", "de", "--language", "ar",
        "--registry", registry, "--bootstrap", stack.kafka_bootstrap, "--k8s-dir", str(k8s_dir),
        "--secret-out", str(k8s_dir / "secret.yaml"), *extra,
    ]  # fmt: skip


def onboard(
    stack: Stack, registry: str, k8s_dir: Path, slug: str, *extra: str, env: dict[str, str | None] | None = None
) -> tuple[int, str]:
    return lotse(*onboard_args(stack, registry, k8s_dir, slug, *extra), env=env)


def topics(stack: Stack) -> list[str]:
    from lotse_cli.kafka_ops import list_topics

    return asyncio.run(list_topics(stack.kafka_bootstrap))


def admin_get(registry: str, path: str) -> int:
    token = tokens.issue("t", [Role.PLATFORM_ADMIN])
    request = urllib.request.Request(f"{registry}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_onboarding_creates_the_tenant_its_topics_and_its_partner_user(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str
) -> None:
    slug = f"t-{unique_name}"
    code, output = onboard(stack, registry, k8s_dir, slug)

    assert code == 0, output
    assert admin_get(registry, f"/tenants/{slug}") == 200
    assert {partner_inbound_topic(slug), dead_letter_topic(partner_inbound_topic(slug))} <= set(topics(stack))
    assert slug in yaml.safe_load((k8s_dir / "tenants.yaml").read_text())["tenants"]
    users = list(yaml.safe_load_all((k8s_dir / "base/generated/kafka-users.yaml").read_text()))
    partner = next(u for u in users if u["metadata"]["name"] == f"lotse-partner-{slug}")
    written = [
        acl["resource"]["name"] for acl in partner["spec"]["authorization"]["acls"] if "Write" in acl["operations"]
    ]
    assert written == [partner_inbound_topic(slug)]
    secret = k8s_dir / "secret.yaml"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert yaml.safe_load(secret.read_text())["metadata"]["name"] == f"lotse-partner-{slug}-password"

    code, output = onboard(stack, registry, k8s_dir, slug)
    assert code == 1 and f"tenant {slug} is already onboarded" in output


def test_the_privacy_report_names_the_municipality_as_the_registry_has_it(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str, tmp_path: Path
) -> None:
    slug = f"t-{unique_name}"
    assert onboard(stack, registry, k8s_dir, slug)[0] == 0

    code, output = lotse("privacy", "report", "--tenant", slug, "--registry", registry, "--out", str(tmp_path))

    assert code == 0, output
    controller = json.loads((tmp_path / f"record-of-processing-{slug}.json").read_text())["controller"]
    assert controller["name"] == "Stadt Teststadt" and controller["contact_email"] == "ehrenamt@teststadt.example"
    assert controller["from_registry"] is True


def test_a_refused_onboarding_leaves_no_topic_and_no_manifest_behind(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str
) -> None:
    slug = f"t-{unique_name}"
    coordinator = tokens.issue("c", [Role.COORDINATOR], tenant=slug)
    before = (k8s_dir / "tenants.yaml").read_text()

    code, output = onboard(stack, registry, k8s_dir, slug, "--token", coordinator)

    assert code == 1, output
    assert output.startswith("tenant onboard:") and len(output.strip().splitlines()) == 1
    assert partner_inbound_topic(slug) not in topics(stack)
    assert (k8s_dir / "tenants.yaml").read_text() == before
    assert not (k8s_dir / "secret.yaml").exists()


def test_onboarding_needs_a_token_in_every_mode_and_creates_nothing_without(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str
) -> None:
    slug = f"t-{unique_name}"
    before = (k8s_dir / "tenants.yaml").read_text()
    # Development (tests/conftest.py) as well: the CLI signs no token of its own.
    code, output = onboard(stack, registry, k8s_dir, slug, env={"LOTSE_ADMIN_TOKEN": None})

    assert code == 1, output
    (line,) = output.strip().splitlines()
    assert line.startswith("tenant onboard: no --token given: pass a platform-admin token of your identity provider")
    assert "lotse token --user" in line
    assert admin_get(registry, f"/tenants/{slug}") == 404
    assert partner_inbound_topic(slug) not in topics(stack)
    assert (k8s_dir / "tenants.yaml").read_text() == before


@pytest.mark.parametrize(
    ("slug", "extra", "reason"),
    [
        ("Bad Slug", (), "'Bad Slug' is not a tenant slug"),
        ("good-slug", ("--municipality-key", "12"), "municipality_key"),
    ],
)
def test_malformed_input_is_refused_in_one_line(
    stack: Stack, registry: str, k8s_dir: Path, slug: str, extra: tuple[str, ...], reason: str
) -> None:
    code, output = onboard(stack, registry, k8s_dir, slug, *extra)
    assert code == 1
    assert reason in output and len(output.strip().splitlines()) == 1
    assert partner_inbound_topic("good-slug") not in topics(stack)


def test_an_unreachable_registry_creates_nothing(stack: Stack, k8s_dir: Path, unique_name: str) -> None:
    slug = f"t-{unique_name}"
    code, output = onboard(stack, "http://127.0.0.1:9", k8s_dir, slug)
    assert code == 1 and "unreachable" in output
    assert partner_inbound_topic(slug) not in topics(stack)


def test_partner_rotate_replaces_the_password_of_known_tenants_only(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str
) -> None:
    slug = f"t-{unique_name}"
    assert onboard(stack, registry, k8s_dir, slug)[0] == 0
    first = yaml.safe_load((k8s_dir / "secret.yaml").read_text())["stringData"]["password"]
    rotated = k8s_dir / "rotated.yaml"

    common = ("--registry", registry, "--bootstrap", stack.kafka_bootstrap, "--output", str(rotated))
    code, output = lotse("partner", "rotate", slug, *common)

    assert code == 0, output
    second = yaml.safe_load(rotated.read_text())["stringData"]["password"]
    assert second != first and len(second) >= 32
    code, output = lotse("partner", "rotate", f"unknown-{unique_name}", *common)
    assert code == 1 and "unknown tenant" in output


def test_a_broker_that_is_away_stops_onboarding_and_rotation_in_one_line(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str
) -> None:
    slug, nowhere = f"t-{unique_name}", f"127.0.0.1:{free_port()}"
    token = tokens.issue("t", [Role.PLATFORM_ADMIN])

    result = runner.invoke(
        app, [*onboard_args(stack, registry, k8s_dir, slug), "--token", token, "--bootstrap", nowhere]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"tenant onboard: broker {nowhere} not reachable: KafkaConnectionError: Unable")
    assert admin_get(registry, f"/tenants/{slug}") == 404

    assert onboard(stack, registry, k8s_dir, slug)[0] == 0
    rotated = k8s_dir / "rotated.yaml"
    args = ["partner", "rotate", slug, "--registry", registry, "--token", token, "--output", str(rotated)]
    result = runner.invoke(app, [*args, "--bootstrap", nowhere])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"partner rotate: broker {nowhere} not reachable")
    assert not rotated.exists()


def public_facts(registry: str, slug: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{registry}/public/tenants/{slug}", timeout=5) as response:
        facts: dict[str, object] = json.loads(response.read())
        return facts


def test_a_postcode_table_is_loaded_from_a_csv_file_whole_or_not_at_all(
    stack: Stack, registry: str, k8s_dir: Path, unique_name: str, tmp_path: Path
) -> None:
    slug = f"t-{unique_name}"
    assert onboard(stack, registry, k8s_dir, slug)[0] == 0
    coordinator = tokens.issue("c", [Role.COORDINATOR], tenant=slug)
    bad = tmp_path / "bad.csv"
    bad.write_text("postcode,lat,lon,district\n48143,51.96,7.63,Mitte\n48147,north,7.62,Kreuzviertel\n")

    code, output = lotse("tenant", "postcodes", slug, str(bad), "--registry", registry, "--token", coordinator)

    assert code == 1
    assert f"tenant postcodes: {bad}: line 3: lat: 'north' is not a number" in output and "nothing loaded" in output
    assert public_facts(registry, slug)["map_offered"] is False
    good = tmp_path / "good.csv"
    good.write_text("postcode,lat,lon,district\n48143,51.96,7.63,Mitte\n48147,51.97,7.62,Kreuzviertel\n")
    code, output = lotse("tenant", "postcodes", slug, str(good), "--registry", registry, "--token", coordinator)
    assert code == 0, output
    assert output.strip() == f"postcodes 2 loaded for {slug}"
    assert public_facts(registry, slug)["map_offered"] is True
