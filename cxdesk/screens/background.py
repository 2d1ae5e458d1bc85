"""The one way the desk's screens, dialogs and app do blocking work (a database read or write,
a file written) off Textual's event loop: ``Background.in_thread``.

``self.in_thread(job, then, group=...)`` runs ``job()`` in a thread worker. Its result comes
back to ``then(result)`` on the event loop, through the worker's own ``Worker.StateChanged``
message, only if the worker was not cancelled and ``self`` (a screen, a dialog, a widget or the
app mixing in ``Background``) is still mounted. ``done()``, if given, runs once the job ended
either way (a count of reads still running).

- A read (``reading=True``) is a worker of ``self``: one whose screen was closed, or replaced by
  a newer one of the same ``group`` (``exclusive``, the default: typing in a filter), is
  cancelled and applies nothing.
- A write (any other job) is a worker of the app, never cancelled by its screen closing or by a
  newer job: its failure is always said (by ``self`` while it is open, else by the app's
  ``show_failure``), unless its ``failed`` is ``ignore_failure``. An ``exclusive`` write (the
  default) is not started again while it runs (a second Enter, a close then Escape): one
  ticket, one outcome said; ``exclusive=False`` writes run side by side.

An exception out of ``job`` is handled in one place, ``Background.on_worker_state_changed``:
``failure_of`` makes it one line (a ``DeskError``'s own message; a driver error as the store
says it, ``driver_error``: "Database error: ..."; anything else, a bug, is logged with its
traceback), and ``show_failure`` shows it (a notification; ``DeskScreen`` shows a read's
unreachable database as its one line instead); a job's ``failed`` callback, if given, shows it
its own way (inside a dialog). Never a traceback on screen, never the app ended.

Textual's quirks this relies on (Textual 8.2, ``textual/worker.py``): ``StateChanged`` does not
bubble, it goes to the node that ran the worker (so every such node mixes this in); a
cancelled thread worker is marked CANCELLED at once while its thread runs on (threads cannot be
stopped: a long job checks ``cancelled()``), and never becomes SUCCESS; a node's workers are
cancelled when it is removed, and a closed node's messages are dropped; ``exit_on_error=False``
keeps a failed worker from ending the app.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from textual.worker import Worker, WorkerState, get_current_worker

from cxdesk.errors import DeskError
from cxdesk.i18n import _
from cxdesk.text import printable

if TYPE_CHECKING:
    from textual.dom import DOMNode

    _Node = DOMNode
else:
    _Node = object

logger = logging.getLogger(__name__)
Result = TypeVar("Result")
Severity = Literal["information", "warning", "error"]
_ENDED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


@dataclass(frozen=True)
class Failure:
    """A job that raised: the error, its one line for the user, and what it was."""

    error: BaseException
    line: str
    unreachable: bool
    """The desk database could not be used (it may well work again soon)."""
    reading: bool
    """The job only read (``in_thread(reading=True)``): nothing was left undone."""
    severity: Severity = "error"


@dataclass(frozen=True)
class _Job(Generic[Result]):
    owner: Background
    """The node that asked for the job (the worker's own node, or the app for a write)."""
    then: Callable[[Result], object] | None
    done: Callable[[], object] | None
    failed: Callable[[Failure], object] | None
    reading: bool
    severity: Severity


def ignore_failure(failure: Failure) -> None:
    """A quiet job's ``failed``: shown nowhere (a bug in it is still logged)."""


def cancelled() -> bool:
    """Inside a job: whether its worker was cancelled (a newer read replaced it, its screen
    closed); a job doing several steps returns early when it is."""
    return get_current_worker().is_cancelled


def cancel_event() -> threading.Event:
    """Inside a job that loops until cancelled (the app's change watcher, delivery): set once
    it is; ``cancel_event().wait(seconds)`` sleeps between rounds."""
    return get_current_worker().cancelled_event


def _unreachable(error: BaseException) -> bool:
    if "cxdesk.store.db" not in sys.modules:  # the store not loaded: a lean read's, if any
        from cxdesk.store.lean import driver_unreachable

        return driver_unreachable(error)
    from cxdesk.store.db import is_unreachable

    return is_unreachable(error)


def _database_error(error: BaseException) -> bool:
    """A driver error (SQLAlchemy's or the DBAPI's) that no store function turned into a
    ``DeskError``."""
    sqlalchemy = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy is not None and isinstance(error, sqlalchemy.SQLAlchemyError):
        return True
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(error, sqlite3.Error)


def failure_of(error: BaseException, *, reading: bool, severity: Severity = "error") -> Failure:
    """The one line a failed job shows; a bug (anything but a refusal or the database) is
    logged with its traceback."""
    unreachable = _unreachable(error)
    if isinstance(error, DeskError):
        line = str(error)
    elif unreachable or _database_error(error):  # said as the store says it (``driver_error``)
        from cxdesk.store.lean import driver_error

        line = str(driver_error(getattr(error, "orig", None) or error))
        if unreachable:  # said on screen; the change watcher logs the outage itself
            logger.info("background job: %s", line)
        else:
            logger.warning("background job: %s", line, exc_info=error)
    else:
        logger.error("background job failed", exc_info=error)
        line = _("Unexpected error ({kind}: {error})").format(
            kind=type(error).__name__, error=error
        )
    return Failure(error, printable(line, lines=False), unreachable, reading, severity)


class Background(_Node):
    """Mixed into a screen, dialog, widget or app: ``in_thread`` and the one handler of its
    workers' ends."""

    def in_thread(
        self,
        job: Callable[[], Result],
        then: Callable[[Result], object] | None = None,
        *,
        group: str,
        exclusive: bool = True,
        reading: bool = False,
        done: Callable[[], object] | None = None,
        failed: Callable[[Failure], object] | None = None,
        severity: Severity = "error",
        unless_running: bool = False,
    ) -> Worker[Result] | None:
        """Run ``job`` in a thread worker; ``then`` its result on the event loop (see the
        module's docstring). ``exclusive``: a newer read of ``group`` cancels an older one; a
        write of ``group`` is not started (None) while one runs. ``unless_running``: nothing
        is started (None) while a job of ``group`` runs - for a poll, which would otherwise
        cancel each read slower than its interval and show nothing at all."""
        runner = self if reading or not isinstance(self.app, Background) else self.app
        if not reading and exclusive:
            exclusive, unless_running = False, True
        if unless_running and any(
            job.owner is self and worker.group == group and worker.is_running
            and not worker.is_cancelled
            for worker, job in runner._background_jobs().items()
        ):  # fmt: skip
            return None
        worker: Worker[Result] = runner.run_worker(
            job,
            name=getattr(job, "__name__", group),
            group=group,
            exclusive=exclusive,
            thread=True,
            exit_on_error=False,
        )
        runner._background_jobs()[worker] = _Job(self, then, done, failed, reading, severity)
        return worker

    def _background_jobs(self) -> dict[Worker[Any], _Job[Any]]:
        jobs: dict[Worker[Any], _Job[Any]] | None = self.__dict__.get("_jobs_in_thread")
        if jobs is None:
            jobs = self.__dict__["_jobs_in_thread"] = {}
        return jobs

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a job's end is handled: its result shown, or its error (a write's
        even once its screen closed: by the app, ``self`` here)."""
        if event.state not in _ENDED:
            return
        job = self._background_jobs().pop(event.worker, None)
        if job is None or not self.is_attached:
            return  # not a job of ``in_thread``, or the screen of its read was closed
        worker, open_ = event.worker, job.owner.is_attached
        if event.state == WorkerState.ERROR and worker.error is not None:
            failure = failure_of(worker.error, reading=job.reading, severity=job.severity)
            if open_:
                (job.failed or job.owner.show_failure)(failure)
            elif job.failed is not ignore_failure:  # a write whose screen closed
                self.show_failure(failure)
        elif event.state == WorkerState.SUCCESS and open_ and not worker.is_cancelled and job.then:
            job.then(worker.result)
        if open_ and job.done is not None:
            job.done()

    def show_failure(self, failure: Failure) -> None:
        """Show a failed job's one line (a notification, by default)."""
        self.app.notify(failure.line, severity=failure.severity, markup=False)
