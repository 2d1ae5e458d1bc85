"""Test fixtures: a fresh, migrated, empty database on SQLite and on PostgreSQL for every test.

Fixtures for tests:

- ``engine``: an Engine on a fresh database, run once on each backend (ids ``sqlite`` and
  ``postgresql``).
- ``db_url``: the same, as a URL string, for code that opens its own connections
  (subprocesses, the CLI). A test asking for both gets the same database in both.
- ``sqlite_url`` / ``pg_url``: a fresh database of one backend only.
- ``own_pg_cluster``: a PostgreSQL cluster of the test's own (``PgCluster``), for a test that
  stops and restarts the server.
- ``cli``: ``cli("ticket", "pull", "360", "--as", "maya")`` runs cxdesk on ``db_url``'s
  database through ``main()``, as a user's shell would (``tests/cli_helpers.py``). It proves
  identities the way a script does: ``CXDESK_LOGIN_PASSWORD`` is ``TEST_PASSWORD`` (the demo
  desk's and ``tests/desk.py``'s password) and ``CXDESK_USER`` is ``admin``, so a command
  without ``--as`` acts as admin. A test of refusals removes them (``monkeypatch.delenv``).
- ``first_admin``: with ``cli``, an empty desk whose first admin ``admin`` ``cxdesk init`` made
  (a desk built with commands: set-up commands need an admin's proof once it has users).

Every test also runs with ``CXDESK_HOME`` in its own tmp folder and no other ``CXDESK_*``
variable, so nothing reads or writes the real user folders or the developer's settings.

PostgreSQL is a required part of the suite, never skipped. The cluster is the one named by
``CXDESK_TEST_PG_URL`` (a superuser URL; ``scripts/test`` sets it), or one this session
starts with ``scripts/pg-cluster`` and stops at the end. Under pytest-xdist the controller
starts it once and every worker gets its own database in it.

How a test gets a fresh database cheaply (measured with the initial schema, 22 tables):

- PostgreSQL: each worker makes one database and migrates it once. Before each test, the
  tables that have rows are emptied with DELETE (foreign-key triggers off through
  ``session_replication_role = replica``) and every sequence is reset to 1, on a connection
  kept open for the session: ~2.5 ms a test. ``TRUNCATE ... RESTART IDENTITY CASCADE`` of all
  tables took 35-130 ms and ``CREATE DATABASE ... TEMPLATE`` 130-600 ms. Connections a previous
  test left open to the worker's database are closed first.
- SQLite: each worker migrates one template file once; each test gets a copy of it in its
  ``tmp_path`` (well under 1 ms).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from cxdesk.cli import common
from cxdesk.i18n import use_language
from cxdesk.local_time import use_zone
from cxdesk.store.db import make_engine
from cxdesk.store.migrate import upgrade
from tests.cli_helpers import TEST_PASSWORD, Cli, prove_as_a_script, run_main

pytest_plugins = [
    "tests.peers",
    "tests.pseudo",
    "tests.twilio_recorder",
    "tests.imap_peer",
    "tests.mail_helpers",
]

PG_URL_ENV = "CXDESK_TEST_PG_URL"
PG_CLUSTER_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg-cluster"
_CLUSTER_KEY = pytest.StashKey[ExitStack]()

# -- schema ------------------------------------------------------------------------------------


def _migrate(engine: Engine) -> None:
    """Bring an empty database to the current schema, the way the application does."""
    upgrade(engine)


# -- the PostgreSQL cluster --------------------------------------------------------------------


@dataclass
class PgCluster:
    """A throwaway cluster made by scripts/pg-cluster in ``folder``. ``start()`` sets ``url``
    (its admin URL); after ``stop()``, ``start()`` brings it back on the same port (a restart)."""

    folder: Path
    url: str = ""

    def start(self) -> str:
        started = subprocess.run(
            [str(PG_CLUSTER_SCRIPT), "start", str(self.folder)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if started.returncode != 0:
            raise RuntimeError(
                f"PostgreSQL is required by the test suite and could not be started "
                f"({PG_CLUSTER_SCRIPT} start): {started.stderr.strip()}\n"
                f"Install PostgreSQL 15 (Debian: apt-get install postgresql-15), or set "
                f"{PG_URL_ENV} to a superuser URL of a running server."
            )
        self.url = started.stdout.strip()
        return self.url

    def stop(self) -> None:
        subprocess.run(
            [str(PG_CLUSTER_SCRIPT), "stop", str(self.folder)], capture_output=True, timeout=120
        )


@contextmanager
def _own_cluster_in(folder: Path) -> Iterator[PgCluster]:
    """Start a throwaway cluster in ``folder`` (deleted at the end), stop it at the end."""
    cluster = PgCluster(folder)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _own_cluster() -> Iterator[str]:
    """Start a throwaway cluster with scripts/pg-cluster, yield its admin URL, then stop it."""
    with _own_cluster_in(Path(tempfile.mkdtemp(prefix="cxdesk-pg-"))) as cluster:
        yield cluster.url


@pytest.fixture
def own_pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this test's own, running, for a test that stops and restarts
    it (never the shared one: other tests use that in parallel). Slow: ~2-5 s to make."""
    with _own_cluster_in(Path(tempfile.mkdtemp(prefix="cxdesk-pg-own-"))) as cluster:
        yield cluster


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist, start one cluster in the controller for all workers (they inherit the URL)."""
    is_worker = hasattr(config, "workerinput")
    distributed = getattr(config.option, "dist", "no") != "no"
    if is_worker or not distributed or os.environ.get(PG_URL_ENV) or config.option.collectonly:
        return
    cluster = ExitStack()
    try:
        os.environ[PG_URL_ENV] = cluster.enter_context(_own_cluster())
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_CLUSTER_KEY] = cluster


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = config.stash.get(_CLUSTER_KEY, None)
    if cluster is not None:
        os.environ.pop(PG_URL_ENV, None)
        cluster.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A superuser URL of the test cluster (``CXDESK_TEST_PG_URL`` or one started here)."""
    given_url = os.environ.get(PG_URL_ENV)
    if given_url:
        yield given_url
        return
    with ExitStack() as cluster:
        try:
            url = cluster.enter_context(_own_cluster())
        except RuntimeError as exc:
            error = str(exc)
        else:
            error = ""
        if error:
            pytest.fail(error, pytrace=False)
        yield url


