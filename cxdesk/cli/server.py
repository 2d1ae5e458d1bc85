"""``cxdesk server``: the command server that makes scripted commands start at once
(``cxdesk.command_server``): its ``status``, ``start`` and ``stop``. These commands always run
in their own process (``cxdesk.launch.RUN_DIRECTLY``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from cxdesk.cli.common import console
from cxdesk.command_client import (
    SWITCH_ENV,
    Unusable,
    alive,
    ask,
    socket_directory,
    socket_path,
    start_server,
    switched_off,
)
from cxdesk.errors import DeskError
from cxdesk.i18n import N_, _, ngettext

START_WAIT = 120.0
"""Seconds ``server start`` waits for a new server to answer (it imports the CLI first)."""

server_app = typer.Typer(
    help=N_("The command server that makes commands start at once (status, start, stop)."),
    no_args_is_help=True,
)


def _folder() -> Path:
    try:
        return socket_directory()
    except Unusable as error:
        raise DeskError(
            _("the command server is not used: {reason}").format(reason=error)
        ) from error


def _answer(folder: Path, operation: str) -> dict[str, Any] | None:
    try:
        return ask(socket_path(folder), {"op": operation})
    except (OSError, EOFError, ValueError):
        return None


@server_app.command("status")
def server_status() -> None:
    """Whether a command server serves this installation, and since when."""
    if switched_off():
        console.print(
            _("Off ({variable}=off): every command runs on its own.").format(variable=SWITCH_ENV)
        )
        return
    folder = _folder()
    answer = _answer(folder, "status")
    if answer is None:
        console.print(
            _("Not running (the next command starts one): {path}").format(path=socket_path(folder))
        )
        return
    minutes = int((time.time() - float(answer["started"])) // 60)
    served = int(answer["served"])
    console.print(
        _(
            "Running: pid {pid}, {served}, up {minutes} min, exits after {idle} s idle: {path}"
        ).format(
            pid=answer["pid"],
            served=ngettext("{n} command served", "{n} commands served", served).format(n=served),
            minutes=minutes,
            idle=int(answer["idle_after"]),
            path=answer["socket"],
        )
    )


@server_app.command("start")
def server_start() -> None:
    """Start a command server now (commands start one on their own when none runs)."""
    if switched_off():
        raise DeskError(_("the command server is off ({variable}=off)").format(variable=SWITCH_ENV))
    folder = _folder()
    answer = _answer(folder, "status")
    if answer is None:
        start_server(folder)
        deadline = time.monotonic() + START_WAIT
        while answer is None and time.monotonic() < deadline:
            time.sleep(0.05)
            answer = _answer(folder, "status")
        if answer is None:
            raise DeskError(_("the command server did not start"))
    console.print(_("Running: pid {pid}").format(pid=answer["pid"]))


@server_app.command("stop")
def server_stop() -> None:
    """Stop this installation's command server (commands run on their own until one starts)."""
    folder = _folder()
    answer = _answer(folder, "stop")
    if answer is None:
        console.print(_("No command server running."))
        return
    pid = int(answer["pid"])
    while alive(pid):
        time.sleep(0.02)
    console.print(_("Stopped: pid {pid}").format(pid=pid))
