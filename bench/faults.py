"""The fault scenario of the e2e tests at scale: a stream of partner needs, replays, poison and
volunteer answers through two rounds of faults (each service SIGKILLed, the database SIGKILLed,
every broker connection cut). The baseline is the same stream on the same platform without
faults, so the ratio is what the faults cost in time until everything settled. Lost and
duplicate effects must be 0.

``events`` (10,000 by default, ``--events`` on the command line) is what goes in: needs, replays
of needs, the two poison messages and the volunteers' answers (``plan_for`` says how many of each).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from lotse_cli.supervisor import Ports, running_platform
from lotse_devstack.processes import free_port
from tests.e2e.fault_stream import POISON_REFS, FaultPlan, FaultReport, run_fault_stream
from tests.support import tokens
from tests.support.tcp_proxy import TcpProxy

EVENTS = 10_000
ROUNDS = 2


def plan_for(events: int) -> FaultPlan:
    """About 5 % replays, 10 % accepted answers (each volunteer accepts at most two needs, so as
    many volunteers as needs to staff), two poison messages and the rest needs."""
    replayed = max(3, events // 20)
    to_staff = max(8, events // 10)
    needs = events - replayed - to_staff - len(POISON_REFS)
    if needs < 16:
        raise SystemExit(f"faults: {events} events are too few for a stream (at least {16 + 13} needed)")
    return FaultPlan(needs=needs, volunteers=to_staff, to_staff=to_staff, replayed=replayed, rounds=ROUNDS)


def _run(plan: FaultPlan) -> tuple[FaultReport, FaultReport]:
    proxy = TcpProxy(target_port=free_port()).start()
    ports = Ports(proxy.target_port, *(free_port() for _ in range(9)))
    try:
        with (
            tempfile.TemporaryDirectory() as state,
            running_platform(
                ports=ports,
                state_dir=Path(state),
                echo=None,
                persistent=True,
                kafka_advertised_port=proxy.port,
                # The fault stream's tokens come from the tests' issuer (tests/support/tokens.py).
                auth=tokens.issuer().auth_config(),
            ) as platform,
        ):
            calm = run_fault_stream(platform, proxy, FaultPlan(**{**plan.__dict__, "rounds": 0}))
            stormy = run_fault_stream(platform, proxy, plan)
    finally:
        proxy.stop()
    return calm, stormy


def _events(report: FaultReport) -> int:
    return report.partner_sends + report.answers


async def main(events: int = EVENTS) -> None:
    plan = plan_for(events)
    print(
        f"plan: {plan.needs} needs, {plan.replayed} replays, {len(POISON_REFS)} poison, {plan.to_staff} needs "
        f"to staff by {plan.volunteers} volunteers' answers; {plan.rounds} rounds of every fault",
        flush=True,
    )
    calm, stormy = await asyncio.to_thread(_run, plan)
    print(f"without faults (baseline), {_events(calm)} events:\n{calm.summary()}")
    print(f"with faults, {_events(stormy)} events:\n{stormy.summary()}")
    print(
        f"ratio to baseline: time to settle {stormy.settled_seconds / calm.settled_seconds:.2f}x; "
        f"lost {stormy.lost}, duplicate effects {stormy.duplicate_effects}"
    )
