"""The command server (cxdesk/command_server.py, cxdesk/command_client.py): real ``cxdesk``
processes through a real server in a private socket folder, stopped after each test.

Each test turns the server on (conftest turns it off for every other test) and checks what a
user of a shell or a script sees: exit codes, the caller's stdout/stderr/stdin, environment and
cwd, Ctrl-C, two callers at once, a stale server, a server killed mid-command, the socket
folder's permissions and a password prompt on a terminal."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import pty
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from cxdesk.command_client import (
    DIRECTORY_ENV,
    IDLE_ENV,
    SWITCH_ENV,
    Unusable,
    alive,
    ask,
    process_context,
    process_state,
    receive_message,
    send_message,
    socket_directory,
)
from cxdesk.launch import served
from cxdesk.store.db import make_engine
from tests.cli_helpers import TEST_PASSWORD, console_script, run_console_script, table_counts
from tests.desk import build_small_desk
from tests.imports import modules_loaded_by
from tests.test_delivery import wait_until

CHECKIN = (
    "checkin --as vera --answer first_name=Ada --answer last_name=Lovelace "
    "--answer email=ada@example.com --answer product=360"
)
WAIT = 120.0


@dataclass
class Served:
    """A desk and a command server of the test's own: ``env`` runs ``cxdesk`` through it."""

    env: dict[str, str]
    folder: Path
    engine: Engine

    def run(self, *args: str, **options: object) -> subprocess.CompletedProcess[str]:
        env = options.pop("env", self.env)
        return subprocess.run(
            [str(console_script()), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            **options,  # type: ignore[call-overload]
        )

    def start(self, *args: str, **options: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(console_script()), *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **options,  # type: ignore[call-overload]
        )

    def status(self) -> dict[str, object] | None:
        sockets = list(self.folder.glob("*.sock"))
        try:
            return ask(sockets[0], {"op": "status"}) if sockets else None
        except (OSError, EOFError):
            return None

    def served_count(self) -> int:
        status = self.status()
        assert status is not None, "no command server answers"
        return int(status["served"])  # type: ignore[call-overload]

    def tickets(self) -> int:
        return table_counts(self.engine)["ticket"]


def private_folder() -> Path:
    """A short private folder (a socket's path has at most 107 bytes; tmp_path can be longer)."""
    return Path(tempfile.mkdtemp(prefix="cxs-"))


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Served]:
    engine = make_engine(sqlite_url)
    build_small_desk(engine)
    folder = private_folder()
    env = {
        **os.environ,
        SWITCH_ENV: "on",
        DIRECTORY_ENV: str(folder),
        "CXDESK_DATABASE_URL": sqlite_url,
        "CXDESK_LOGIN_PASSWORD": TEST_PASSWORD,
        "COLUMNS": "200",
    }
    served_desk = Served(env=env, folder=folder, engine=engine)
    started = served_desk.run("server", "start")
    assert started.returncode == 0, started.stderr
    try:
        yield served_desk
    finally:
        served_desk.run("server", "stop")
        stop_servers(folder)
        engine.dispose()


def stop_servers(folder: Path) -> None:
    """End every server still holding a lock in ``folder`` (one a caller started in the
    background, say), then remove the folder: a server still starting cannot bind there."""
    for lock in folder.glob("*.lock"):
        with lock.open("r+") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = int(held.read() or 0)
                if pid and alive(pid):
                    os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


def test_which_command_lines_go_to_the_server() -> None:
    assert served(["--help"])
    assert served(["tickets", "list", "--json"])
    assert served(["ticket", "pull", "360", "--as", "maya"])
    assert served(["survey", "export"]) and served(["mail", "import"])
    assert served(["--user", "maya", "tickets", "list"]) and served(["--user=maya", "whoami"])
    for direct in (
        [], ["run"], ["board"], ["worker", "--once"], ["server", "stop"],
        ["survey", "serve"], ["mail", "fetch", "--once"],
        ["--user", "maya", "worker"], ["--user", "maya", "board"], ["--user=maya", "board"],
        ["--user", "maya", "mail", "fetch", "--loop"], ["--user=maya", "survey", "serve"],
    ):  # fmt: skip
        assert not served(direct), direct


def test_a_socket_folder_open_to_others_or_a_link_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = private_folder()
    try:
        monkeypatch.setenv(DIRECTORY_ENV, str(folder))
        assert socket_directory() == folder
        folder.chmod(0o750)
        with pytest.raises(Unusable, match="open to other users"):
            socket_directory()
        link = folder.with_name(folder.name + "-link")
        link.symlink_to(folder)
        folder.chmod(0o700)
        monkeypatch.setenv(DIRECTORY_ENV, str(link))
        with pytest.raises(Unusable, match="not a folder"):
            socket_directory()
        link.unlink()
        monkeypatch.setenv(DIRECTORY_ENV, str(folder / "new"))
        made = socket_directory()
        assert made.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(folder)


