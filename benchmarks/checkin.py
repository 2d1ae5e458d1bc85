"""Benchmark: check-ins per second through the workflow engine, against bare inserts.

Run ``python -m benchmarks.checkin`` with optional ``--checkins N`` (default 500) and
``--pg URL`` (also measure on PostgreSQL: a URL of a role that may create databases).

Both contenders start from the same demo desk (``cxdesk demo``) plus one workflow sending a
confirmation email on ``ticket.created``, so each check-in writes what a real one writes: the
survey response, the ticket, its ordered data and comment, the events, the workflow runs and an
outbox row.

- cxdesk: ``submit_response`` inside ``unit_of_work``, one check-in per transaction: answer
  validation, the workflow engine matching the check-in to its product team, piped text,
  the outbox row;
- baseline: the very rows cxdesk wrote, read back and replayed into a copy of the desk taken
  before the run, with plain ``INSERT``s through the driver (sqlite3 / psycopg), one check-in's
  rows per transaction. Same schema, same indexes, same row count: the cost of the engine's
  logic is the difference.

Figure: check-ins per second and the ratio to the baseline; issue 18's targets: 50% of the
bare inserts on SQLite, 40% on PostgreSQL. (Measured 2026-12-07 on a 2-core machine at load
9-15, runs alternating with main, the last three: PostgreSQL 34%, 45%, 55% (main 55%, 25%,
27%); SQLite 22%, 39%, 44% (main 23%, 21%, 33%); CPU per check-in, alternating: SQLite median
1.56 ms (main 1.86), PostgreSQL's client 2.5-2.7 ms (main 2.9-3.8). The engine runs answer
validation, nine workflow conditions, template rendering, the waiting room's position and 15
statements per check-in on SQLite, 8 on PostgreSQL (17 and 13 before 2026-12-08), where the
baseline runs 6 prepared inserts of its 25 rows. Measured 2026-12-08 at load ~1, 5 runs:
SQLite 30-42%, PostgreSQL 34-44%; see README.)
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, MetaData, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SAWarning

from benchmarks.common import figure, format_table, scratch_pg_database
from cxdesk.demo import build_demo
from cxdesk.engine.dispatch import unit_of_work
from cxdesk.engine.workflows import save_workflow
from cxdesk.store.db import make_engine
from cxdesk.store.directory import get_user
from cxdesk.store.surveys import submit_response

CHECKINS = 500
ROUNDS = 5
"""Alternating rounds of cxdesk and the bare inserts (each of ``CHECKINS / ROUNDS``)."""
SQLITE_TARGET = 0.5
POSTGRES_TARGET = 0.4
"""Issue 18: a check-in at least this share of the bare inserts of its rows."""
PRODUCTS = ["360", "Stats iQ", "XM Directory", "CX Dashboards", "API", "Extensions"]


def answers(index: int) -> dict[str, str]:
    return {
        "first_name": f"Guest{index}",
        "last_name": "Zoë O'Neil",
        "email": f"guest{index}@example.com",
        "phone": "1-415-555-2671",
        "product": PRODUCTS[index % len(PRODUCTS)],
        "username": f"guest{index}",
        "notes": "Needs help with a dashboard filter.",
    }


def prepare(engine: Engine) -> None:
    """The demo desk, plus a confirmation email for every new ticket."""
    build_demo(engine)
    with unit_of_work(engine) as session:
        save_workflow(
            session,
            actor=None,
            name="Bench: confirm the check-in",
            event="ticket.created",
            tasks=[
                {
                    "type": "send_email",
                    "to": "${tck://Field/customerEmail}",
                    "subject": "We have your check-in (${tck://Field/key})",
                    "body": "Hi ${tck://kv/Firstname}, an expert of ${tck://Field/team} "
                    "will call you soon.",
                }
            ],
        )


def max_ids(engine: Engine) -> dict[str, int]:
    """The highest id of every table with an integer ``id`` (the rows before the run)."""
    metadata = MetaData()
    metadata.reflect(engine)
    result = {}
    with engine.connect() as connection:
        for name, table in metadata.tables.items():
            if "id" in table.columns and name != "alembic_version":
                result[name] = connection.scalar(select(func.max(table.c.id))) or 0
    return result


def new_rows(engine: Engine, before: dict[str, int]) -> dict[str, list[dict[str, Any]]]:
    metadata = MetaData()
    metadata.reflect(engine)
    rows: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for name, start in before.items():
            table = metadata.tables[name]
            found = connection.execute(
                select(table).where(table.c.id > start).order_by(table.c.id)
            ).mappings()
            rows[name] = [dict(row) for row in found]
    return {name: found for name, found in rows.items() if found}


def insert_order(engine: Engine, names: Sequence[str]) -> list[str]:
    """The tables in foreign-key order (parents first)."""
    metadata = MetaData()
    metadata.reflect(engine)
    with warnings.catch_warnings():  # ticket <-> survey_response refer to each other
        warnings.simplefilter("ignore", SAWarning)
        ordered = [t.name for t in metadata.sorted_tables if t.name in names]
    first = [name for name in ("survey_response",) if name in ordered]  # ticket points at it
    return first + [name for name in ordered if name not in first]


def per_checkin(
    rows: dict[str, list[dict[str, Any]]], order: list[str], count: int
) -> list[list[tuple[str, list[dict[str, Any]]]]]:
    """Split the rows into ``count`` transactions of (table, rows) in insert order."""
    batches: list[list[tuple[str, list[dict[str, Any]]]]] = [[] for _ in range(count)]
    for name in order:
        table_rows = rows[name]
        size, extra = divmod(len(table_rows), count)
        position = 0
        for index in range(count):
            take = size + (1 if index < extra else 0)
            if take:
                batches[index].append((name, table_rows[position : position + take]))
            position += take
    return batches


def run_cxdesk(engine: Engine, count: int, first: int = 0) -> float:
    with unit_of_work(engine) as session:
        vera = get_user(session, "vera")
    started = time.perf_counter()
    for index in range(first, first + count):
        with unit_of_work(engine) as session:
            submit_response(session, actor=vera, survey_name="checkin", answers=answers(index))
    return time.perf_counter() - started


def _statement(name: str, columns: Sequence[str], marker: Callable[[str], str]) -> str:
    quoted = ", ".join(f'"{column}"' for column in columns)
    values = ", ".join(marker(column) for column in columns)
    return f'INSERT INTO "{name}" ({quoted}) VALUES ({values})'


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ")
    return value


def run_sqlite_baseline(path: Path, batches: list[list[tuple[str, list[dict[str, Any]]]]]) -> float:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        prepared = [
            [
                (
                    _statement(name, list(table_rows[0]), lambda c: f":{c}"),
                    [{k: _sqlite_value(v) for k, v in row.items()} for row in table_rows],
                )
                for name, table_rows in batch
            ]
            for batch in batches
        ]
        started = time.perf_counter()
        for batch in prepared:
            connection.execute("BEGIN IMMEDIATE")
            for statement, values in batch:
                connection.executemany(statement, values)
            connection.execute("COMMIT")
        return time.perf_counter() - started


def run_pg_baseline(url: str, batches: list[list[tuple[str, list[dict[str, Any]]]]]) -> float:
    from psycopg.types.json import Jsonb

    def value(v: Any) -> Any:
        return Jsonb(v) if isinstance(v, dict | list) else v

    prepared = [
        [
            (
                _statement(name, list(table_rows[0]), lambda c: f"%({c})s"),
                [{k: value(v) for k, v in row.items()} for row in table_rows],
            )
            for name, table_rows in batch
        ]
        for batch in batches
    ]
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        started = time.perf_counter()
        for batch in prepared:
            with connection.transaction(), connection.cursor() as cursor:
                for statement, values in batch:
                    cursor.executemany(statement, values)
        return time.perf_counter() - started


@contextmanager
def _pg_pair(pg_url: str) -> Iterator[tuple[str, str]]:
    with scratch_pg_database(pg_url) as desk, scratch_pg_database(pg_url) as copy:
        yield desk, copy


def _measure(
    database: str,
    desk: Engine,
    copy: Engine,
    count: int,
    baseline: Callable[[list[list[tuple[str, list[dict[str, Any]]]]]], float],
    log: Callable[[str], None],
    *,
    rounds: int,
    target: float,
) -> dict[str, Any]:
    """``rounds`` alternating rounds: cxdesk's share of the check-ins, then the bare inserts
    of the rows they wrote; the median of each side's rates (a loaded machine slows both)."""
    copy.dispose()
    ours: list[float] = []
    bare: list[float] = []
    done = 0
    for round_number in range(rounds):
        size = count // rounds + (1 if round_number < count % rounds else 0)
        before = max_ids(desk)
        log(f"{database}: round {round_number + 1}/{rounds}: cxdesk, {size} check-ins ...")
        ours.append(size / run_cxdesk(desk, size, first=done))
        done += size
        rows = new_rows(desk, before)
        if rows.get("outbox") is None or len(rows.get("ticket", [])) != size:
            raise RuntimeError("the check-ins did not create a ticket and an outbox row each")
        batches = per_checkin(rows, insert_order(desk, list(rows)), size)
        log(f"{database}: bare inserts of the same {sum(map(len, rows.values()))} rows ...")
        bare.append(size / baseline(batches))
    return figure(
        f"checkin.{database}.throughput",
        value=statistics.median(ours),
        baseline=statistics.median(bare),
        unit="check-ins/s",
        target_ratio=target,
    )


