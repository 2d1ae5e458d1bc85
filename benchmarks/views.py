"""Benchmark: the desk-wide views on a big desk against the same views on a small one.

Run ``python -m benchmarks.views`` with optional ``--tickets N`` (default 100,000), ``--small
N`` (default 1,000) and ``--repeat N`` (default 5, the median is kept). Both desks are built in
the same run on fresh SQLite files, with the same teams, experts and mix of statuses and dates
(tickets spread over the last 90 days), by bulk Core inserts (``generate_desk``, also used by
the scale test).

Figures (the big desk's value, the small desk's as baseline):
- ``first_page``: what the ticket list reads when it opens: one page (100 rows) of the last
  30 days, newest first;
- ``summary``: the counts by status for that filter (the summary line);
- ``filter``: page and summary for high-priority open tickets of one team (the "Done when"
  filter of issue 5);
- ``kanban``: the columns with their counts and the first page of cards of each;
- ``peak_memory``: tracemalloc's peak while opening the list, filtering it and opening the
  kanban, on the big desk only (target < 200 MB).
Targets: first page and filter within 2x of the small desk.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, insert

from cxdesk.search_fold import fold_fields
from cxdesk.store.db import make_engine, read_session, transaction
from cxdesk.store.directory import add_status, add_team, add_user, ensure_builtin_statuses
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import SEARCHED_FIELDS, Ticket, utcnow
from cxdesk.store.pages import kanban_columns, kanban_page
from cxdesk.store.views import TicketFilter, ticket_page, ticket_summary

BIG = 100_000
SMALL = 1_000
REPEAT = 5
TEAMS = ("360", "Stats iQ", "Employee Engagement", "XM Directory", "CX Dashboards", "API",
         "Extensions", "Website/App Feedback", "Survey Projects")  # fmt: skip
EXPERTS = 6
DAYS = 90
TARGET_RATIO = 2.0
TARGET_MEMORY_MB = 200.0
FILTER = TicketFilter(team="360", priority="high", status="open")
# Status mix per 20 tickets: new 8, open 6, escalated 1, resolved 4, Follow up later 1.
STATUS_CYCLE = ["new"] * 8 + ["open"] * 6 + ["escalated", "Follow up later"] + ["resolved"] * 4
PRIORITIES = ("low", "medium", "medium", "high", "critical")
BATCH = 10_000


def generate_desk(engine: Engine, tickets: int) -> None:
    """A migrated desk with 9 teams, 6 experts on every team and ``tickets`` tickets spread
    over the last 90 days, written by bulk Core inserts (no events: views never read them)."""
    upgrade(engine)
    with transaction(engine) as session:
        ensure_builtin_statuses(session)
        add_status(session, actor=None, name="Follow up later", category="open")
        team_ids = [add_team(session, actor=None, name=name).id for name in TEAMS]
        expert_ids = [
            add_user(session, actor=None, username=f"expert{n}", name=f"Expert {n} Person",
                     email=f"expert{n}@example.com", password="benchmark", role="expert",
                     teams=list(TEAMS)).id
            for n in range(EXPERTS)
        ]  # fmt: skip
    now = utcnow()
    step = timedelta(days=DAYS) / max(tickets, 1)
    table = Ticket.__table__  # type: ignore[attr-defined]
    for start in range(1, tickets + 1, BATCH):
        rows: list[dict[str, Any]] = []
        for number in range(start, min(start + BATCH, tickets + 1)):
            created = now - step * (tickets - number + 1)
            status = STATUS_CYCLE[number % len(STATUS_CYCLE)]
            team_id = team_ids[number % len(team_ids)]
            owned = status != "new"
            rows.append(
                {
                    "id": number,
                    "key": f"EXP-{number}",
                    "title": f"Ticket {number}",
                    "status": status,
                    "priority": PRIORITIES[(number // 7) % len(PRIORITIES)],
                    "origin_team_id": team_id,
                    "team_id": team_id,
                    "owner_id": expert_ids[number % EXPERTS] if owned else None,
                    "customer_name": f"Customer{number} Surname{number % 97}",
                    "customer_email": f"customer{number}@example.com",
                    "customer_phone": "",
                    "customer_comment": f"Question {number} about the product",
                    "source": "checkin",
                    "channel": "in_person",
                    "created_at": created,
                    "updated_at": created,
                    "resolved_at": created if status == "resolved" else None,
                }
            )
        for row in rows:
            row["search_fold"] = fold_fields(*(row[name] for name in SEARCHED_FIELDS))
        with transaction(engine) as session:
            session.execute(insert(table), rows)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE ticket")


# -- what the screens read -----------------------------------------------------------------------


def open_list(engine: Engine) -> None:
    with read_session(engine) as session:
        ticket_page(session, TicketFilter())


def list_summary(engine: Engine) -> None:
    with read_session(engine) as session:
        ticket_summary(session, TicketFilter())


def apply_filter(engine: Engine) -> None:
    with read_session(engine) as session:
        ticket_page(session, FILTER)
        ticket_summary(session, FILTER)


def open_kanban(engine: Engine) -> None:
    with read_session(engine) as session:
        for column in kanban_columns(session):
            kanban_page(session, column.status, limit=50)


STEPS: dict[str, Callable[[Engine], None]] = {
    "first_page": open_list,
    "summary": list_summary,
    "filter": apply_filter,
    "kanban": open_kanban,
}
TARGETED = frozenset({"first_page", "filter"})


def _median_ms(step: Callable[[Engine], None], engine: Engine, repeat: int) -> float:
    step(engine)  # warm the connection pool and the page cache
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        step(engine)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _measure(engine: Engine, repeat: int) -> dict[str, float]:
    return {name: _median_ms(step, engine, repeat) for name, step in STEPS.items()}


def _peak_memory_mb(engine: Engine) -> float:
    tracemalloc.start()
    try:
        for step in STEPS.values():
            step(engine)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / (1024 * 1024)


def run(
    *,
    tickets: int = BIG,
    small: int = SMALL,
    repeat: int = REPEAT,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """Build both desks, time each view on both, and measure the big desk's peak memory."""
    timings: dict[int, dict[str, float]] = {}
    memory: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-views-") as folder:
        for size in (small, tickets):
            engine = make_engine(f"sqlite:///{folder}/desk-{size}.db")
            try:
                log(f"building a desk with {size:,} tickets ...")
                generate_desk(engine, size)
                log(f"timing the views on {size:,} tickets ...")
                timings[size] = _measure(engine, repeat)
                memory[size] = _peak_memory_mb(engine)
            finally:
                engine.dispose()
    figures: list[dict[str, Any]] = []
    for name in STEPS:
        value, baseline = timings[tickets][name], timings[small][name]
        ratio = value / baseline if baseline else None
        targeted = name in TARGETED
        figures.append(
            {
                "name": f"views.sqlite.{name}",
                "value": value,
                "baseline": baseline,
                "ratio": ratio,
                "unit": "ms",
                "target": f"<= {TARGET_RATIO:g}x baseline" if targeted else None,
                "met": (ratio is not None and ratio <= TARGET_RATIO) if targeted else None,
            }
        )
    peak, base_peak = memory[tickets], memory[small]
    figures.append(
        {
            "name": "views.sqlite.peak_memory",
            "value": peak,
            "baseline": base_peak,
            "ratio": peak / base_peak if base_peak else None,
            "unit": "MB",
            "target": f"< {TARGET_MEMORY_MB:g} MB",
            "met": peak < TARGET_MEMORY_MB,
        }
    )
    return figures


def _format(figures: list[dict[str, Any]]) -> str:
    def number(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    header = f"{'figure':<36} {'big':>9} {'small':>9} {'ratio':>7}  {'target':<18} met"
    lines = [header, "-" * len(header)]
    for item in figures:
        met = {True: "yes", False: "NO", None: ""}[item["met"]]
        lines.append(
            f"{item['name'] + ' (' + item['unit'] + ')':<36} {number(item['value']):>9} "
            f"{number(item['baseline']):>9} {number(item['ratio']):>7}  "
            f"{item['target'] or '':<18} {met}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=BIG, help="tickets on the big desk")
    parser.add_argument("--small", type=int, default=SMALL, help="tickets on the small desk")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed runs per figure")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.small < 1 or args.repeat < 1:
        parser.error("--tickets, --small and --repeat must be at least 1")
    figures = run(tickets=args.tickets, small=args.small, repeat=args.repeat)
    print(f"views: {args.tickets:,} tickets against {args.small:,} (median of {args.repeat})")
    print(_format(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