@pytest.mark.slow
def test_commands_use_the_callers_streams_environment_and_cwd(
    server: Served, tmp_path: Path
) -> None:
    listed = server.run("tickets", "list", "--json", "--as", "maya")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, []), listed.stderr
    assert server.served_count() == 1

    refused = server.run(*CHECKIN.replace("ada@example.com", "not-an-email").split())
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.startswith("Error: email: not a valid email address"), refused.stderr

    fed = server.run("batch", "-", input=f"{CHECKIN}\ntickets list --json --as maya\n")
    assert fed.returncode == 0, fed.stderr
    key, rest = fed.stdout.split("\n", 1)
    assert [ticket["key"] for ticket in json.loads(rest)] == [key]

    (tmp_path / "lines.txt").write_text(f"{CHECKIN}\n", encoding="utf-8")
    relative = server.run("batch", "lines.txt", cwd=tmp_path)
    assert relative.returncode == 0, relative.stderr
    assert server.tickets() == 2

    other_home = tmp_path / "other-home"
    other_home.mkdir()
    logged = server.run("login", "maya")
    assert logged.returncode == 0, logged.stderr
    here = server.run("whoami")
    elsewhere = server.run("whoami", env={**server.env, "CXDESK_HOME": str(other_home)})
    assert "maya" in here.stdout and "maya" not in elsewhere.stdout, (here, elsewhere)

    french = {**server.env, "LANGUAGE": "fr"}  # (LANG=fr_FR.UTF-8: Python's own flags
    # change with the locale, so a caller in another locale gets a server of its own)
    in_french = server.run("ticket", "show", "NOPE-1", "--as", "maya", env=french)
    direct = server.run(
        "ticket", "show", "NOPE-1", "--as", "maya", env={**french, SWITCH_ENV: "off"}
    )
    english = server.run("ticket", "show", "NOPE-1", "--as", "maya")
    assert in_french.returncode == direct.returncode == 1
    assert in_french.stderr == direct.stderr != english.stderr
    assert server.served_count() == 9


def running_in(server_pid: int, cwd: Path) -> int | None:
    """The server's child running a command in ``cwd``, if any (it took the caller's cwd once
    the caller gave the go-ahead: the command is running from then on)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == server_pid and (entry / "cwd").resolve() == cwd.resolve():
                return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def stopped(*pids: int) -> bool:
    return all(process_state(pid) == "T" for pid in pids)


def blocked_batch(server: Served, cwd: Path) -> tuple[subprocess.Popen[str], int]:
    """``cxdesk batch -`` through the server, reading its stdin (a pipe the test holds open)
    with one check-in line written; returns once the command runs, with the server's pid."""
    status = server.status()
    assert status is not None
    pid = int(status["pid"])  # type: ignore[call-overload]
    # Its own process group, as a shell starts a job: in a group the kernel deems orphaned (a
    # test run under setsid, as CI runs it) a SIGTSTP the caller sends itself is dropped.
    caller = server.start("batch", "-", cwd=cwd, process_group=0)
    assert caller.stdin is not None
    caller.stdin.write(f"{CHECKIN}\n")
    caller.stdin.flush()
    wait_until(lambda: running_in(pid, cwd), "the command running in the server's child")
    return caller, pid


@pytest.mark.slow
def test_ctrl_z_ctrl_c_and_two_callers_at_once(server: Served, tmp_path: Path) -> None:
    first, pid = blocked_batch(server, tmp_path)
    child = running_in(pid, tmp_path)
    assert child is not None

    first.send_signal(signal.SIGTSTP)  # Ctrl-Z: the command stops with its caller
    wait_until(lambda: stopped(child, first.pid), "both stopped")
    first.send_signal(signal.SIGCONT)  # fg
    wait_until(lambda: not stopped(child) and not stopped(first.pid), "both continued")

    second = server.run("tickets", "list", "--json", "--as", "maya")  # while the first runs
    assert second.returncode == 0 and json.loads(second.stdout) == [], second.stderr

    first.send_signal(signal.SIGINT)  # what Ctrl-C sends the terminal's foreground process
    # Its input ends (communicate closes it) only once the command is gone: an end of input
    # that came first would let the batch run its line (seen on a loaded machine).
    wait_until(lambda: not alive(child), "the command's end")
    _out, err = first.communicate(timeout=WAIT)
    assert first.returncode == 130, err
    assert "Traceback" not in err
    assert server.tickets() == 0  # interrupted while reading its lines: none ran
    assert server.served_count() == 2


@pytest.mark.slow
def test_a_server_killed_mid_command_is_reported_and_not_run_again(
    server: Served, tmp_path: Path
) -> None:
    caller, pid = blocked_batch(server, tmp_path)
    os.killpg(pid, signal.SIGKILL)  # the server and the command's child
    _out, err = caller.communicate(timeout=WAIT)  # its stdin ends: a second run would check in
    assert caller.returncode == 1
    assert err.splitlines() == [
        "Error: the command server lost this command (connection closed); it was not run "
        "again, and it may have done part of its work"
    ]
    assert server.tickets() == 0


