"""``cxdesk mail``: customer email coming in (``import``, ``fetch``: one module each)."""

from __future__ import annotations

import typer

mail_app = typer.Typer(
    help="Customer email coming in: import messages (an MTA's pipe) or fetch a mailbox (IMAP).",
    no_args_is_help=True,
)
