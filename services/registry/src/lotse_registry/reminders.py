"""The timer that tells volunteers and the office before a checked certificate runs out.

Each check in force keeps the notices still ahead of it and when the next is due
(``next_notice_at``). A pass finds the due checks by query, so it needs no memory of earlier
passes and resumes after a restart; each notice is sent in its own unit of work that marks it
sent and appends ``VolunteerCertificateExpiring`` to the outbox together (``service.
send_expiry_notice``), so a notice is published once even when passes of two replicas meet.
Notifications turns the event into messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from lotse_registry import service
from lotse_registry.store import StaleVersion, Store, TransactionScope, in_tenant

log = structlog.get_logger("lotse.registry.reminders")


class ExpiryNotices:
    def __init__(
        self, registry: Store, interval_seconds: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.registry = registry
        self.interval_seconds = interval_seconds
        self.clock = clock

    async def tick(self) -> int:
        """Send every notice due now; return how many were sent."""
        now, sent = self.clock(), 0
        for tenant, check_id in await self.registry.due_notices(now):

            async def work(scope: TransactionScope, check_id: str = check_id) -> bool:
                return await service.send_expiry_notice(scope, check_id, now)

            try:
                sent += await self.registry.unit_of_work.run(in_tenant(tenant, work))
            except StaleVersion:
                continue  # the volunteer changed meanwhile: the next pass finds the notice still due
        return sent

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database may be away; try again next time
                log.warning("certificate notice pass failed", error=repr(error))
            await asyncio.sleep(self.interval_seconds)
