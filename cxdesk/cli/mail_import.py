"""``cxdesk mail import``: RFC 5322 messages from files or stdin (the mail-import slice)."""

from __future__ import annotations

from cxdesk.cli.mail import mail_app  # noqa: F401  (the command registers on it)