# -- per-worker PostgreSQL database ------------------------------------------------------------


@dataclass
class _PgWorkerDatabase:
    """This worker's migrated database and the connection that empties it before each test."""

    url: str
    cleaner: psycopg.Connection
    nonempty_tables_query: str

    def reset(self) -> None:
        """Close connections left by the previous test, empty every table, reset sequences."""
        conn = self.cleaner
        conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        nonempty = [row[0] for row in conn.execute(self.nonempty_tables_query)]
        with conn.transaction():
            # Foreign keys off for this transaction only, so tables empty in any order.
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in nonempty:
                conn.execute(f'DELETE FROM "{table}"')
            conn.execute(
                "SELECT setval(c.oid, 1, false) FROM pg_class c "
                "WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace"
            )
            # A new desk, as migration 0024 makes it (store.definitions caches under its name).
            conn.execute("INSERT INTO desk_revision VALUES (1, md5(random()::text), 0)")


def _worker_database_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    return f"cxdesk_test_{worker}_{run[:10]}".lower()


@pytest.fixture(scope="session")
def _pg_worker_database(pg_admin_url: str) -> Iterator[_PgWorkerDatabase]:
    name = _worker_database_name()
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        engine = make_engine(url)
        try:
            _migrate(engine)
        finally:
            engine.dispose()
        with psycopg.connect(url, autocommit=True) as cleaner:
            cleaner.execute("SET lock_timeout = '10s'")
            superuser = cleaner.execute("SELECT current_setting('is_superuser')").fetchone()
            if not superuser or superuser[0] != "on":
                pytest.fail(f"{PG_URL_ENV} must be a superuser URL", pytrace=False)
            tables = [
                row[0]
                for row in cleaner.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'alembic_version' ORDER BY tablename"
                )
            ]
            query = " UNION ALL ".join(f"(SELECT '{t}' FROM \"{t}\" LIMIT 1)" for t in tables)
            yield _PgWorkerDatabase(url=url, cleaner=cleaner, nonempty_tables_query=query)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- per-worker SQLite template ----------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        _migrate(engine)
    finally:
        engine.dispose()
    # Move everything from the WAL into the main file, which is all a test copies.
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


