"""The client side of the command server (``cxdesk.command_server``), and what both sides share.

``cxdesk`` hands a CLI command line to a pre-loaded server process over a per-user Unix socket,
as Mercurial's chg does: argv, cwd, the whole environment, the umask and its own fds 0, 1 and 2
(``SCM_RIGHTS``), so the command's output goes straight to the caller's terminal or pipes;
what the server cannot hand over (groups, limits, namespaces: ``process_context``) must be the
server's own, else the command runs directly. The server forks a child per command; this
process waits for its exit code and forwards SIGINT, SIGTERM and SIGHUP to it, and
stops and continues it with itself (Ctrl-Z, ``fg``).

Never lost, never run twice: the server's child first says it has started (its pid), then waits
for this client's go-ahead before it runs anything. Until the go-ahead is sent the command has
not run, and any failure (no server, a stale one, a refused socket folder, a timeout) means
"run it directly". Once it is sent, a broken connection is one ``Error:`` line (exit 1), never
a second run.

Stdlib only: this is the path every scripted command takes before anything else loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
from pathlib import Path

TYPE_CHECKING = False  # not ``typing``'s: this is on every scripted command's path
if TYPE_CHECKING:
    from typing import Any

SWITCH_ENV = "CXDESK_COMMAND_SERVER"
"""``off`` (or ``0``, ``no``, ``false``): every command runs in its own process, no server."""
DIRECTORY_ENV = "CXDESK_COMMAND_SERVER_DIR"
"""The socket folder (tests, or a user who wants it elsewhere); it must be private."""
IDLE_ENV = "CXDESK_COMMAND_SERVER_IDLE"
"""Seconds without a command after which the server exits (default ``IDLE_SECONDS``)."""
IDLE_SECONDS = 300.0
ANSWER_TIMEOUT = 10.0
"""Seconds a client waits for the server to take its command before running it directly."""
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LIMITS = tuple(getattr(resource, name) for name in sorted(dir(resource)) if name[:7] == "RLIMIT_")
NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
_HEADER = struct.Struct("!I")
GO = b"g"


class Unusable(Exception):
    """The socket folder cannot be trusted (its text says why): no server is used."""


def switched_off(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get(SWITCH_ENV, "").strip().lower() in {"off", "0", "no", "false"}


def identity() -> str:
    """This installation: the interpreter and its import path. A server serves only clients
    of the same identity (each virtual environment or checkout has its own server)."""
    text = json.dumps([sys.executable, sys.version, sys.path, list(sys.flags)])
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def process_context() -> dict[str, Any]:
    """What a command gets from the process that runs it, which a server cannot hand over:
    the user and groups (``sg``, ``newgrp``), the resource limits (``ulimit``), the nice
    value, the CPUs (``taskset``) and the namespaces (a container, ``unshare``). A server
    serves only callers whose context is its own; the others run their command directly."""
    namespaces: dict[str, str | None] = {}
    for name in NAMESPACES:
        try:
            namespaces[name] = os.readlink(f"/proc/self/ns/{name}")
        except OSError:
            namespaces[name] = None
    return {
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
        "groups": sorted(os.getgroups()),
        "limits": [list(resource.getrlimit(limit)) for limit in LIMITS],
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "cpus": sorted(os.sched_getaffinity(0)),
        "namespaces": namespaces,
    }


def socket_directory(*, create: bool = True) -> Path:
    """The folder of this user's sockets: ``CXDESK_COMMAND_SERVER_DIR``, else
    ``$XDG_RUNTIME_DIR/cxdesk``, else ``cxdesk-<uid>`` in the temp folder. Made 0700 when
    missing; refused (``Unusable``) when it is a symlink, not a folder, someone else's, or
    open to the group or others."""
    chosen = os.environ.get(DIRECTORY_ENV)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if chosen:
        folder = Path(chosen)
    elif runtime and os.path.isdir(runtime):
        folder = Path(runtime) / "cxdesk"
    else:
        folder = Path(os.environ.get("TMPDIR") or "/tmp") / f"cxdesk-{os.getuid()}"
    if create:
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise Unusable(f"{folder}: {error.strerror}") from error
    try:
        found = os.lstat(folder)
    except OSError as error:
        raise Unusable(f"{folder}: {error.strerror}") from error
    if not stat.S_ISDIR(found.st_mode):
        raise Unusable(f"{folder} is not a folder")
    if found.st_uid != os.getuid():
        raise Unusable(f"{folder} belongs to another user (uid {found.st_uid})")
    if found.st_mode & 0o077:
        raise Unusable(f"{folder} is open to other users (mode {stat.S_IMODE(found.st_mode):o})")
    return folder


def socket_path(folder: Path) -> Path:
    return folder / f"{identity()}.sock"


def process_state(pid: int) -> str:
    """``/proc``'s one-letter state of ``pid`` (``T`` stopped, ``S`` sleeping, ``Z`` zombie...);
    empty when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: a child of this process is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:  # not this process's child
        return process_state(pid) not in ("Z", "")


# -- messages: a 4-byte length, then JSON ------------------------------------------------------


def send_message(
    connection: socket.socket, message: dict[str, Any], fds: list[int] | None = None
) -> None:
    payload = json.dumps(message).encode("ascii")  # ensure_ascii keeps lone surrogates
    header = _HEADER.pack(len(payload))
    if fds:
        socket.send_fds(connection, [header], fds)
        connection.sendall(payload)
    else:
        connection.sendall(header + payload)