def run(
    *,
    checkins: int = CHECKINS,
    pg_url: str | None = None,
    rounds: int = ROUNDS,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    figures = []
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-checkin-") as folder:
        desk_path, copy_path = Path(folder) / "desk.db", Path(folder) / "copy.db"
        desk = make_engine(f"sqlite:///{desk_path}")
        prepare(desk)
        desk.dispose()  # checkpointed: the file alone is the whole desk
        shutil.copy(desk_path, copy_path)
        copy = make_engine(f"sqlite:///{copy_path}")
        figures.append(
            _measure(
                "sqlite",
                desk,
                copy,
                checkins,
                lambda batches: run_sqlite_baseline(copy_path, batches),
                log,
                rounds=rounds,
                target=SQLITE_TARGET,
            )  # fmt: skip
        )
        desk.dispose()
    if pg_url:
        with _pg_pair(pg_url) as (desk_url, copy_url):
            desk, copy = make_engine(desk_url), make_engine(copy_url)
            prepare(desk)
            prepare(copy)  # the same desk, built the same way: same ids
            figures.append(
                _measure(
                    "postgresql",
                    desk,
                    copy,
                    checkins,
                    lambda batches: run_pg_baseline(copy_url, batches),
                    log,
                    rounds=rounds,
                    target=POSTGRES_TARGET,
                )  # fmt: skip
            )
            desk.dispose()
            copy.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--checkins", type=int, default=CHECKINS, help="check-ins to submit")
    parser.add_argument("--pg", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternating rounds")
    args = parser.parse_args(argv)
    if args.checkins < 1 or not 1 <= args.rounds <= args.checkins:
        parser.error("--checkins must be at least 1, --rounds between 1 and --checkins")
    figures = run(checkins=args.checkins, pg_url=args.pg, rounds=args.rounds)
    print(f"checkin: {args.checkins} check-ins")
    print(format_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
