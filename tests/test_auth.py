"""Honest identities on the CLI (issue 13, item 4): nobody acts as a user without proof.

Proof is a session (``cxdesk login``), a token (``CXDESK_TOKEN``) or the user's password
(``CXDESK_LOGIN_PASSWORD`` or asked for). Every refusal is one ``Error:`` line, exit 1, and the
database is left as it was. The ``cli`` fixture proves identities with a password; tests here
remove that (``anonymous``) to show what a stranger, an expert and an admin get.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import argon2
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from cxdesk import locations
from cxdesk.store import logins, passwords
from cxdesk.store.directory import TIME_ZONE_SETTING, set_setting
from cxdesk.store.models import ApiToken, LoginFailure, LoginSession, User, utcnow
from tests.cli_helpers import (
    TEST_PASSWORD,
    Cli,
    assert_one_error_line,
    run_console_script,
    table_counts,
)
from tests.desk import build_small_desk
from tests.threads import at_once

SEED_FILE = Path(__file__).resolve().parent.parent / "cxdesk" / "seeds" / "ask_the_experts.toml"


@pytest.fixture
def desk(engine: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The small desk (admin, maya, omar, kenji, vera) and a CLI with no proof at all."""
    build_small_desk(engine)
    for name in ("CXDESK_LOGIN_PASSWORD", "CXDESK_USER"):
        monkeypatch.delenv(name)
    return engine


def ok(result: object) -> str:
    assert getattr(result, "exit_code", 1) == 0, str(result)
    return str(getattr(result, "stdout", ""))


def log_in(cli: Cli, monkeypatch: pytest.MonkeyPatch, username: str) -> None:
    with monkeypatch.context() as patch:
        patch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
        ok(cli("login", username))


# -- a stranger: no proof ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["ticket", "pull", "360", "--as", "maya"], "log in first: cxdesk login maya"),
        (
            [
                "ticket",
                "create",
                "--as",
                "admin",
                "--email",
                "c@example.com",
                "--team",
                "360",
                "--comment",
                "hi",
            ],
            "log in first: cxdesk login admin",
        ),  # fmt: skip
        (
            ["user", "add", "eve", "--name", "Eve", "--email", "e@example.com", "--role", "admin"],
            "log in first",
        ),  # fmt: skip
        (["campaign", "create", "C", "--subject", "S", "--team", "360"], "log in first"),
        (["workflow", "disable", "Check-in: 360"], "log in first"),
        (["outbox", "retry", "1"], "log in first"),
        (["tickets", "list"], "log in first"),
        (["ticket", "show", "EXP-1"], "log in first"),
        (["outbox", "list"], "log in first"),
        (["report", "csat"], "log in first"),
        (["user", "list"], "log in first"),
    ],
)
def test_without_proof_nothing_is_done_or_shown(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], fragment: str
) -> None:
    monkeypatch.setenv("CXDESK_PASSWORD", "new-users-password")  # a new user's, not a proof
    before = table_counts(desk)
    assert_one_error_line(cli(*args), fragment)
    assert table_counts(desk) == before


def test_a_wrong_password_is_refused_and_counted(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "not-it")
    before = table_counts(desk)
    line = assert_one_error_line(cli("ticket", "pull", "360", "--as", "maya"), "maya")
    assert logins.BAD_LOGIN in line
    unknown = assert_one_error_line(cli("ticket", "pull", "360", "--as", "ghost"), "ghost")
    assert unknown.replace("ghost", "maya") == line  # the same answer for an unknown name
    assert_one_error_line(cli("login", "maya"), logins.BAD_LOGIN)
    after = table_counts(desk)
    assert after.pop("login_failure") == 2  # maya and ghost, from this account
    before.pop("login_failure")
    assert after == before
    with Session(desk) as session:
        maya = session.get(LoginFailure, ("maya", logins.login_source()))
        assert maya is not None and maya.failures == 2


