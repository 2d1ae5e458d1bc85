"""The command server: a process that has imported the CLI and forks a child per command.

Started in the background by the first ``cxdesk`` command that finds none
(``cxdesk.command_client.start_server``, or ``cxdesk server start``), one per user and
installation, listening on a Unix socket in a private folder. It imports what commands use
(Typer, SQLAlchemy, SQLModel, the store, the engine, every CLI module) and nothing else: it never
opens a database or reads the settings, so each child starts as a fresh process would, then
reads the caller's. It is single-threaded (forking a threaded process is unsafe).

Per command: the peer must be this user (``SO_PEERCRED``) and of the same installation, with
the server's own groups, limits and namespaces (``process_context``), and
the installed code must be the one loaded (``fingerprint``: the package's files, the import
path's folders); a stale server tells the client to run the command directly and exits. Then
a child takes the caller's fds 0-2, environment, cwd, umask and argv, resets what a fresh
process would have (signal handlers, the language and zone, the consoles), waits for the
client's go-ahead, runs the CLI and reports its exit code; it ends with SIGHUP when its client
is gone before that (``watch_caller``).

It exits after ``CXDESK_COMMAND_SERVER_IDLE`` seconds (default 300) without a command, on
``cxdesk server stop``, on SIGTERM, and when its code changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import io
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from cxdesk.command_client import (
    GO,
    IDLE_ENV,
    IDLE_SECONDS,
    identity,
    process_context,
    receive_message,
    send_message,
    socket_path,
)

PACKAGE = Path(__file__).resolve().parent
PRELOADED_PACKAGES = ("cxdesk.cli", "cxdesk.store", "cxdesk.engine")
"""Every module of these is imported before the first fork; the TUI, the web pages and
Textual are not (their commands run directly)."""
PRELOADED_LIBRARIES = (
    "cxdesk.launch",
    "babel.dates",
    "sqlite3",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
)
LOCK_WAIT = 5.0
"""Seconds a new server waits for a stale one to let go of the socket before giving up."""


def fingerprint() -> str:
    """The installed code as loaded: each file of the package (size, mtime) and each folder
    of the import path (a package installed or removed changes its folder's mtime)."""
    digest = hashlib.sha256()
    for root, folders, files in os.walk(PACKAGE):
        folders[:] = sorted(f for f in folders if f != "__pycache__")
        for name in sorted(files):
            try:
                found = os.stat(os.path.join(root, name))
            except OSError:
                continue
            digest.update(f"{root}/{name}:{found.st_size}:{found.st_mtime_ns}\n".encode())
    for entry in sys.path:
        try:
            digest.update(f"{entry}:{os.stat(entry or '.').st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{entry}:-\n".encode())
    return digest.hexdigest()


def preload() -> None:
    """Import what commands use, without running any of it."""
    for package in PRELOADED_PACKAGES:
        module = importlib.import_module(package)
        for found in pkgutil.walk_packages(module.__path__, f"{package}."):
            if ".migrations" not in found.name:
                importlib.import_module(found.name)
    for name in PRELOADED_LIBRARIES:
        with contextlib.suppress(ImportError):  # psycopg: an optional driver
            importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # the models' mappers, built once instead of in every command
    from cxdesk.cli.main import prebuild

    prebuild()  # the click command tree: each child translates its own copy


class Server:
    """One listening socket; ``run`` until idle, stopped or stale."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = socket_path(folder)
        self.identity = identity()
        self.context = process_context()
        self.fingerprint = fingerprint()  # before the imports: a change during them counts
        self.started = time.time()
        self.served = 0
        self.idle_after = float(os.environ.get(IDLE_ENV) or IDLE_SECONDS)
        self.lock_fd = -1
        self.listener: socket.socket | None = None
        self.running = True

    def take_lock(self) -> bool:
        """Only one server per socket: the one holding ``<identity>.lock``."""
        self.lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.ftruncate(self.lock_fd, 0)
                os.write(self.lock_fd, str(os.getpid()).encode())  # who holds it
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)

    def listen(self) -> None:
        self.path.unlink(missing_ok=True)  # we hold the lock: whoever made it is gone
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self.listener = listener

    def run(self) -> None:
        assert self.listener is not None
        last = time.monotonic()
        while self.running:
            self.reap()
            left = self.idle_after - (time.monotonic() - last)
            if left <= 0:
                break
            ready, _w, _x = select.select([self.listener], [], [], min(left, 5.0))
            if not ready:
                continue
            try:
                connection, _address = self.listener.accept()
            except OSError:
                continue
            last = time.monotonic()
            try:
                self.handle(connection)
            except (OSError, EOFError, ValueError, KeyError, TypeError):
                pass  # a client that went away or spoke nonsense: the next one
            finally:
                connection.close()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.path.unlink(missing_ok=True)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)

    @staticmethod
    def reap() -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(5.0)
        credentials = connection.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
        _pid, uid, _gid = struct.unpack("3i", credentials)
        if uid != os.getuid():
            return
        request, fds = receive_message(connection, max_fds=3)
        try:
            operation = request.get("op")
            if operation == "status":
                send_message(connection, self.status())
            elif operation == "stop":
                self.running = False
                send_message(connection, {"status": "stopping", "pid": os.getpid()})
            elif operation == "run" and len(fds) == 3:
                self.start_command(connection, request, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def status(self) -> dict[str, Any]:
        return {
            "status": "serving",
            "pid": os.getpid(),
            "socket": str(self.path),
            "started": self.started,
            "served": self.served,
            "idle_after": self.idle_after,
        }

    def start_command(self, connection: socket.socket, request: dict[str, Any], fds: list[int]):
        if request.get("identity") != self.identity or request.get("context") != self.context:
            send_message(connection, {"status": "other"})  # another installation's client, or
            return  # a caller with other groups, limits... (``process_context``): run directly
        if fingerprint() != self.fingerprint:
            send_message(connection, {"status": "stale"})
            self.running = False
            return
        self.served += 1
        pid = os.fork()
        if pid == 0:
            run_child(self, connection, request, fds)


def run_child(server: Server, connection: socket.socket, request: dict[str, Any], fds: list[int]):
    """In the forked child: become the caller's process, wait for the go-ahead, run the CLI,
    report the exit code. Never returns."""
    code = 1
    try:
        if server.listener is not None:
            server.listener.close()
        os.close(server.lock_fd)  # the lock is the server's alone, even after it exits
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        connection.settimeout(None)
        send_message(connection, {"status": "started", "pid": os.getpid()})
        if connection.recv(1) != GO:
            os._exit(0)  # the client gave up before the go-ahead: it runs the command itself
        watch_caller(connection)
        become_caller(request, fds)
        code = run_command(request["argv"])
    except BaseException:  # noqa: BLE001  (the child must report and exit, whatever happened)
        traceback.print_exc()
    try:
        send_message(connection, {"exit": code})
    finally:
        os._exit(code)


def watch_caller(connection: socket.socket) -> None:
    """End the command with SIGHUP, as a command whose terminal hung up ends, when its client
    is gone without a word (killed with SIGKILL, say): the client sends nothing after the
    go-ahead, so the connection's end is its exit. A daemon thread of the child (which runs
    no other thread), blocked in ``recv`` until then."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while connection.recv(1024):
                pass
        os.kill(os.getpid(), signal.SIGHUP)  # handlers run as for a forwarded SIGHUP
        os.kill(os.getpid(), signal.SIGCONT)  # stopped (Ctrl-Z) when its client was killed

    threading.Thread(target=watch, name="cxdesk-caller-watch", daemon=True).start()


