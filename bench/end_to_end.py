"""Partner needs through registry, matching and notifications until the proposal emails are in the
SMTP sink, against two baselines on the same servers in the same run (bench/pipes.py): the bare
three-hop pipe (the limit) and the same pipe with Lotse's durability (inbox, effect and outbox in
one transaction per message, plus a relay).

Each run starts a fresh platform as `lotse up` runs it (separate processes; fresh, so no run
inherits another's backlog, caches or data), sets up one demo municipality (150 volunteers, their
certificates checked, so that every demo need has someone who fits), waits until the setup has
drained (no outbox backlog, no consumer lag, nothing processed or mailed for a while), then:

1. the baselines, each a burst of as many messages as there are needs: their capacity;
2. idle latency: one need at a time, the next once the platform is quiet again;
3. steady load: the needs published at a constant rate (an open-loop stream, not a burst) of
   ``load_share`` x the bare pipe's rate, the throughput the target asks Lotse to sustain, with
   headroom so that a platform that keeps up measures above the target. A platform that keeps up
   shows its latency at that load; one that cannot falls behind, and its throughput is then its
   capacity (and its latency the backlog's).

Latency is from a need's publish (wall clock, taken before the send) to its first proposal email's
arrival, timestamped by the SMTP sink when it accepted the mail (``received_at``). Throughput is
needs / (first publish -> last first email). MongoDB round trips and transactions per need come
from each service's ``lotse_mongo_commands_total`` before and after the steady phase.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bench.pipes import PipeResult, run_pipe
from lotse_cli.demo import ACCEPT_LINK, Demo, TenantReport
from lotse_cli.demo_data import DEMO_TENANTS, demo_needs
from lotse_cli.demo_logins import DemoLogins
from lotse_cli.supervisor import Platform, Ports, running_platform
from lotse_contracts import ReportNeed, new_event, partner_inbound_topic, to_bytes
from lotse_devstack.processes import free_port

NEEDS = 1_000
RUNS = 3
IDLE_NEEDS = 20
# Offered load as a share of the bare pipe's rate: the target is 0.5; 0.6 leaves room so that a
# platform that keeps up is not measured a hair below the target by the stream's last latency.
LOAD_SHARE = 0.6
SERVICES = ("registry", "matching", "notifications")
MARK = re.compile(r"\[bench-([0-9a-f]+)-(\d+)\]")
# A need without a first email after this long with no new one at all counts as unmailed.
NO_PROGRESS_SECONDS = 90.0
SETTLE_QUIET_SECONDS = 3.0
SETTLE_TIMEOUT_SECONDS = 600.0
# After the steady stream: how long to wait for the rest of its work before counting anyway.
STUCK_SECONDS = 120.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Target:
    name: str
    limit: float
    at_most: bool  # True: the figure must be <= limit; False: >= limit
    unit: str

    def met(self, figure: float) -> bool:
        return figure <= self.limit if self.at_most else figure >= self.limit

    def describe(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.limit:g}{self.unit}"


TARGETS = {
    "throughput_ratio_bare": Target("throughput / bare pipe", 0.5, at_most=False, unit="x"),
    "p50": Target("p50 at steady load", 1.0, at_most=True, unit=" s"),
    "p99": Target("p99 at steady load", 2.5, at_most=True, unit=" s"),
    "idle_p50": Target("idle p50", 0.5, at_most=True, unit=" s"),
    "round_trips_per_need": Target("MongoDB round trips per need", 20, at_most=True, unit=""),
}


@dataclass(frozen=True)
class ServiceCommands:
    round_trips: float
    transactions: float
    by_command: dict[str, float]


@dataclass
class RunFigures:
    bare: PipeResult
    durable: PipeResult
    offered_rate: float
    needs: int
    mailed: int
    throughput: float
    latencies: list[float]
    idle_latencies: list[float]
    commands: dict[str, ServiceCommands] = field(default_factory=dict)
    # False when the platform was still busy (lag, backlog) after the stream: its round trips
    # then cover only part of the needs' work, and the needs without a mail were never done.
    settled: bool = True

    def figures(self) -> dict[str, float]:
        """The figures the summary takes the median of, by name."""
        found = {
            "bare_rate": self.bare.rate,
            "durable_rate": self.durable.rate,
            "throughput": self.throughput,
            "throughput_ratio_bare": self.throughput / self.bare.rate,
            "throughput_ratio_durable": self.throughput / self.durable.rate,
            "p50": percentile(self.latencies, 0.5),
            "p99": percentile(self.latencies, 0.99),
            "idle_p50": percentile(self.idle_latencies, 0.5),
            "idle_p99": percentile(self.idle_latencies, 0.99),
            "round_trips_per_need": sum(c.round_trips for c in self.commands.values()),
            "transactions_per_need": sum(c.transactions for c in self.commands.values()),
        }
        for service, counted in self.commands.items():
            found[f"{service}_round_trips"] = counted.round_trips
            found[f"{service}_transactions"] = counted.transactions
        return found


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (p50 is the median); nan for no values."""
    if not values:
        return float("nan")
    if share == 0.5:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


