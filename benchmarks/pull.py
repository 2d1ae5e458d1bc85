"""Benchmark: many processes pulling tickets at once, cxdesk's ``pull_next`` against bare SQL.

Run ``python -m benchmarks.pull`` (or ``python benchmarks/pull.py``) with optional
``--tickets N`` (default 20,000), ``--workers N`` (default 8), ``--rounds N`` (default 3),
``--pg URL`` (also measure on
PostgreSQL: a URL of a role that may create databases; a scratch database is made and dropped)
and ``--profile`` (profile cxdesk's workers with cProfile and print where the time goes; the
timings of that run are then inflated). Exit status 1 only if a ticket went to two workers,
never because of timing.

On each database the contenders pull every waiting ticket with the same number of processes,
all released at once by a barrier, each process on one connection of its own:

- cxdesk: ``pull_next(connection, ...)`` on a freshly migrated desk with one team, queue "360"
  and one expert per process: the whole pull an expert's key runs (the permission check, the
  claim, its two log lines written by the ``ticket_pulled`` trigger, the commit). The
  workflows the log lines trigger run afterwards, in their own transaction, and are not timed
  here (the desk has none; the check-in and delivery benchmarks time the engine);
- baseline: the equivalent UPDATE ... RETURNING straight through the driver, on the same
  kind of desk: claim the team's oldest waiting open ticket for the process's expert (owner,
  new -> open, updated_at) and nothing else: no permission check, no log lines, no cxdesk
  code. SQLite: ``sqlite3`` with cxdesk's connection settings (``store.db.configure_sqlite``:
  WAL, ``synchronous=NORMAL``, foreign keys, busy timeout, the WAL's checkpoint threshold),
  one autocommit statement (a writing statement takes the write lock before it reads). No
  delivery worker runs during the race, so on both sides the writers checkpoint the WAL
  themselves, at the threshold. PostgreSQL: psycopg, the same statement with ``FOR UPDATE SKIP
  LOCKED`` in the subquery, looking again while tickets wait but all are locked;
- reference (no target): the bare claim of one narrow row on a one-table schema
  (id, owner, created) with its own partial index, ``BEGIN IMMEDIATE`` ... ``COMMIT`` on
  SQLite: the floor of a claim on each database. A pull writes a wide ticket row with eight
  indexes and two log rows, so it cannot come near it; the figure says by how much.

cxdesk and the baseline race ``rounds`` times each, alternating, which one goes first turning
round by round, each race on a fresh desk: a burst of load from other processes on a shared
machine (the figure swung 0.34-0.76 from one single race to the next) then falls on both of a
pair rather than on one contender. Figures: throughput (claims/s over the wall time of a
race; the ratio is the median of the per-round ratios), p50 and p99 latency of one claim
(begin to commit: what one expert waits; the median of the rounds' percentiles), doubles
(tickets reported by two workers, or owned in the database by a worker that did not report
them) and lost tickets (still waiting, or owned by a worker that did not report them), summed
over the rounds. Targets: throughput >= 50% of the baseline's
on SQLite, >= 70% on PostgreSQL, p99 <= 20 ms, no doubles.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlmodel import select

from benchmarks.common import format_table, paired_figure, scratch_pg_database
from cxdesk.errors import QueueEmpty
from cxdesk.store.db import (
    BUSY_TIMEOUT_MS,
    configure_sqlite,
    make_engine,
    read_session,
    transaction,
)
from cxdesk.store.directory import add_queue, add_team, add_user, ensure_builtin_statuses, get_user
from cxdesk.store.migrate import upgrade
from cxdesk.store.models import Ticket, utcnow
from cxdesk.store.pull import pull_next

TICKETS = 20_000
WORKERS = 8
ROUNDS = 3
QUEUE = "360"
TARGET_THROUGHPUT_RATIO = {"sqlite": 0.5, "postgresql": 0.7}
"""Of the baseline's throughput, by database (PostgreSQL: issue 18 item 4)."""
TARGET_P99_MS = 20.0
START_TIMEOUT_S = 120
"""How long the barrier waits for every worker to connect and get ready."""
RUN_TIMEOUT_S = 1800
# Like pull_next: SKIP LOCKED can find nothing while tickets wait (all locked by other pullers).
PG_RETRIES = 20
PG_RETRY_SLEEP_S = 0.005

