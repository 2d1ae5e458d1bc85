"""Realistic email samples (``tests/mail/``) and a desk to send them to.

Fixture (a pytest plugin of ``tests/conftest.py``): ``inbound_desk``, the small desk of
``tests/desk.py`` whose inbound team is ``Solo``.

Samples hold placeholders filled at test time: ``{KEY}`` (a ticket key), ``{OUR_ID}`` (a
Message-ID the desk signed for a real outbox row: ``our_message_id``), ``{FORGED_ID}``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cxdesk.engine import outbox
from cxdesk.store import inbound, message_ids
from cxdesk.store.db import transaction
from cxdesk.store.directory import set_setting
from cxdesk.store.survey_links import desk_secret
from cxdesk.store.tickets import get_ticket
from tests.desk import build_small_desk

MAIL = Path(__file__).resolve().parent / "mail"


@pytest.fixture
def inbound_desk(engine: Engine) -> Engine:
    """``tests/desk.py``'s small desk; mail and texts from strangers go to team ``Solo``."""
    build_small_desk(engine)
    with transaction(engine) as s:
        set_setting(s, inbound.INBOUND_TEAM_SETTING, "Solo")
    return engine


def sample(name: str, **fill: str) -> bytes:
    """The bytes of ``tests/mail/NAME`` with ``{PLACEHOLDER}``s replaced."""
    raw = (MAIL / name).read_bytes()
    for placeholder, value in fill.items():
        raw = raw.replace(f"{{{placeholder}}}".encode(), value.encode())
    return raw


def open_ticket_for(engine: Engine, email: str, title: str = "Cannot export") -> str:
    """A ticket whose customer is ``email`` (opened as a stranger's mail opens one)."""
    with transaction(engine) as s:
        ticket = inbound.open_inbound_ticket(
            s, title=title, source="email", customer_name="Customer", customer_email=email
        )
        assert ticket.key is not None
        return ticket.key


def our_message_id(engine: Engine, key: str) -> str:
    """The signed Message-ID of a real outbox email to the ticket's customer (our reply)."""
    with transaction(engine) as s:
        ticket = get_ticket(s, key)
        sent = outbox.enqueue(s, channel="email", to=ticket.customer_email, body="Hi",
                              subject=f"[{key}] {ticket.title}", ticket_id=ticket.id)  # fmt: skip
        assert sent.id is not None
        return message_ids.sign(
            desk_secret(s), ticket_id=ticket.id, outbox_id=sent.id, domain="desk.example"
        )