# -- fixtures for tests ------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh, migrated, empty SQLite file in this test's tmp_path."""
    path = tmp_path / "cxdesk-test.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_url(_pg_worker_database: _PgWorkerDatabase) -> str:
    """URL of this worker's PostgreSQL database, migrated and emptied for this test."""
    _pg_worker_database.reset()
    return _pg_worker_database.url


_URL_FIXTURE = {"sqlite": "sqlite_url", "postgresql": "pg_url"}


@pytest.fixture(params=list(_URL_FIXTURE))
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh, migrated, empty database; the test runs once per backend."""
    url: str = request.getfixturevalue(_URL_FIXTURE[request.param])
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An Engine on ``db_url``'s fresh database; disposed after the test."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Cli]:
    """``cli("ticket", "pull", "360", "--as", "maya")`` runs cxdesk on this test's database."""
    monkeypatch.setenv("CXDESK_DATABASE_URL", db_url)
    prove_as_a_script(monkeypatch)
    # Rich sizes tables to the terminal; a fixed width keeps every cell whole in captured output.
    for console in (common.console, common.err_console):
        monkeypatch.setattr(console, "width", 200)
    yield partial(run_main, capsys)
    # The CLI keeps one engine per URL for the life of the process: close this test's.
    common.engine_for(db_url).dispose()
    common.engine_for.cache_clear()


@pytest.fixture
def first_admin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cli``'s desk with its first admin, ``admin`` (password ``TEST_PASSWORD``), made by
    ``cxdesk init``: for tests that build a desk with commands, which need an admin's proof."""
    monkeypatch.setenv("CXDESK_PASSWORD", TEST_PASSWORD)
    result = cli("init", "--admin", "admin", "--name", "Ada Admin", "--email", "a@example.com")
    assert result.exit_code == 0, str(result)
    monkeypatch.delenv("CXDESK_PASSWORD")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CXDESK_HOME in this test's tmp_path; no developer CXDESK_* setting leaks in; the CLI
    (``cli`` fixture, a console script) speaks English whatever the developer's LANG: a test
    that wants another language sets LANGUAGE or LANG itself."""
    for name in list(os.environ):
        if name.startswith(("CXDESK_", "TWILIO_")) and name != PG_URL_ENV:
            monkeypatch.delenv(name)
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")  # none of the desk's languages: English
    home = tmp_path / "cxdesk-home"
    home.mkdir()
    monkeypatch.setenv("CXDESK_HOME", str(home))
    # Cheapest argon2 parameters: tests create many users; hashes still verify for real.
    monkeypatch.setenv("CXDESK_PASSWORD_HASH_COST", "cheapest")
    # Every ``cxdesk`` a test spawns runs on its own and starts no command server (the
    # server's own tests, tests/test_command_server.py, turn it on with a private folder).
    monkeypatch.setenv("CXDESK_COMMAND_SERVER", "off")
    # The process's language and shown zone start as English and UTC (a user's language or a
    # desk's zone, set by an earlier test's CLI command or login, does not leak in).
    use_language(None)
    use_zone(None)