def become_caller(request: dict[str, Any], fds: list[int]) -> None:
    """The caller's fds 0-2 (with its encodings), environment, cwd, umask and argv; the process
    state a fresh ``cxdesk`` starts with."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    sys.argv = list(request["argv"])
    main = sys.modules["__main__"]
    main.__package__ = request.get("main_package")
    for fd, (name, mode) in enumerate((("stdin", "r"), ("stdout", "w"), ("stderr", "w"))):
        stream = _stream(fd, mode, request["streams"][fd])
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    import locale

    with contextlib.suppress(locale.Error):
        locale.setlocale(locale.LC_CTYPE, "")
    from cxdesk.cli.output import fresh_consoles
    from cxdesk.i18n import use_language
    from cxdesk.local_time import use_zone

    use_language(None)
    use_zone(None)
    fresh_consoles()


def _stream(fd: int, mode: str, spec: list[Any] | None) -> Any:
    if spec is None:
        return None
    encoding, errors, line_buffering, write_through = spec
    raw = open(fd, mode + "b", closefd=False)  # noqa: SIM115  (lives as long as the process)
    return io.TextIOWrapper(
        raw,
        encoding=encoding,
        errors=errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=write_through,
    )


def run_command(argv: list[str]) -> int:
    """``cxdesk argv[1:]`` as ``cxdesk.launch`` runs a CLI command; its exit code."""
    from cxdesk.launch import run_cli

    try:
        run_cli()
        code: int = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001  (what the interpreter would print, then exit 1)
        traceback.print_exc()
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    return code


def serve(folder_name: str) -> None:
    """The server process's whole life (``command_client.start_server`` runs it)."""
    if os.getpid() != os.getsid(0):
        os.setsid()  # no controlling terminal: a prompt reads the caller's stdin, not /dev/tty
    os.closerange(3, 1024)  # nothing a starting client had open stays open here
    server = Server(Path(folder_name))
    if not server.take_lock():
        return
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        preload()
        server.listen()
        server.run()
    except SystemExit:
        pass
    finally:
        server.close()


def _stop(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(0)
