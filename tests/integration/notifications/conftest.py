"""The SMTP sink for the notification tests: a real SMTP server on a loopback port, read over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lotse_devstack.smtp_sink import SmtpSink


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink
