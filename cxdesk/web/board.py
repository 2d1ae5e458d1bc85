"""``GET /board``: the hall board on the public web server, for a screen in the waiting area.

The page is plain HTML in large type (``?fontsize=`` sets the base size in pixels, a whole
number within ``FONT_MIN``..``FONT_MAX``) with its style and a few lines of script inline:
nothing is loaded from anywhere else, and the Content-Security-Policy allows only that script
(by its hash) and requests to this server. The script asks ``/board/rows`` for the board's
rows every ``POLL_SECONDS`` and swaps them in when they changed; without script the page
reloads itself (a ``<noscript>`` refresh).

A short poll rather than server-sent events: the server runs requests on a pool of a few
threads (``ServerSettings.threads``, 8) and closes a connection idle past its read timeout, so
an event stream would hold a thread per hall screen for as long as it is open, and eight
screens would starve the surveys and Twilio's webhook. A poll holds a thread for the
milliseconds of one reply. The rows are read from the desk and rendered at most once per
``FRESH_SECONDS`` whatever the number of screens (``HallBoardPages.rows``: one read under a
lock; meanwhile the others hand out the rows read before).

What the board shows, and what it never shows (surnames, keys, contacts): ``store.hall``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache

from sqlalchemy import Engine

from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.store.db import read_session
from cxdesk.store.hall import HallBoard, hall_board
from cxdesk.store.waiting import wait_in_words
from cxdesk.web.pages import render, template_source

BOARD_PATH = "/board"
ROWS_PATH = "/board/rows"
FONT_PARAM = "fontsize"
FONT_DEFAULT, FONT_MIN, FONT_MAX = 32, 12, 160
"""Pixels: the base size of the page's type (headings are larger)."""
POLL_SECONDS = 2
FRESH_SECONDS = 1.0
"""The rows are read again at most this often."""
NOSCRIPT_REFRESH = 30
SCRIPT = "board.js"


class FontSizeRefused(ValueError):
    """``?fontsize=`` is not a whole number within the bounds: the 400 page's message."""


def font_size(raw: str | None) -> int:
    """The page's base font size from the query's value (default when absent)."""
    if raw is None or raw == "":
        return FONT_DEFAULT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not (
        FONT_MIN <= int(raw) <= FONT_MAX
    ):
        raise FontSizeRefused(
            _("fontsize must be a whole number of pixels from {low} to {high}.").format(
                low=FONT_MIN, high=FONT_MAX
            )
        )
    return int(raw)


@cache
def _script() -> tuple[str, str]:
    """The page's script and its CSP source (``'sha256-...'``), read once."""
    text = template_source(SCRIPT)
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"'sha256-{digest}'"


def board_policy() -> str:
    """The Content-Security-Policy of the board page: its own inline style and script only."""
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src {_script()[1]}; connect-src 'self'; img-src 'none'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def rows_html(board: HallBoard, updated: datetime) -> str:
    waiting = [
        {"customer": w.customer, "team": w.team, "position": w.position,
         "wait": wait_in_words(w.wait_minutes)}
        for w in board.waiting
    ]  # fmt: skip
    serving = [{"customer": s.customer, "expert": s.expert, "team": s.team} for s in board.serving]
    return render(
        "board_rows.html",
        waiting=waiting,
        serving=serving,
        updated=updated.astimezone().strftime("%H:%M"),
    )


def board_page(rows: str, fontsize: int) -> str:
    return render(
        "board.html",
        rows=rows,
        fontsize=fontsize,
        poll_ms=POLL_SECONDS * 1000,
        refresh=NOSCRIPT_REFRESH,
        script=_script()[0],
    )


class HallBoardPages:
    """The board's rows for every viewer, read and rendered at most once per ``fresh``
    seconds; thread-safe (the server's pool calls it at once from several threads)."""

    def __init__(
        self,
        engine: Engine,
        *,
        fresh: float = FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.engine = engine
        self.fresh = fresh
        self.clock = clock
        self.reads = 0
        """How many times the desk was read (tests count them)."""
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._html = ""
        self._failure: DeskError | None = None

    def rows(self) -> str:
        """The rows' HTML; a ``DeskError`` when the desk could not be read (the failure too is
        kept for ``fresh`` seconds, so a desk that is down is not asked by every viewer).

        While one thread reads, the others hand out the rows read before instead of waiting
        (a hung database must not take the whole pool); only the very first read is waited
        for."""
        if not self._lock.acquire(blocking=not self._html):
            return self._html
        try:
            if self.clock() - self._read_at >= self.fresh:
                self._failure = None
                try:
                    with read_session(self.engine) as session:
                        board = hall_board(session)
                    self._html = rows_html(board, datetime.now().astimezone())
                    self.reads += 1
                except DeskError as exc:
                    self._failure = exc
                self._read_at = self.clock()
            if self._failure is not None:  # a new one: re-raising one would grow its traceback
                raise DeskError(str(self._failure))
            return self._html
        finally:
            self._lock.release()
