"""A snapshot of the SLA in the high-contrast theme on an 80-column terminal (the ticket list),
on the fixed desk of ``tests/test_tui_snapshots.py``: its three tickets are breached, in
warning and on track (white bold on the theme's error / warning colour, dark green).

After a deliberate change: ``pytest tests/test_tui_sla_snapshots.py --snapshot-update``, then
look at the SVGs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from cxdesk.app import CxDeskApp, create_app
from cxdesk.config import Settings
from cxdesk.screens.tickets import TicketsScreen
from tests.test_tui_snapshots import (  # noqa: F401 (desk and _utc_local_time are fixtures)
    NOW,
    SnapCompare,
    _utc_local_time,
    desk,
)
from tests.test_tui_views_snapshots import opened

NARROW = (80, 24)


def high_contrast_app(engine: Engine, user: str) -> CxDeskApp:
    settings = Settings(extra={"theme": "cxdesk-high-contrast"})
    return create_app(
        engine, user=user, poll_seconds=60, settings=settings, deliver=False, clock=lambda: NOW
    )


def test_tickets_list_high_contrast_80_columns(desk: Engine, snap_compare: SnapCompare) -> None:  # noqa: F811
    def ready(screen: Any) -> bool:
        return isinstance(screen, TicketsScreen) and screen.page is not None

    run_before = opened("Tickets", ready)
    app = high_contrast_app(desk, "admin")
    assert snap_compare(app, terminal_size=NARROW, run_before=run_before)
