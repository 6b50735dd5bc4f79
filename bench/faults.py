"""The fault scenario of the e2e tests at a larger size: a stream of partner needs and volunteer
answers through two rounds of faults (each service SIGKILLed, the database SIGKILLed, every broker
connection cut). The baseline is the same stream on the same platform without faults, so the
ratio is what the faults cost in time until everything settled. Lost and duplicate effects must be 0.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from lotse_cli.supervisor import Ports, running_platform
from lotse_devstack.processes import free_port
from tests.e2e.fault_stream import FaultPlan, FaultReport, run_fault_stream
from tests.support import tokens
from tests.support.tcp_proxy import TcpProxy

EVENTS = 10_000
PLAN = FaultPlan(needs=48, volunteers=16, to_staff=24, replayed=6, rounds=2)


def _run() -> tuple[FaultReport, FaultReport]:
    proxy = TcpProxy(target_port=free_port()).start()
    ports = Ports(proxy.target_port, *(free_port() for _ in range(8)))
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
            calm = run_fault_stream(platform, proxy, FaultPlan(**{**PLAN.__dict__, "rounds": 0}))
            stormy = run_fault_stream(platform, proxy, PLAN)
    finally:
        proxy.stop()
    return calm, stormy


async def main(events: int = EVENTS) -> None:
    calm, stormy = await asyncio.to_thread(_run)
    print(f"without faults (baseline):\n{calm.summary()}")
    print(f"with faults:\n{stormy.summary()}")
    print(
        f"ratio to baseline: time to settle {stormy.settled_seconds / calm.settled_seconds:.2f}x; "
        f"lost {stormy.lost}, duplicate effects {stormy.duplicate_effects}"
    )
