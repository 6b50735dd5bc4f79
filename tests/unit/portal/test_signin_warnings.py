"""Authlib's HTTP client integration runs on httpx2, installed with the portal: importing and
building the portal's sign-in client warns of nothing (on httpx, Authlib warns at import that httpx
is deprecated)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import warnings
warnings.simplefilter("error")
from authlib.integrations.httpx_client import AsyncOAuth2Client
from lotse_portal.signin import OpenIdClient
client = AsyncOAuth2Client(client_id="lotse-portal", client_secret="s", code_challenge_method="S256")
"""


def test_the_sign_in_client_warns_of_nothing() -> None:
    # A process of its own: in this one the modules may be imported already, their warnings gone.
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