NARROW_SQLITE_SCHEMA = """
CREATE TABLE t (id INTEGER PRIMARY KEY, owner INTEGER, created TEXT NOT NULL);
CREATE INDEX t_waiting ON t (created, id) WHERE owner IS NULL;
"""
NARROW_SQLITE_CLAIM = (
    "UPDATE t SET owner = ? "
    "WHERE id = (SELECT id FROM t WHERE owner IS NULL ORDER BY created, id LIMIT 1) RETURNING id"
)
NARROW_PG_SCHEMA = (
    "CREATE TABLE t (id bigint PRIMARY KEY, owner integer, created timestamptz NOT NULL);"
    "CREATE INDEX t_waiting ON t (created, id) WHERE owner IS NULL"
)
NARROW_PG_CLAIM = (
    "UPDATE t SET owner = %s WHERE id = (SELECT id FROM t WHERE owner IS NULL "
    "ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED) AND owner IS NULL RETURNING id"
)
NARROW_PG_WAITING = "SELECT count(*) FROM t WHERE owner IS NULL"


# -- the claimers each worker process builds ----------------------------------------------------

Claimer = tuple[Callable[[], int | None], Callable[[], None]]
"""``claim()`` -> the ticket id claimed, or None when nothing waits; and ``close()``."""


def _username(index: int) -> str:
    return f"expert{index}"


def _cxdesk_claimer(url: str, index: int) -> Claimer:
    engine = make_engine(url)
    with read_session(engine) as session:
        expert = get_user(session, _username(index))
    connection = engine.connect()  # one per process, like the baseline's

    def claim() -> int | None:
        try:
            return pull_next(connection, actor=expert, queue_name=QUEUE).id
        except QueueEmpty:
            return None

    def close() -> None:
        connection.close()
        engine.dispose()

    return claim, close