@pytest.mark.slow
def test_a_client_killed_mid_command_ends_the_command(server: Served, tmp_path: Path) -> None:
    caller, pid = blocked_batch(server, tmp_path)
    child = running_in(pid, tmp_path)
    assert child is not None
    caller.kill()  # SIGKILL: the client cannot forward anything
    caller.wait(timeout=WAIT)
    wait_until(lambda: not alive(child), "the command's end (SIGHUP, as a hung-up caller's)")
    assert caller.stdin is not None
    caller.stdin.close()  # its input ends only now: the command did not read on
    assert server.tickets() == 0
    assert server.status() is not None  # the server itself serves on


def fewer_open_files() -> None:
    """A ``ulimit -n`` lower than the server's (in the caller's process, before it runs)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 1, hard))


@pytest.mark.slow
def test_a_caller_with_other_groups_or_limits_runs_its_command_directly(server: Served) -> None:
    limited = server.run("tickets", "list", "--json", "--as", "maya", preexec_fn=fewer_open_files)
    assert limited.returncode == 0 and json.loads(limited.stdout) == [], limited.stderr
    assert server.served_count() == 0  # run by the caller, under its own limit

    (path,) = server.folder.glob("*.sock")
    request: dict[str, Any] = {
        "op": "run",
        "identity": path.stem,  # the server's installation, not this test's interpreter
        "context": process_context(),
        "argv": ["cxdesk", "whoami"],
    }
    other_groups = copy.deepcopy(request)
    other_groups["context"]["groups"].append(max(os.getgroups(), default=0) + 1)  # (sg, newgrp)
    answers = []
    for sent in (request, other_groups):
        with socket.socket(socket.AF_UNIX) as connection, open(os.devnull) as null:
            connection.connect(str(path))
            send_message(connection, sent, [null.fileno()] * 3)
            answers.append(receive_message(connection)[0]["status"])
        # (closed before the go-ahead: a started child ends without running anything)
    assert answers == ["started", "other"]


@pytest.mark.slow
def test_a_stale_server_runs_nothing_and_exits(server: Served, tmp_path: Path) -> None:
    server.run("server", "stop")
    extra = tmp_path / "on-the-path"
    extra.mkdir()
    server.env["PYTHONPATH"] = str(extra)  # a folder on the import path: part of the code
    started = server.run("server", "start")
    pid = int(started.stdout.split()[-1])
    (extra / "installed.py").write_text("", encoding="utf-8")  # the installed code changed

    listed = server.run("tickets", "list", "--json", "--as", "maya")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    wait_until(lambda: not alive(pid), "the stale server's exit")
    current = server.status()
    assert current is None or current["served"] == 0  # run directly, by the caller


@pytest.mark.slow
def test_an_idle_server_exits(server: Served) -> None:
    server.run("server", "stop")
    server.env[IDLE_ENV] = "0.5"
    started = server.run("server", "start")
    pid = int(started.stdout.split()[-1])
    wait_until(lambda: not alive(pid), "the idle server's exit")
    assert not list(server.folder.glob("*.sock"))


@pytest.mark.slow
def test_an_open_socket_folder_means_no_server(server: Served) -> None:
    server.run("server", "stop")
    server.folder.chmod(0o755)
    listed = server.run("tickets", "list", "--json", "--as", "maya")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    status = server.run("server", "status")
    assert status.returncode == 1
    assert "open to other users" in status.stderr
    assert not list(server.folder.glob("*.sock"))
    server.folder.chmod(0o700)


@pytest.mark.slow
def test_a_password_prompt_reads_the_terminal_with_echo_off(server: Served) -> None:
    env = {key: value for key, value in server.env.items() if key != "CXDESK_LOGIN_PASSWORD"}
    main, terminal = pty.openpty()
    caller = subprocess.Popen(
        [str(console_script()), "login", "maya"],
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    while b"Password" not in seen:
        seen += os.read(main, 1024)
    # click writes the prompt, then getpass turns echo off and drops any input typed before
    wait_until(lambda: not termios.tcgetattr(main)[3] & termios.ECHO, "echo off on the terminal")
    os.write(main, f"{TEST_PASSWORD}\n".encode())
    assert caller.wait(timeout=WAIT) == 0
    while True:
        try:
            chunk = os.read(main, 1024)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    assert b"Logged in as maya" in seen, seen
    assert TEST_PASSWORD.encode() not in seen  # not echoed
    assert server.served_count() == 1


@pytest.mark.slow
def test_the_suite_runs_cxdesk_without_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest turns the server off: a test's ``cxdesk`` starts none (nor leaves one behind)."""
    folder = private_folder()
    monkeypatch.setenv(DIRECTORY_ENV, str(folder))
    try:
        assert run_console_script("--help").exit_code == 0
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(folder)


def test_the_client_path_imports_only_the_standard_library() -> None:
    """What every scripted command loads before the server takes it: ``cxdesk.launch``,
    ``cxdesk.command_client`` and the translations, nothing outside the stdlib."""
    loaded = modules_loaded_by(
        "import cxdesk.launch, cxdesk.command_client, cxdesk.i18n\n"
        "cxdesk.command_client.identity(); cxdesk.launch.served(['tickets', 'list'])"
    )
    top = {name.split(".")[0] for name in loaded}
    assert top - set(sys.stdlib_module_names) - {"cxdesk"} == set()
