"""A loop that waits for wake-ups stops when cancelled, even when the wake-up and the
cancellation arrive together (``asyncio.wait_for`` on Python 3.11 swallows that cancellation)."""

from __future__ import annotations

import asyncio

from lotse_runtime.wakeup import woken


async def test_a_wake_up_and_a_cancellation_at_once_still_stop_the_loop() -> None:
    for _ in range(50):
        wake = asyncio.Event()
        rounds = 0

        async def loop(wake: asyncio.Event = wake) -> None:
            nonlocal rounds
            while True:
                wake.clear()
                await woken(wake, 0.05)
                rounds += 1

        task = asyncio.create_task(loop())
        await asyncio.sleep(0)
        wake.set()
        task.cancel()
        # A deadline for a hang, not a timing: a swallowed cancellation loops forever.
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done and task.cancelled()


async def test_woken_says_whether_it_was_woken_or_the_time_ran_out() -> None:
    wake = asyncio.Event()
    assert await woken(wake, 0.01) is False
    wake.set()
    assert await woken(wake, 5) is True