def _bare_sqlite3(path: str) -> sqlite3.Connection:
    """A bare sqlite3 connection with cxdesk's settings (WAL, ``synchronous=NORMAL``, busy
    timeout, checkpoint threshold...); each statement autocommits."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    configure_sqlite(connection)
    return connection


def _claim_skipping_locked(
    claim_once: Callable[[], Any], count_waiting: Callable[[], Any]
) -> int | None:
    """A PostgreSQL claim with SKIP LOCKED: no row while tickets wait means all of them are
    locked by other pullers this instant; look again (like pull_next)."""
    for _attempt in range(PG_RETRIES):
        row = claim_once()
        if row is not None:
            return int(row[0])
        waiting = count_waiting()
        if not waiting or not waiting[0]:
            return None
        time.sleep(PG_RETRY_SLEEP_S)
    raise RuntimeError("the baseline queue stayed busy")


def _narrow_sqlite3_claimer(path: str, index: int) -> Claimer:
    connection = _bare_sqlite3(path)
    owner = index + 1

    def claim() -> int | None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            # fetchall: COMMIT refuses while the RETURNING statement is still open.
            rows = connection.execute(NARROW_SQLITE_CLAIM, (owner,)).fetchall()
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return rows[0][0] if rows else None

    return claim, connection.close


# The baseline: the claim alone, through the bare driver, on a cxdesk desk.
_CLAIM_CANDIDATE = (
    "SELECT ticket.id FROM ticket JOIN status ON status.name = ticket.status "
    "WHERE ticket.team_id = {team} AND ticket.owner_id IS NULL AND status.category = 'open' "
    "ORDER BY ticket.queue_band, ticket.created_at, ticket.id LIMIT 1"  # queue_order
)
_CLAIM = (
    "UPDATE ticket SET owner_id = {user}, updated_at = {now}, "
    "status = CASE WHEN status = 'new' THEN 'open' ELSE status END "
    "WHERE id = ({candidate}) AND owner_id IS NULL RETURNING id"
)
CLAIM_SQLITE = _CLAIM.format(user="?", now="?", candidate=_CLAIM_CANDIDATE.format(team="?"))
CLAIM_PG = _CLAIM.format(
    user="%(user)s",
    now="%(now)s",
    candidate=_CLAIM_CANDIDATE.format(team="%(team)s") + " FOR UPDATE OF ticket SKIP LOCKED",
)
CLAIM_PG_WAITING = "SELECT count(*) FROM ticket WHERE team_id = %(team)s AND owner_id IS NULL"
_EXPERT = 'SELECT u.id, q.team_id FROM "user" u, queue q WHERE u.username = ? AND q.name = ?'


def _sqlite3_claim_claimer(path: str, index: int) -> Claimer:
    connection = _bare_sqlite3(path)
    user_id, team_id = connection.execute(_EXPERT, (_username(index), QUEUE)).fetchone()
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it

    def claim() -> int | None:
        rows = connection.execute(CLAIM_SQLITE, (user_id, now, team_id)).fetchall()
        return int(rows[0][0]) if rows else None

    return claim, connection.close


def _psycopg_claim_claimer(url: str, index: int) -> Claimer:
    connection = psycopg.connect(url, autocommit=True)
    user_id, team_id = connection.execute(
        _EXPERT.replace("?", "%s"), (_username(index), QUEUE)
    ).fetchone() or (None, None)
    params = {"user": user_id, "team": team_id, "now": utcnow()}

    def claim() -> int | None:
        return _claim_skipping_locked(
            lambda: connection.execute(CLAIM_PG, params).fetchone(),
            lambda: connection.execute(CLAIM_PG_WAITING, params).fetchone(),
        )

    return claim, connection.close


def _narrow_psycopg_claimer(url: str, index: int) -> Claimer:
    connection = psycopg.connect(url, autocommit=True)
    owner = index + 1

    def claim_once() -> Any:
        with connection.transaction():
            return connection.execute(NARROW_PG_CLAIM, (owner,)).fetchone()

    def claim() -> int | None:
        return _claim_skipping_locked(
            claim_once, lambda: connection.execute(NARROW_PG_WAITING).fetchone()
        )

    return claim, connection.close


CLAIMERS: dict[str, Callable[[str, int], Claimer]] = {
    "cxdesk": _cxdesk_claimer,
    "sqlite3": _sqlite3_claim_claimer,
    "psycopg": _psycopg_claim_claimer,
    "sqlite3-narrow": _narrow_sqlite3_claimer,
    "psycopg-narrow": _narrow_psycopg_claimer,
}


def _worker(
    kind: str,
    target: str,
    index: int,
    barrier: Any,
    results: Any,
    profile_path: str | None,
) -> None:
    """One process: connect, wait for the others, claim until nothing waits, report."""
    try:
        claim, close = CLAIMERS[kind](target, index)
        profiler = cProfile.Profile() if profile_path else None
        claimed: list[int] = []
        latencies: list[float] = []
        barrier.wait(START_TIMEOUT_S)
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter()
        while True:
            began = time.perf_counter()
            ticket_id = claim()
            if ticket_id is None:
                break
            latencies.append(time.perf_counter() - began)
            claimed.append(ticket_id)
        end = time.perf_counter()
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        close()
        results.put((index, claimed, latencies, start, end, None))
    except BaseException:
        barrier.abort()
        results.put((index, [], [], 0.0, 0.0, traceback.format_exc()))


# -- one race ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one contender's race measured."""

    claims: int
    seconds: float
    latencies: list[float]
    doubles: int
    lost: int

    @property
    def throughput(self) -> float:
        return self.claims / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, percent: float) -> float:
        """The latency under which ``percent`` of the claims finished (to a tenth of one)."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        cuts = statistics.quantiles(self.latencies, n=1000, method="inclusive")
        return cuts[round(percent * 10) - 1] * 1000


def _race(
    kind: str, target: str, workers: int, profile_dir: Path | None
) -> tuple[dict[int, list[int]], list[float], float]:
    """Run the workers; return each one's claimed ids, all latencies and the wall time."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(
            target=_worker,
            args=(
                kind,
                target,
                index,
                barrier,
                results,
                str(profile_dir / f"{kind}-{index}.prof") if profile_dir else None,
            ),
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    reports: dict[int, tuple[list[int], list[float], float, float]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S + RUN_TIMEOUT_S
    try:
        while len(reports) + len(errors) < workers:
            try:
                index, claimed, latencies, start, end, error = results.get(timeout=1)
            except queue.Empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    errors.append(
                        f"worker pid {dead[0].pid} died with exit code {dead[0].exitcode}"
                    )
                    break
                if time.monotonic() > deadline:
                    errors.append(f"workers still running after {RUN_TIMEOUT_S} s")
                    break
                continue
            if error:
                errors.append(f"worker {index}:\n{error}")
            else:
                reports[index] = (claimed, latencies, start, end)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    if errors:
        raise RuntimeError(f"{kind} race failed: {errors[0]}")
    claimed_by = {index: report[0] for index, report in reports.items()}
    latencies = [latency for report in reports.values() for latency in report[1]]
    seconds = max(r[3] for r in reports.values()) - min(r[2] for r in reports.values())
    return claimed_by, latencies, seconds


def _outcome(
    claimed_by: dict[int, list[int]],
    latencies: list[float],
    seconds: float,
    owners: dict[int, int | None],
) -> Outcome:
    """Check the reports against the database: ``owners`` maps ticket id -> worker index."""
    reported = Counter(ticket_id for ids in claimed_by.values() for ticket_id in ids)
    doubles = {ticket_id for ticket_id, times in reported.items() if times > 1}
    for index, ids in claimed_by.items():
        doubles.update(ticket_id for ticket_id in ids if owners.get(ticket_id) != index)
    lost = sum(1 for ticket_id in owners if ticket_id not in reported)
    return Outcome(sum(reported.values()), seconds, latencies, len(doubles), lost)


# -- contenders: set up, race, check -------------------------------------------------------------


def _cxdesk_contender(
    url: str, tickets: int, workers: int, profile_dir: Path | None, kind: str = "cxdesk"
) -> Outcome:
    """A fresh desk of ``tickets`` waiting tickets pulled by ``workers`` processes of ``kind``:
    cxdesk's pull_next, or the bare claim (``sqlite3`` / ``psycopg``)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with transaction(engine) as session:
            ensure_builtin_statuses(session)
            team = add_team(session, actor=None, name=QUEUE)
            add_queue(session, actor=None, name=QUEUE, team=QUEUE)
            worker_of_user = {
                add_user(
                    session,
                    actor=None,
                    username=_username(index),
                    name=f"Expert {index}",
                    email=f"expert{index}@example.com",
                    password="benchmark",
                    role="expert",
                    teams=[QUEUE],
                ).id: index
                for index in range(workers)
            }
            # Waiting tickets as create_ticket writes them (without its per-ticket events).
            first = utcnow() - timedelta(days=1)
            rows = []
            for number in range(1, tickets + 1):
                created = first + timedelta(microseconds=number)
                ticket = Ticket(
                    id=number,
                    key=f"EXP-{number}",
                    title=f"Benchmark ticket {number}",
                    status="new",
                    origin_team_id=team.id,  # type: ignore[arg-type]
                    team_id=team.id,  # type: ignore[arg-type]
                    created_at=created,
                    updated_at=created,
                )
                rows.append(ticket.model_dump())
            session.execute(insert(Ticket), rows)
        if engine.dialect.name == "sqlite":
            _checkpoint(str(engine.url.database))
        target = str(engine.url.database) if kind == "sqlite3" else url
        claimed_by, latencies, seconds = _race(kind, target, workers, profile_dir)
        with read_session(engine) as session:
            owners = {
                ticket_id: worker_of_user.get(owner_id) if owner_id is not None else None
                for ticket_id, owner_id in session.exec(select(Ticket.id, Ticket.owner_id)).all()
            }
    finally:
        engine.dispose()
    return _outcome(claimed_by, latencies, seconds, owners)  # type: ignore[arg-type]


def _checkpoint(path: str) -> None:
    """Move the seeding out of the WAL, so both SQLite contenders start from a clean file."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _narrow_sqlite3_contender(path: str, tickets: int, workers: int) -> Outcome:
    first = utcnow() - timedelta(days=1)
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(NARROW_SQLITE_SCHEMA)
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO t (id, created) VALUES (?, ?)",
            (
                (number, (first + timedelta(microseconds=number)).isoformat())
                for number in range(1, tickets + 1)
            ),
        )
        connection.execute("COMMIT")
    _checkpoint(path)
    claimed_by, latencies, seconds = _race("sqlite3-narrow", path, workers, None)
    with closing(sqlite3.connect(path)) as connection:
        owners = {
            ticket_id: owner - 1 if owner is not None else None
            for ticket_id, owner in connection.execute("SELECT id, owner FROM t")
        }
    return _outcome(claimed_by, latencies, seconds, owners)