def _exactly(connection: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = connection.recv(min(size, 1 << 16))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive_message(
    connection: socket.socket, *, max_fds: int = 0
) -> tuple[dict[str, Any], list[int]]:
    """The next message and the fds that came with it; ``EOFError`` when the peer is gone."""
    if max_fds:
        header, fds, flags, _address = socket.recv_fds(connection, _HEADER.size, max_fds)
        if flags & socket.MSG_CTRUNC:
            for fd in fds:
                os.close(fd)
            raise EOFError
        if not header:
            raise EOFError
        header += _exactly(connection, _HEADER.size - len(header))
    else:
        header, fds = _exactly(connection, _HEADER.size), []
    (size,) = _HEADER.unpack(header)
    return json.loads(_exactly(connection, size)), fds


def ask(path: Path, message: dict[str, Any], *, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
    """One question (``status``, ``stop``) to the server at ``path``; ``OSError`` or
    ``EOFError`` when none answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(path))
        send_message(connection, message)
        return receive_message(connection)[0]


# -- running a command through the server ----------------------------------------------------


def _stream_options(stream: Any) -> list[Any] | None:
    if stream is None:
        return None
    return [stream.encoding, stream.errors, stream.line_buffering, stream.write_through]


def _request(argv: list[str]) -> dict[str, Any]:
    mask = os.umask(0)
    os.umask(mask)
    main = sys.modules.get("__main__")
    return {
        "op": "run",
        "identity": identity(),
        "context": process_context(),
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": mask,
        "main_package": getattr(main, "__package__", None),
        "streams": [_stream_options(s) for s in (sys.stdin, sys.stdout, sys.stderr)],
    }


def start_server(folder: Path) -> None:
    """Start a server for this installation in the background and return at once: a new
    session, /dev/null for its standard streams, no other fd inherited, so a caller capturing
    this process's output never waits for the server."""
    import subprocess

    boot = (
        "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
        "from cxdesk.command_server import serve; serve(sys.argv[1])"
    )
    subprocess.Popen(
        [sys.executable, "-c", boot, str(folder), json.dumps(sys.path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )


def broken_line(reason: str) -> str:
    from cxdesk.i18n import _

    return _(
        "Error: the command server lost this command ({reason}); it was not run again, "
        "and it may have done part of its work"
    ).format(reason=reason)


def run_through_server(argv: list[str]) -> int | None:
    """Run ``cxdesk argv[1:]`` in the command server; its exit code, or None when the server
    did not take it (then the caller runs it directly). Starts a server when none answers."""
    if switched_off():
        return None
    try:
        folder = socket_directory()
        for fd in (0, 1, 2):
            os.fstat(fd)
    except (Unusable, OSError):
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(ANSWER_TIMEOUT)
        try:
            connection.connect(str(socket_path(folder)))
        except OSError:
            start_server(folder)
            return None
        try:
            send_message(connection, _request(argv), [0, 1, 2])
            answer, _fds = receive_message(connection)
            if answer.get("status") != "started":
                if answer.get("status") == "stale":
                    start_server(folder)
                return None
            pid = int(answer["pid"])
        except (OSError, EOFError, ValueError, KeyError):
            return None  # the go-ahead was not sent: the command has not run
        return _go_and_wait(connection, pid)
    finally:
        connection.close()


def _go_and_wait(connection: socket.socket, pid: int) -> int | None:
    """Let ``pid`` run the command and forward signals to it until it says how it exited;
    None when the go-ahead could not be given (the command did not run)."""
    received: list[int] = []
    pending: list[int] = []  # arrived before the go-ahead: sent on once it is on its way
    went: list[bool] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        if not went:
            pending.append(signum)
            return
        with contextlib.suppress(OSError):  # it has just ended
            os.kill(pid, signum)

    def suspend(_signum: int, _frame: object) -> None:
        """Ctrl-Z: stop the command (SIGSTOP: the server's process group is orphaned, so the
        kernel drops a SIGTSTP sent to it), stop here; on ``fg``/``bg``, continue both."""
        if went:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # returns once continued
        signal.signal(signal.SIGTSTP, suspend)
        if went:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    signal.signal(signal.SIGTSTP, suspend)
    # From before the go-ahead is sent, a signal goes to the command: the command may be
    # running (and in the caller's folder) the moment the byte is written, so a Ctrl-Z then must
    # stop it too (a caller stopped alone, its command running on, was seen under load).
    went.append(True)
    try:
        connection.sendall(GO)
    except OSError:
        return None
    while pending:  # arrived since the handlers were set: the command ends by it
        with contextlib.suppress(OSError):
            os.kill(pid, pending.pop(0))
    connection.settimeout(None)
    try:
        answer, _fds = receive_message(connection)
        return int(answer["exit"])
    except (OSError, EOFError, ValueError, KeyError) as error:
        if received:  # the command ended by the signal forwarded to it: so does this process
            if received[-1] == signal.SIGINT:
                return 130
            signal.signal(received[-1], signal.SIG_DFL)
            os.kill(os.getpid(), received[-1])
        reason = "connection closed" if isinstance(error, EOFError) else str(error)
        print(broken_line(reason), file=sys.stderr)
        return 1
