"""``cxdesk mail``: customer email coming in (``import``, ``fetch``: one module each)."""

from __future__ import annotations

import typer

from cxdesk.i18n import N_

mail_app = typer.Typer(
    help=N_("Customer email coming in: import messages (an MTA's pipe) or fetch a mailbox (IMAP)."),
    no_args_is_help=True,
)