def test_the_board_and_a_new_demo_desk_need_no_login(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CXDESK_LOGIN_PASSWORD", "CXDESK_USER"):
        monkeypatch.delenv(name)
    made = ok(cli("demo"))
    assert "cxdesk login maya" in made
    kept = ok(cli("demo"))
    assert "kept" in kept and "maya" not in kept  # an existing desk's users stay unlisted
    assert_one_error_line(cli("demo", "--reset"), "log in first")


# -- sessions ---------------------------------------------------------------------------------


def test_login_speaks_the_proven_users_language_and_the_desks_zone(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(desk) as s:
        s.exec(update(User).where(User.username == "kenji").values(language="ja"))  # type: ignore[call-overload]
        set_setting(s, TIME_ZONE_SETTING, "Asia/Tokyo")
        s.commit()
    monkeypatch.setenv("LANGUAGE", "fr")  # the terminal's: for a user with no language of their own
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)

    japanese = ok(cli("login", "kenji"))
    french = ok(cli("login", "maya"))

    assert japanese.startswith("kenji（エキスパート）としてログインしました。"), japanese
    assert re.search(r"有効期限：2\d{3}年\d+月\d+日 \d+:\d\d \+09:00。$", japanese.strip()), (
        japanese
    )
    assert french.startswith("Connecté en tant que maya (Expert) jusqu'au "), french
    assert french.strip().endswith(" +09:00."), french
    assert "UTC" not in japanese + french


def test_login_keeps_a_private_session_that_commands_use_until_logout(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_umask = os.umask(0)  # the file and folder are private whatever the umask
    try:
        log_in(cli, monkeypatch, "maya")
    finally:
        os.umask(old_umask)
    path = locations.sessions_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with Session(desk) as session:
        stored = session.exec(select(LoginSession)).one()
    assert stored.secret_hash not in path.read_text()  # the file has the secret, the DB its hash

    assert ok(cli("whoami")).startswith("maya (expert): session until")
    answers = ["first_name=Ada", "last_name=L", "email=ada@example.com", "product=360"]
    key = ok(cli("checkin", *[arg for a in answers for arg in ("--answer", a)])).strip()
    assert ok(cli("ticket", "pull", "360")).strip() == key  # no --as: the one logged in
    assert "maya" in ok(cli("ticket", "show", key))
    assert_one_error_line(cli("ticket", "pull", "360", "--as", "omar"), "cxdesk login omar")

    assert "Logged out maya" in ok(cli("logout"))
    assert table_counts(desk)["login_session"] == 0
    assert_one_error_line(cli("tickets", "list"), "log in first")
    assert_one_error_line(cli("whoami"), "Not logged in")


def test_an_expired_or_ended_session_is_refused_in_one_line(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(cli, monkeypatch, "maya")
    with Session(desk) as session:
        session.exec(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()
    before = table_counts(desk)
    assert_one_error_line(cli("ticket", "pull", "360"), "session has expired: cxdesk login maya")
    assert_one_error_line(cli("ticket", "pull", "360", "--as", "maya"), "expired")
    assert_one_error_line(cli("whoami"), "maya's session has expired")
    assert table_counts(desk) == before

    log_in(cli, monkeypatch, "maya")  # a new session replaces the expired one
    with Session(desk) as session:
        session.exec(update(LoginSession).values(secret_hash="0" * 64))  # type: ignore[call-overload]
        session.commit()  # as if it was logged out from another machine
    assert_one_error_line(cli("tickets", "list"), "session has ended: cxdesk login maya")


def test_two_users_logged_in_and_as_picks_one(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(cli, monkeypatch, "maya")
    log_in(cli, monkeypatch, "admin")
    assert ok(cli("whoami")).splitlines()[0].startswith("admin (admin)")
    assert_one_error_line(cli("tickets", "list"), "pick one with --as", "admin, maya")
    ok(cli("team", "add", "Extra", "--as", "admin"))
    assert_one_error_line(cli("team", "add", "Other", "--as", "maya"), "Only an admin")
    ok(cli("logout", "admin"))
    assert ok(cli("whoami")).startswith("maya")


# -- API tokens -------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_refused_once_revoked(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(cli, monkeypatch, "admin")
    made = cli("token", "create", "ci", "--user", "maya")
    secret = ok(made).strip()
    assert secret.startswith("cxd_") and "shown only now" in made.stderr
    with Session(desk) as session:
        row = session.exec(select(ApiToken)).one()
    assert secret not in row.secret_hash and len(row.secret_hash) == 64
    listed = ok(cli("token", "list"))
    assert "ci" in listed and "maya" in listed and secret not in listed
    assert_one_error_line(cli("token", "create", "ci", "--user", "omar"), "exists already")
    ok(cli("logout"))

    monkeypatch.setenv("CXDESK_TOKEN", secret)
    assert ok(cli("whoami")).startswith("maya (expert): CXDESK_TOKEN 'ci'")
    ok(cli("tickets", "list"))
    assert_one_error_line(cli("team", "add", "X"), "Only an admin", "maya is expert")
    assert_one_error_line(cli("tickets", "list", "--as", "omar"), "cxdesk login omar")

    monkeypatch.delenv("CXDESK_TOKEN")
    log_in(cli, monkeypatch, "admin")
    ok(cli("token", "revoke", "ci"))
    ok(cli("logout"))
    monkeypatch.setenv("CXDESK_TOKEN", secret)
    before = table_counts(desk)
    assert_one_error_line(cli("tickets", "list"), "CXDESK_TOKEN (token 'ci') was revoked")
    assert_one_error_line(cli("ticket", "pull", "360"), "was revoked")
    monkeypatch.setenv("CXDESK_TOKEN", "cxd_made-up")
    assert_one_error_line(cli("tickets", "list"), "not a token of this desk")
    assert table_counts(desk) == before


def test_a_token_made_on_one_machine_works_on_another_until_revoked(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two machines: two homes (session files) on one database; the database decides."""
    log_in(cli, monkeypatch, "admin")
    secret = ok(cli("token", "create", "kiosk", "--user", "vera")).strip()
    with monkeypatch.context() as other_machine:
        home = tmp_path / "other-machine"
        home.mkdir()
        other_machine.setenv("CXDESK_HOME", str(home))
        assert_one_error_line(cli("tickets", "list"), "log in first")  # admin's session: not here
        other_machine.setenv("CXDESK_TOKEN", secret)
        assert ok(cli("whoami")).startswith("vera (volunteer)")
    ok(cli("token", "revoke", "kiosk"))  # on the first machine
    with monkeypatch.context() as other_machine:
        other_machine.setenv("CXDESK_HOME", str(tmp_path / "other-machine"))
        other_machine.setenv("CXDESK_TOKEN", secret)
        assert_one_error_line(cli("whoami"), "was revoked")


# -- admins only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["user", "add", "eve", "--name", "Eve", "--email", "e@example.com", "--role", "admin"],
        ["user", "join", "omar", "Stats iQ"],
        ["team", "add", "X"],
        ["queue", "add", "Q", "--team", "360"],
        ["status", "add", "Parked", "--category", "open"],
        ["seed", str(SEED_FILE)],
        ["workflow", "disable", "Check-in: 360"],
        ["workflow", "copy", "Check-in: 360", "Copy"],
        ["outbox", "retry", "1"],
        ["campaign", "create", "C", "--subject", "S", "--team", "360", "--filter", "plan=x"],
        ["contact", "import", "contacts.csv"],
        ["responses", "import", "answers.csv", "--survey", "checkin"],
        ["db", "upgrade"],
        ["token", "create", "t", "--user", "maya"],
        ["token", "list"],
        ["demo", "--reset"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_set_up_commands_need_an_admins_proof(
    desk: Engine,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "contacts.csv").write_text("name,email\nAda,ada@example.com\n")
    (tmp_path / "answers.csv").write_text("first_name,last_name,email,product\nA,B,a@b.co,360\n")
    monkeypatch.setenv("CXDESK_PASSWORD", "new-users-password")
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    before = table_counts(desk)
    assert_one_error_line(
        cli(*args, "--as", "maya"), "Only an admin can change the desk's set-up (maya is expert)"
    )
    assert table_counts(desk) == before
    by_admin = cli(*args, "--as", "admin")  # passes the gate (to what the desk lacks)
    lacking = ("No outbox message #1", "No contacts match")
    assert by_admin.exit_code == 0 or by_admin.stderr.startswith(
        tuple(f"Error: {it}" for it in lacking)
    ), str(by_admin)


# -- the password check -----------------------------------------------------------------------


@pytest.fixture
def argon2_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hashes argon2 verified a password against, in order."""
    checked: list[str] = []
    real = argon2.PasswordHasher.verify

    def verify(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        checked.append(str(hash))
        return real(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    yield checked


def test_an_unknown_username_costs_the_same_argon2_check(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch, argon2_checks: list[str]
) -> None:
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "guess")
    cli("login", "maya")
    cli("login", "nobody-by-this-name")
    with Session(desk) as session:
        vera = session.exec(select(User).where(User.username == "vera")).one()
        vera.active = False
        session.add(vera)
        session.commit()
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    assert_one_error_line(cli("login", "vera"), logins.BAD_LOGIN)  # right password, deactivated
    assert len(argon2_checks) == 3
    parameters = {check.split("$")[3] for check in argon2_checks}  # m=...,t=...,p=...
    assert len(parameters) == 1  # the decoy hash costs what a real one costs
    assert argon2_checks[1] == passwords.DECOY_HASHES["cheapest"]  # committed, never made here


@pytest.mark.parametrize("cost", sorted(passwords.PROFILES))
def test_the_decoy_hash_has_its_costs_parameters(
    cost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cost changed without a new decoy would make unknown names cheaper (or dearer)."""
    monkeypatch.setenv("CXDESK_PASSWORD_HASH_COST", cost)
    decoy = passwords.DECOY_HASHES[cost]
    real = passwords.hash_password("any password")
    assert argon2.extract_parameters(decoy) == argon2.extract_parameters(real)
    assert not passwords.needs_rehash(decoy)


def test_a_hash_is_upgraded_at_login_when_the_cost_changes(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def maya_hash() -> str:
        with Session(desk) as session:
            return session.exec(select(User).where(User.username == "maya")).one().password_hash

    cheap = maya_hash()
    monkeypatch.setenv("CXDESK_PASSWORD_HASH_COST", "default")
    log_in(cli, monkeypatch, "maya")
    strong = maya_hash()
    assert strong != cheap
    assert argon2.extract_parameters(strong) == argon2.profiles.RFC_9106_LOW_MEMORY
    ok(cli("logout"))
    log_in(cli, monkeypatch, "maya")
    assert maya_hash() == strong  # at the current cost already: kept


def test_repeated_failures_wait_longer() -> None:
    delays = [logins.failure_delay(n) for n in range(10)]
    assert delays[:2] == [0.0, 0.0]
    assert delays[2:6] == [1.0, 2.0, 4.0, 8.0]
    assert max(delays) == logins.MAX_DELAY_SECONDS


def test_after_repeated_failures_even_the_right_password_waits(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch, argon2_checks: list[str]
) -> None:
    monkeypatch.setattr(logins, "failure_delay", lambda failures: 3600.0 * (failures >= 2))
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "guess")
    for _ in range(2):
        assert_one_error_line(cli("login", "maya"), logins.BAD_LOGIN)
    checks = len(argon2_checks)
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    assert_one_error_line(cli("login", "maya"), "Too many failed logins for 'maya'", "try again")
    assert len(argon2_checks) == checks  # refused before any password check
    ok(cli("login", "omar"))  # another user from the same account is not held up

    with Session(desk) as session:  # the delay has passed
        session.exec(update(LoginFailure).values(locked_until=utcnow()))  # type: ignore[call-overload]
        session.commit()
    ok(cli("login", "maya"))
    assert table_counts(desk)["login_failure"] == 0  # a success clears the count


def test_attempts_at_once_after_a_failure_get_one_password_check(
    desk: Engine, monkeypatch: pytest.MonkeyPatch, argon2_checks: list[str]
) -> None:
    """Eight guesses at the same instant, the delay just over: one is checked, seven wait."""
    monkeypatch.setattr(logins, "failure_delay", lambda failures: 3600.0 * (failures >= 2))
    source = logins.login_source()
    with pytest.raises(logins.BadLogin):
        logins.check_password(desk, "maya", "guess-0", source=source)  # the first failure
    checks = len(argon2_checks)

    def guess(number: int) -> None:
        logins.check_password(desk, "maya", f"guess-{number}", source=source)

    errors = at_once(guess, range(1, 9))
    assert sorted(type(e).__name__ for e in errors) == ["BadLogin"] + ["LoginThrottled"] * 7
    assert len(argon2_checks) == checks + 1
    with Session(desk) as session:
        failure = session.get(LoginFailure, ("maya", source))
        assert failure is not None and failure.failures == 2


@pytest.mark.slow
def test_the_failure_delay_holds_in_another_process(
    desk: Engine, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "guess")
    for _ in range(3):
        cli("login", "maya")
    with Session(desk) as session:  # keep the delay running however slow the machine is
        session.exec(
            update(LoginFailure).values(locked_until=utcnow() + timedelta(hours=1))  # type: ignore[call-overload]
        )
        session.commit()
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", TEST_PASSWORD)
    assert_one_error_line(run_console_script("login", "maya"), "Too many failed logins")


# -- the first admin --------------------------------------------------------------------------


def test_init_on_an_empty_desk_makes_the_first_admin(
    cli: Cli, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CXDESK_LOGIN_PASSWORD", "CXDESK_USER"):
        monkeypatch.delenv(name)
    assert_one_error_line(
        cli("user", "add", "omar", "--name", "O", "--email", "o@example.com", "--role", "expert"),
        "first user is its admin",
    )
    assert_one_error_line(cli("init", "--admin", "root", "--name", "Root"), "--email")
    assert_one_error_line(
        cli("init", "--admin", "root", "--email", "r@example.com"), "CXDESK_PASSWORD"
    )
    assert table_counts(engine)["user"] == 0
    monkeypatch.setenv("CXDESK_PASSWORD", "first-admins-password")
    made = ok(cli("init", "--admin", "root", "--name", "Root", "--email", "r@example.com"))
    assert "First admin root added" in made
    assert_one_error_line(
        cli("init", "--admin", "eve", "--email", "e@example.com"), "has users already"
    )
    # The new user's password variable proves nothing; the login one does.
    assert_one_error_line(cli("team", "add", "X", "--as", "root"), "log in first")
    monkeypatch.setenv("CXDESK_LOGIN_PASSWORD", "first-admins-password")
    ok(cli("team", "add", "X", "--as", "root"))