def _narrow_psycopg_contender(url: str, tickets: int, workers: int) -> Outcome:
    first = utcnow() - timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(NARROW_PG_SCHEMA)
        with connection.cursor() as cursor, cursor.copy("COPY t (id, created) FROM STDIN") as copy:
            for number in range(1, tickets + 1):
                copy.write_row((number, first + timedelta(microseconds=number)))
        connection.execute("ANALYZE t")
    claimed_by, latencies, seconds = _race("psycopg-narrow", url, workers, None)
    with psycopg.connect(url) as connection:
        owners = {
            int(ticket_id): owner - 1 if owner is not None else None
            for ticket_id, owner in connection.execute("SELECT id, owner FROM t")
        }
    return _outcome(claimed_by, latencies, seconds, owners)


# -- figures -----------------------------------------------------------------------------------


def _figures(database: str, ours: list[Outcome], theirs: list[Outcome]) -> list[dict[str, Any]]:
    """cxdesk's rounds against the baseline's, paired in order."""

    def latency(name: str, percent: float, target: str | None = None) -> dict[str, Any]:
        value = statistics.median(outcome.percentile_ms(percent) for outcome in ours)
        base = statistics.median(outcome.percentile_ms(percent) for outcome in theirs)
        return {
            "name": f"{prefix}.{name}",
            "value": value,
            "baseline": base,
            "ratio": value / base if base else None,
            "unit": "ms",
            "target": target,
            "met": None if target is None else value <= TARGET_P99_MS,
        }

    def count(name: str, of: Callable[[Outcome], int]) -> dict[str, Any]:
        value = sum(of(outcome) for outcome in ours)
        return {
            "name": f"{prefix}.{name}",
            "value": value,
            "baseline": sum(of(outcome) for outcome in theirs),
            "ratio": None,
            "unit": "tickets",
            "target": "== 0",
            "met": value == 0,
        }

    prefix = f"pull.{database}"
    pairs = [(our.throughput, their.throughput) for our, their in zip(ours, theirs, strict=True)]
    return [
        paired_figure(
            f"{prefix}.throughput",
            pairs,
            unit="claims/s",
            target_ratio=TARGET_THROUGHPUT_RATIO[database],
        ),
        latency("p50_latency", 50),
        latency("p99_latency", 99, f"<= {TARGET_P99_MS:g} ms"),
        # the tail the target leaves out: the claims that waited longest for the lock
        latency("p999_latency", 99.9),
        count("doubles", lambda outcome: outcome.doubles),
        count("lost", lambda outcome: outcome.lost),
    ]


