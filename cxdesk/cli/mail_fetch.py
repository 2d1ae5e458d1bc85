"""``cxdesk mail fetch``: customer email from an IMAP mailbox (the IMAP slice)."""

from __future__ import annotations

from cxdesk.cli.mail import mail_app  # noqa: F401  (the command registers on it)
