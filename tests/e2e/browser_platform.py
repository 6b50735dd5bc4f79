"""The platform the browser modules (tests/e2e/test_*_browser.py) share.

Starting the whole platform (broker, database, sinks, the local OpenID provider, three services
and the portal) takes most of a browser module's time, so the browser modules of a group
(``SHARED_PLATFORM_GROUPS`` in tests/conftest.py) run one after another on one worker and share
one platform (``browser_platform`` in tests/e2e/conftest.py, started on first use, stopped after
the group). What keeps them apart is a tenant of each module's own: its needs, volunteers,
statistics and mails (the addresses are the tenant's) are nobody else's, and its people sign in
with logins of that tenant (``Lotse.login``).

A module with a configuration of its own (an environment setting, a timer) keeps a platform of
its own: test_office_day_browser.py (reminders every second).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from lotse_cli.supervisor import Platform, running_platform
from tests.e2e.journey import free_ports
from tests.support.geocoder import StandInGeocoder, feature, photon, serving

# Every tenant a browser module onboards on the shared platform, slug -> name: the broker's
# per-tenant topics are created before the services start. The names are told apart exactly
# (the portal's start page lists them all), each contains "Stadt Portalia".
BROWSER_TENANTS = {
    "portalia": "Stadt Portalia",
    "portalia-profile": "Stadt Portalia (Profil)",
    "portalia-console": "Stadt Portalia (Konsole)",
    "portalia-hours": "Stadt Portalia (Stunden)",
    "portalia-office": "Stadt Portalia (Amt)",
    "portalia-volunteers": "Stadt Portalia (Engagierte)",
    "portalia-questions": "Stadt Portalia (Fragen)",
}

# What the stand-in geocoder finds: one place for the town hall's address, two for a street in
# Kreuzviertel, nothing for anything else (test_portal_browser.py reports needs by address).
TOWN_HALL = feature(51.9614, 7.6251, street="Prinzipalmarkt", housenumber="10", postcode="48143", city="Portalia")
MAIN_STREET = [
    feature(51.9712, 7.6190, street="Hauptstraße", housenumber="1", postcode="48147", city="Portalia"),
    feature(51.9731, 7.6172, name="Hauptstraße 1, Hinterhaus", postcode="48147", city="Portalia"),
]
GEOCODER = StandInGeocoder(by_query={"Prinzipalmarkt 10": photon([TOWN_HALL]), "Hauptstraße 1": photon(MAIN_STREET)})


@contextlib.contextmanager
def shared_platform(state_dir: Path) -> Iterator[Platform]:
    """The platform the browser modules share, with the stand-in geocoder and every tenant's topics."""
    with contextlib.ExitStack() as started:
        _, geocoder_port = started.enter_context(serving(GEOCODER))
        # The registry's address search asks the stand-in (development mode allows it on loopback);
        # the setting is read when the services start.
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("LOTSE_GEOCODER_URL", f"http://127.0.0.1:{geocoder_port}/api")
            # Each module onboards its municipality when it starts: the start page lists it within
            # seconds, not the minute a portal keeps public facts (the registry's limit of 30 public
            # calls a minute from the portal's one address still holds: no 0 here).
            environment.setenv("LOTSE_PUBLIC_CACHE_SECONDS", "5")
            running = started.enter_context(
                running_platform(
                    ports=free_ports(),
                    state_dir=state_dir,
                    tenants=list(BROWSER_TENANTS),
                    echo=None,
                    persistent=False,
                )
            )
        assert running.idp is not None, "the browser tests run against the local OpenID provider"
        yield running