def _alternate(
    rounds: int,
    cxdesk: Callable[[], Outcome],
    baseline: Callable[[], Outcome],
    log: Callable[[str], None],
    label: str,
) -> tuple[list[Outcome], list[Outcome]]:
    """``rounds`` races of each, alternating, the first of each round turning; their outcomes."""
    ours: list[Outcome] = []
    theirs: list[Outcome] = []
    for number in range(rounds):
        order = [
            ("cxdesk pull_next", cxdesk, ours),
            ("the bare claim (baseline)", baseline, theirs),
        ]
        for name, race, into in order if number % 2 == 0 else order[::-1]:
            log(f"{label} {number + 1}/{rounds}: {name} ...")
            into.append(race())
    return ours, theirs


def _narrow_figure(database: str, ours: list[Outcome], narrow: Outcome) -> dict[str, Any]:
    """cxdesk (its rounds' median) against the bare claim of one narrow row (no target: the
    floor of a claim)."""
    value = statistics.median(outcome.throughput for outcome in ours)
    return {
        "name": f"pull.{database}.throughput_vs_narrow_row",
        "value": value,
        "baseline": narrow.throughput,
        "ratio": value / narrow.throughput if narrow.throughput else None,
        "unit": "claims/s",
        "target": None,
        "met": None if not (narrow.doubles or narrow.lost) else False,
    }


