"""Operations on a running platform: topics and dead letters."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaError

from lotse_cli import kafka_ops
from lotse_cli.deploy_commands import CONSUMER_GROUPS
from lotse_contracts import topics_for_tenants
from lotse_contracts.events.values import TENANT_PATTERN
from lotse_runtime.topics import TopicMismatch, ensure_topics

T = TypeVar("T")

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# typer reads the environment variable itself, so `--help` names it and shows the default.
BootstrapOption = typer.Option(
    DEFAULT_BOOTSTRAP, "--bootstrap", envvar="LOTSE_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers"
)
RegistryOption = typer.Option(
    "http://127.0.0.1:8001", "--registry", envvar="LOTSE_REGISTRY_URL", help="Registry base URL"
)
MatchingOption = typer.Option(
    "http://127.0.0.1:8002", "--matching", envvar="LOTSE_MATCHING_URL", help="Matching base URL"
)
NotificationsOption = typer.Option(
    "http://127.0.0.1:8003", "--notifications", envvar="LOTSE_NOTIFICATIONS_URL", help="Notifications base URL"
)

# The services' consumer groups start with these (their default group names, as deployed).
CONSUMER_GROUP_PREFIXES = sorted({group for groups in CONSUMER_GROUPS.values() for group in groups.values()})

topics_app = typer.Typer(no_args_is_help=True)
dlq_app = typer.Typer(no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def on_broker(command: str, bootstrap: str, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` against the broker; a broker that is away ends the command with one line, not a traceback."""
    try:
        return asyncio.run(work)
    except (KafkaError, OSError) as error:
        _fail(f"{command}: broker {bootstrap} not reachable: {error}")


@topics_app.command("sync")
def topics_sync(
    bootstrap: str = BootstrapOption,
    tenant: list[str] = typer.Option([], help="Also create this tenant's topics (repeatable)"),
) -> None:
    """Create or verify every catalogue topic, including each onboarded tenant's partner topics."""
    for slug in tenant:
        if not re.fullmatch(TENANT_PATTERN, slug):
            _fail(f"topics sync: {slug!r} is not a tenant slug (lowercase letters, digits, '-'; 2-40 chars)")

    async def sync() -> tuple[list[str], int]:
        tenants = sorted(set(await kafka_ops.onboarded_tenants(bootstrap)) | set(tenant))
        catalogue = topics_for_tenants(tenants)
        return await ensure_topics(bootstrap, catalogue, kafka_ops.login()), len(catalogue)

    try:
        created, total = asyncio.run(sync())
    except TopicMismatch as error:
        _fail(f"topics sync: {error}")
    except (KafkaError, OSError) as error:
        _fail(f"topics sync: broker {bootstrap} not reachable: {error}")
    except Exception as error:  # noqa: BLE001 - the broker could not be reached
        _fail(f"topics sync: broker {bootstrap} not usable: {type(error).__name__}: {error}")
    for name in created:
        typer.echo(f"created  {name}")
    typer.echo(f"{total} catalogue topics present ({len(created)} created, {total - len(created)} verified)")


def _dead_letter_topics(topics: list[str]) -> list[str]:
    return [name for name in topics if name.endswith(".dlq")]


@dlq_app.command("list")
def dlq_list(bootstrap: str = BootstrapOption) -> None:
    """Dead-letter topics with how many records each holds, by reason."""

    async def collect() -> list[tuple[str, Counter[str]]]:
        rows = []
        for name in _dead_letter_topics(await kafka_ops.list_topics(bootstrap)):
            letters = await kafka_ops.read_dead_letters(bootstrap, name)
            rows.append((name, Counter(letter.info.reason.value if letter.info else "unknown" for letter in letters)))
        return rows

    rows = on_broker("dlq list", bootstrap, collect())
    if not rows:
        typer.echo("no dead-letter topics")
    for name, reasons in rows:
        summary = ", ".join(f"{reason}: {count}" for reason, count in reasons.most_common()) or "empty"
        typer.echo(f"{name:<55} {sum(reasons.values()):>6}  {summary}")


@dlq_app.command("show")
def dlq_show(
    topic: str = typer.Argument(..., help="A dead-letter topic, e.g. lotse.partner.musterstadt.inbound.v1.dlq"),
    bootstrap: str = BootstrapOption,
    limit: int = typer.Option(20, min=1, help="Show at most this many records"),
) -> None:
    """The records of one dead-letter topic: why each failed, where it came from, its start."""
    if not topic.endswith(".dlq"):
        _fail(f"dlq show: {topic!r} is not a dead-letter topic (its name ends with .dlq)")
    letters = on_broker("dlq show", bootstrap, kafka_ops.read_dead_letters(bootstrap, topic))
    for letter in letters[:limit]:
        typer.echo(f"--- {letter.topic}[{letter.partition}]@{letter.offset}  key={letter.key!r}")
        if letter.info:
            info = letter.info
            typer.echo(f"reason:  {info.reason.value}  ({info.consumer}, {info.failed_at.isoformat()})")
            typer.echo(f"from:    {info.source_topic}[{info.source_partition}]@{info.source_offset}")
            typer.echo(f"error:   {info.error}")
            if info.redacted:
                typer.echo("value redacted: the data's field names only, not replayable")
        typer.echo(f"value:   {letter.value[:300]!r}{' ...' if len(letter.value) > 300 else ''}")
    typer.echo(f"{len(letters)} record(s) in {topic}")


@dlq_app.command("replay")
def dlq_replay(
    topic: str = typer.Argument(..., help="The dead-letter topic to replay from"),
    bootstrap: str = BootstrapOption,
    offset: list[int] = typer.Option([], help="Replay only these offsets (repeatable); default: all"),
    reason: str | None = typer.Option(None, help="Replay only records dead-lettered for this reason"),
) -> None:
    """Send dead letters back to their source topic after a fix. Consumers are idempotent, so a
    record that is replayed twice changes nothing the second time."""
    if not topic.endswith(".dlq"):
        _fail(f"dlq replay: {topic!r} is not a dead-letter topic (its name ends with .dlq)")

    async def run() -> int:
        if topic not in await kafka_ops.list_topics(bootstrap):
            _fail(f"dlq replay: no topic {topic}")
        letters = await kafka_ops.read_dead_letters(bootstrap, topic)
        chosen = [
            letter
            for letter in letters
            if (not offset or letter.offset in offset)
            and (reason is None or (letter.info is not None and letter.info.reason.value == reason))
        ]
        return await kafka_ops.replay(bootstrap, chosen)

    sent = on_broker("dlq replay", bootstrap, run())
    typer.echo(f"replayed {sent} record(s) from {topic} to their source topics")


def _readiness(url: str) -> str:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=3) as response:
            return "ready" if response.status == 200 else f"not ready ({response.status})"
    except urllib.error.HTTPError as error:
        return f"not ready ({error.code})"
    except (urllib.error.URLError, OSError) as error:
        return f"unreachable ({getattr(error, 'reason', error)})"


def health(
    bootstrap: str = BootstrapOption,
    registry: str = RegistryOption,
    matching: str = MatchingOption,
    notifications: str = NotificationsOption,
) -> None:
    """Each service's readiness and each consumer group's lag; exit 1 if a service is not ready."""
    services = {"registry": registry, "matching": matching, "notifications": notifications}
    states = {name: _readiness(url) for name, url in services.items()}
    for name, state in states.items():
        typer.echo(f"{name:<14} {state:<40} {services[name]}")
    try:
        lags = asyncio.run(kafka_ops.consumer_group_lag(bootstrap, CONSUMER_GROUP_PREFIXES))
    except Exception as error:  # noqa: BLE001 - the broker could not be reached
        _fail(f"kafka          unreachable at {bootstrap}: {error}")
    typer.echo(f"{'consumer group':<40} {'topic':<45} lag")
    for row in lags:
        typer.echo(f"{row.group:<40} {row.topic:<45} {row.lag}")
    if any(state != "ready" for state in states.values()):
        raise typer.Exit(1)
