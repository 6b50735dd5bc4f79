"""``lotse privacy``: what the platform keeps about people, for how long, and for whom (DSGVO).

The subcommands live in their own modules, which register themselves on :data:`privacy_app`.
"""

from __future__ import annotations

import typer

privacy_app = typer.Typer(no_args_is_help=True)