def run(
    *,
    tickets: int = TICKETS,
    workers: int = WORKERS,
    rounds: int = ROUNDS,
    pg_url: str | None = None,
    profile: bool = False,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    """Race cxdesk against the baseline on SQLite (and PostgreSQL if ``pg_url``), ``rounds``
    times each, alternating; the figures.

    With ``profile``, cxdesk's workers run under cProfile and the merged statistics (of the
    last round) are written with ``log`` (the timings are then inflated by the profiler).
    """
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-pull-") as folder:
        profile_dir = Path(folder) / "profiles" if profile else None
        if profile_dir is not None:
            profile_dir.mkdir()
        races = iter(range(1_000_000))  # a fresh file per race

        def sqlite_race(kind: str, profile_to: Path | None = None) -> Outcome:
            url = f"sqlite:///{folder}/desk-{next(races)}.db"
            return _cxdesk_contender(url, tickets, workers, profile_to, kind)

        ours, theirs = _alternate(
            rounds,
            lambda: sqlite_race("cxdesk", profile_dir),
            lambda: sqlite_race("sqlite3"),
            log,
            f"SQLite ({workers} processes, {tickets} tickets)",
        )
        figures += _figures("sqlite", ours, theirs)
        log("SQLite: one narrow row through sqlite3 (reference) ...")
        narrow = _narrow_sqlite3_contender(f"{folder}/narrow.db", tickets, workers)
        figures.append(_narrow_figure("sqlite", ours, narrow))
        if profile_dir is not None:
            _log_profile(profile_dir, "SQLite", log)
        if pg_url:
            pg_profile = Path(folder) / "pg-profiles" if profile else None
            if pg_profile is not None:
                pg_profile.mkdir()

            def pg_race(kind: str, profile_to: Path | None = None) -> Outcome:
                assert pg_url is not None
                with scratch_pg_database(pg_url) as scratch:
                    return _cxdesk_contender(scratch, tickets, workers, profile_to, kind)

            ours, theirs = _alternate(
                rounds,
                lambda: pg_race("cxdesk", pg_profile),
                lambda: pg_race("psycopg"),
                log,
                f"PostgreSQL ({workers} processes, {tickets} tickets)",
            )
            figures += _figures("postgresql", ours, theirs)
            log("PostgreSQL: one narrow row through psycopg (reference) ...")
            with scratch_pg_database(pg_url) as scratch:
                narrow = _narrow_psycopg_contender(scratch, tickets, workers)
            figures.append(_narrow_figure("postgresql", ours, narrow))
            if pg_profile is not None:
                _log_profile(pg_profile, "PostgreSQL", log)
    return figures


def _log_profile(folder: Path, database: str, log: Callable[[str], None]) -> None:
    files = sorted(str(path) for path in folder.glob("*.prof"))
    if not files:
        return
    for order in ("cumulative", "tottime"):
        report = Path(folder) / f"report-{order}.txt"
        with report.open("w") as stream:
            stats = pstats.Stats(*files, stream=stream)
            stats.strip_dirs().sort_stats(order).print_stats(30)
        log(f"--- {database}: cxdesk workers' profile, all processes merged, by {order} ---")
        log(report.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=TICKETS, help="waiting tickets to pull")
    parser.add_argument("--workers", type=int, default=WORKERS, help="pulling processes")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="races of each, alternating")
    parser.add_argument("--pg", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--profile", action="store_true", help="profile cxdesk's workers")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.workers < 1 or args.rounds < 1:
        parser.error("--tickets, --workers and --rounds must be at least 1")
    figures = run(
        tickets=args.tickets,
        workers=args.workers,
        rounds=args.rounds,
        pg_url=args.pg,
        profile=args.profile,
    )
    print(f"pull: {args.workers} processes, {args.tickets} tickets, {args.rounds} rounds")
    print(format_table(figures))
    doubles = [
        f for f in figures if f["name"].endswith(".doubles") and (f["value"] or f["baseline"])
    ]
    for figure in doubles:
        print(f"FAIL: {figure['name']}: cxdesk {figure['value']}, baseline {figure['baseline']}")
    return 1 if doubles else 0


if __name__ == "__main__":
    sys.exit(main())