# -- the platform's state, read from its services' /metrics and the SMTP sink -----------------------


def _scrape(http: httpx.Client, platform: Platform, service: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """The service's metrics, summed over its replicas."""
    samples: dict[tuple[str, tuple[str, ...]], float] = {}
    for url in platform.replica_urls(service):
        for family in text_string_to_metric_families(http.get(f"{url}/metrics").text):
            for sample in family.samples:
                key = (sample.name, tuple(f"{k}={v}" for k, v in sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def _total(samples: dict[tuple[str, tuple[str, ...]], float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


@dataclass(frozen=True)
class Activity:
    """What the platform has done so far; equal twice in a row with no backlog means quiet."""

    processed: float
    published: float
    mails: int
    backlog: float
    lag: float
    retries: float  # processing attempts repeated (an outage, or a transaction that keeps conflicting)


def _activity(http: httpx.Client, platform: Platform) -> Activity:
    processed = published = backlog = lag = retries = 0.0
    for service in SERVICES:
        samples = _scrape(http, platform, service)
        processed += _total(samples, "lotse_messages_processed_total")
        published += _total(samples, "lotse_outbox_published_total")
        backlog += _total(samples, "lotse_outbox_backlog_events")
        lag += _total(samples, "lotse_consumer_lag_messages")
        retries += _total(samples, "lotse_processing_retries_total")
    mails = len(http.get(f"{platform.mailbox_url}/messages").json())
    return Activity(processed, published, mails, backlog, lag, retries)


def wait_until_quiet(
    http: httpx.Client,
    platform: Platform,
    quiet_seconds: float = SETTLE_QUIET_SECONDS,
    timeout: float = SETTLE_TIMEOUT_SECONDS,
) -> Activity | None:
    """No outbox backlog, no consumer lag, and nothing processed, published or mailed for
    ``quiet_seconds``: the platform has drained what it was given. None when it has; else what
    it was still doing at the deadline."""
    deadline = time.monotonic() + timeout
    last, since = _activity(http, platform), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        now = _activity(http, platform)
        if now != last or now.backlog or now.lag:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return None
    return last


def _commands(http: httpx.Client, platform: Platform) -> dict[str, dict[str, float]]:
    counted: dict[str, dict[str, float]] = {}
    for service in SERVICES:
        samples = _scrape(http, platform, service)
        counted[service] = {
            labels[0].removeprefix("command="): value
            for (name, labels), value in samples.items()
            if name == "lotse_mongo_commands_total" and labels
        }
    return counted


def _per_need(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], needs: int
) -> dict[str, ServiceCommands]:
    result = {}
    for service in SERVICES:
        names = set(before[service]) | set(after[service])
        spent = {name: after[service].get(name, 0.0) - before[service].get(name, 0.0) for name in names}
        result[service] = ServiceCommands(
            round_trips=sum(spent.values()) / needs,
            transactions=spent.get("commitTransaction", 0.0) / needs,
            by_command={name: count / needs for name, count in spent.items() if count},
        )
    return result


class FirstMails:
    """Reads the sink's new messages and keeps, per marked need, its first proposal email's
    arrival as the sink stamped it."""

    def __init__(self, http: httpx.Client, platform: Platform, run: str) -> None:
        self.http, self.platform, self.run = http, platform, run
        self.arrivals: dict[int, float] = {}
        self.last_id = ""
        for message in http.get(f"{platform.mailbox_url}/messages").json():
            self.last_id = max(self.last_id, message["id"])

    def read(self) -> int:
        """New first emails since the last read."""
        new = 0
        url = f"{self.platform.mailbox_url}/messages"
        for message in self.http.get(url, params={"after": self.last_id, "detail": "1"}).json():
            self.last_id = max(self.last_id, message["id"])
            text = message.get("text") or ""
            match = MARK.search(text)
            if match is None or match.group(1) != self.run or not ACCEPT_LINK.search(text):
                continue  # not a proposal of this run (an escalation, a welcome, ...)
            number, received_at = int(match.group(2)), float(message["received_at"])
            if number not in self.arrivals:
                new += 1
            self.arrivals[number] = min(received_at, self.arrivals.get(number, received_at))
        return new


# -- one run -----------------------------------------------------------------------------------------


def _marked_needs(demo: Demo, report: TenantReport, run: str, count: int, seed: int) -> list[ReportNeed]:
    """The demo's needs, marked so that their mails can be told apart, and without a language or
    certificate requirement: few demo volunteers speak Ukrainian or Persian, and a need nobody
    fits gets no proposal email to time (skills, place and time still decide who fits)."""
    needs = demo_needs(report.tenant, count, report.organisation_ids, demo.today, seed=seed)
    return [
        ReportNeed.model_validate(
            {
                **need.model_dump(mode="json", exclude={"certificate_required"}),
                "languages": [],
                "external_ref": f"bench-{run}-{number:05d}",
                "description": f"{need.description} [bench-{run}-{number}]",
            }
        )
        for number, need in enumerate(needs)
    ]


async def _publish_paced(
    platform: Platform, tenant: str, needs: list[ReportNeed], rate: float | None
) -> dict[int, float]:
    """Publish ``needs`` at ``rate`` per second (all at once for None); the wall clock of each
    publish, by number."""
    producer = AIOKafkaProducer(bootstrap_servers=platform.stack.kafka_bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    published: dict[int, float] = {}
    try:
        started = time.monotonic()
        pending = []
        for number, need in enumerate(needs):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            event = new_event(
                data=need, tenant=tenant, subject=need.external_ref, version=1, source=f"/partners/{tenant}/bench"
            )
            published[number] = time.time()
            pending.append(await producer.send(partner_inbound_topic(tenant), to_bytes(event), key=event.key))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return published


def _wait_for_first_mails(mails: FirstMails, expected: Sequence[int], what: str) -> None:
    last_progress = time.monotonic()
    while not set(expected) <= mails.arrivals.keys():
        if mails.read():
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > NO_PROGRESS_SECONDS:
            missing = len(set(expected) - mails.arrivals.keys())
            print(f"  {what}: {missing} needs got no proposal email ({NO_PROGRESS_SECONDS:.0f}s without a new one)")
            return
        time.sleep(POLL_SECONDS)


def _one_run(
    needs: int, idle_needs: int, load_share: float, rate: float | None, say: Callable[[str], None], replicas: int = 1
) -> RunFigures:
    ports = Ports(*(free_port() for _ in range(10)))
    with tempfile.TemporaryDirectory() as state:
        # The demo signs in at the local OpenID provider with its accounts, made before it starts.
        DemoLogins(Path(state).resolve()).ensure()
        with running_platform(
            ports=ports, state_dir=Path(state), tenants=[DEMO_TENANTS[0].slug], echo=None, persistent=False
        ) as platform:
            for service in SERVICES:
                for _ in range(replicas - 1):
                    say(f"setup: {platform.add_replica(service)} started")
            return _measure(platform, needs, idle_needs, load_share, rate, say)


def _measure(
    platform: Platform, needs: int, idle_needs: int, load_share: float, rate: float | None, say: Callable[[str], None]
) -> RunFigures:
    demo = Demo(platform, DemoLogins(platform.home), lambda line: say(f"setup: {line}"))
    report = TenantReport(DEMO_TENANTS[0])
    tenant = report.tenant.slug
    demo.onboard(report)
    asyncio.run(demo.register_volunteers([report]))  # over HTTPS, as partners must
    demo.wait_for_volunteers(report)
    demo.check_certificates(report)
    http = httpx.Client(timeout=30)
    if (busy := wait_until_quiet(http, platform)) is not None:
        raise RuntimeError(f"the setup did not drain within {SETTLE_TIMEOUT_SECONDS:.0f}s: {busy}")
    say("setup drained (no outbox backlog, no consumer lag, nothing processed or mailed for a while)")

    bootstrap, mongo_url = platform.stack.kafka_bootstrap, platform.stack.mongo_url
    bare = asyncio.run(run_pipe("bare", bootstrap, mongo_url, needs))
    say(f"bare pipe:    {bare.rate:7.1f} msg/s  {_latency_line(bare.latencies)}")
    durable = asyncio.run(run_pipe("durable", bootstrap, mongo_url, needs))
    say(f"durable pipe: {durable.rate:7.1f} msg/s  {_latency_line(durable.latencies)}")

    # Idle: one need at a time, the next once the platform is quiet again.
    run = uuid.uuid4().hex[:8]
    mails = FirstMails(http, platform, run)
    idle = _marked_needs(demo, report, run, idle_needs, seed=23)
    idle_latencies = []
    for number, need in enumerate(idle):
        (sent_at,) = asyncio.run(_publish_paced(platform, tenant, [need], None)).values()
        # Numbers of the idle needs are their own: keep them apart from the steady ones.
        _wait_for_first_mails(mails, [number], "idle")
        if number in mails.arrivals:
            idle_latencies.append(mails.arrivals.pop(number) - sent_at)
        wait_until_quiet(http, platform, quiet_seconds=1.0, timeout=STUCK_SECONDS)
    say(f"idle, {len(idle_latencies)} needs one at a time: {_latency_line(idle_latencies)}")

    # Steady load.
    offered = rate if rate is not None else load_share * bare.rate
    run = uuid.uuid4().hex[:8]
    mails = FirstMails(http, platform, run)
    stream = _marked_needs(demo, report, run, needs, seed=11)
    before = _commands(http, platform)
    published = asyncio.run(_publish_paced(platform, tenant, stream, offered))
    _wait_for_first_mails(mails, range(needs), "steady")
    busy = wait_until_quiet(http, platform, timeout=STUCK_SECONDS)
    if busy is not None:
        say(f"steady: the platform did not settle within {STUCK_SECONDS:.0f}s after the last mail: {busy}")
    after = _commands(http, platform)
    latencies = [mails.arrivals[number] - published[number] for number in mails.arrivals]
    last_mail = max(mails.arrivals.values(), default=min(published.values()))
    throughput = len(mails.arrivals) / (last_mail - min(published.values()))
    say(
        f"steady, {needs} needs offered at {offered:.1f}/s: {len(mails.arrivals)} mailed, "
        f"{throughput:.1f} needs/s  {_latency_line(latencies)}"
    )
    return RunFigures(
        bare=bare,
        durable=durable,
        offered_rate=offered,
        needs=needs,
        mailed=len(mails.arrivals),
        throughput=throughput,
        latencies=latencies,
        idle_latencies=idle_latencies,
        commands=_per_need(before, after, needs),
        settled=busy is None,
    )


# -- printing ----------------------------------------------------------------------------------------


def _latency_line(latencies: Sequence[float]) -> str:
    return f"p50 {percentile(latencies, 0.5) * 1000:7.0f} ms  p99 {percentile(latencies, 0.99) * 1000:7.0f} ms"


def _print_run(number: int, figures: RunFigures) -> None:
    f = figures.figures()
    print(f"-- run {number}: {figures.needs} needs offered at {figures.offered_rate:.1f}/s, {figures.mailed} mailed")
    if not figures.settled:
        print("   NOT SETTLED: the platform stopped short of the stream's work; per-need counts cover only part of it")
    print(f"   bare pipe (3 hops):      {f['bare_rate']:7.1f} msg/s    {_latency_line(figures.bare.latencies)} (burst)")
    durable = _latency_line(figures.durable.latencies)
    print(f"   durable pipe (3 hops):   {f['durable_rate']:7.1f} msg/s    {durable} (burst)")
    print(f"   lotse need -> 1st mail:  {f['throughput']:7.1f} needs/s  {_latency_line(figures.latencies)} (steady)")
    print(f"   lotse idle, one at a time:                {_latency_line(figures.idle_latencies)}")
    bare, durable = f"{f['throughput_ratio_bare']:.3f}", f"{f['throughput_ratio_durable']:.3f}"
    print(f"   throughput ratio: {bare} of the bare pipe, {durable} of the durable pipe")
    print(f"   {'MongoDB per need':<18}{'round trips':>12}{'transactions':>14}   commands")
    for service, counted in figures.commands.items():
        top = sorted(counted.by_command.items(), key=lambda item: -item[1])[:6]
        commands = ", ".join(f"{name} {count:.1f}" for name, count in top)
        print(f"   {service:<18}{counted.round_trips:>12.1f}{counted.transactions:>14.1f}   {commands}")
    print(f"   {'total':<18}{f['round_trips_per_need']:>12.1f}{f['transactions_per_need']:>14.1f}", flush=True)


def _print_summary(runs: list[RunFigures]) -> None:
    medians = {name: statistics.median(run.figures()[name] for run in runs) for name in runs[0].figures()}
    settled = sum(run.settled for run in runs)
    mailed, sent = sum(run.mailed for run in runs), sum(run.needs for run in runs)
    print(f"== median of {len(runs)} run(s); {settled} of them settled; {mailed} of {sent} needs mailed")
    rows = [
        ("bare pipe, msg/s", "bare_rate", 1.0),
        ("durable pipe, msg/s", "durable_rate", 1.0),
        ("lotse, needs/s", "throughput", 1.0),
        ("throughput / bare pipe", "throughput_ratio_bare", 1.0),
        ("throughput / durable pipe", "throughput_ratio_durable", 1.0),
        ("p50 at steady load, s", "p50", 1.0),
        ("p99 at steady load, s", "p99", 1.0),
        ("idle p50, s", "idle_p50", 1.0),
        ("idle p99, s", "idle_p99", 1.0),
        *((f"{service} round trips/need", f"{service}_round_trips", 1.0) for service in SERVICES),
        *((f"{service} transactions/need", f"{service}_transactions", 1.0) for service in SERVICES),
        ("MongoDB round trips per need", "round_trips_per_need", 1.0),
        ("transactions per need", "transactions_per_need", 1.0),
    ]
    for label, name, _ in rows:
        each = "  ".join(f"{run.figures()[name]:8.3f}" for run in runs)
        target = TARGETS.get(name)
        verdict = f"target {target.describe():<8} {'met' if target.met(medians[name]) else 'NOT met'}" if target else ""
        print(f"   {label:<30} {medians[name]:8.3f}   runs: {each}   {verdict}")


def _run(needs: int, runs: int, idle_needs: int, load_share: float, rate: float | None, replicas: int = 1) -> None:
    results = []
    for number in range(1, runs + 1):
        print(f"-- run {number} of {runs}: a fresh platform, {replicas} replica(s) of each service", flush=True)
        figures = _one_run(
            needs, idle_needs, load_share, rate, lambda line: print(f"   {line}", flush=True), replicas=replicas
        )
        _print_run(number, figures)
        results.append(figures)
    _print_summary(results)


async def main(
    needs: int = NEEDS, runs: int = RUNS, idle_needs: int = IDLE_NEEDS, load_share: float = LOAD_SHARE,
    rate: float | None = None, replicas: int = 1,
) -> None:  # fmt: skip
    await asyncio.to_thread(_run, needs, runs, idle_needs, load_share, rate, replicas)


def _compare_replicas(
    needs: int, idle_needs: int, load_share: float, rate: float | None, counts: Sequence[int]
) -> None:
    """The same run with each count of replicas of every service, and each one's throughput as a
    ratio to the first's (issue 19). Each run has its own platform, so each ratio to its own bare
    pipe is printed too: the machine's speed moves between runs."""
    results: dict[int, RunFigures] = {}
    for replicas in counts:
        print(f"-- {replicas} replica(s) of each service: a fresh platform", flush=True)
        figures = _one_run(needs, idle_needs, load_share, rate, lambda line: print(f"   {line}", flush=True), replicas)
        _print_run(replicas, figures)
        results[replicas] = figures
    first = results[counts[0]].figures()
    print(f"== replicas of each service, {needs} needs each")
    for replicas, run in results.items():
        found = run.figures()
        ratio = found["throughput"] / first["throughput"]
        print(
            f"   {replicas} replica(s): {found['throughput']:6.2f} needs/s ({ratio:.2f}x {counts[0]}), "
            f"{found['throughput_ratio_bare']:.3f} of its bare pipe, idle p50 {found['idle_p50']:.2f} s, "
            f"{run.mailed} of {run.needs} mailed"
        )


async def replicas_main(needs: int = 200, idle_needs: int = IDLE_NEEDS, load_share: float = LOAD_SHARE) -> None:
    await asyncio.to_thread(_compare_replicas, needs, idle_needs, load_share, None, (1, 3))
