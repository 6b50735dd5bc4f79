"""Waiting for a wake-up with a poll interval, in the loops that relay, deliver and time things.

``asyncio.timeout``, not ``asyncio.wait_for``: on Python 3.11, ``wait_for`` swallows a cancellation
that arrives in the same loop iteration as the wake-up (the inner wait finished, so it returns its
result), and a ``while True`` loop around it then never stops: a shutdown that hangs.
"""

from __future__ import annotations

import asyncio


async def woken(wake: asyncio.Event, seconds: float) -> bool:
    """Wait until ``wake`` is set or ``seconds`` pass; True when woken. Cancellation propagates."""
    try:
        async with asyncio.timeout(seconds):
            await wake.wait()
    except TimeoutError:
        return False
    return True
