"""Starting things at the same instant from threads, for the tests of collisions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy import Engine, text

Item = TypeVar("Item")


def at_once(action: Callable[[Item], object], items: Sequence[Item]) -> list[BaseException]:
    """Run ``action(item)`` for every item, each in its own thread, all released together by
    a barrier; return what they raised (empty when all went well). Waits up to a minute."""
    barrier = threading.Barrier(len(items))
    errors: list[BaseException] = []

    def run(item: Item) -> None:
        try:
            barrier.wait()
            action(item)
        except BaseException as exc:  # returned to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if any(thread.is_alive() for thread in threads):
        errors.append(TimeoutError("a thread still runs after a minute"))
    return errors


Held = tuple[Callable[..., object], threading.Event, threading.Event]


def held_in(thread_name: str, function: Callable[..., object]) -> Held:
    """``function`` wrapped so that, called from the thread named ``thread_name``, it returns
    only once released: (the wrapper, set when that call is made, set to release it)."""
    reached, release = threading.Event(), threading.Event()

    def held(*args: object, **kwargs: object) -> object:
        found = function(*args, **kwargs)
        if threading.current_thread().name == thread_name:
            reached.set()
            release.wait(120)
        return found

    return held, reached, release


def until_waiting_on_lock(engine: Engine, thread: threading.Thread, locktype: str) -> None:
    """Return once some PostgreSQL session waits on a lock of ``locktype`` (``advisory``,
    ``transactionid``...) or ``thread`` has ended (it never had to wait), or after 2 minutes."""
    deadline = time.monotonic() + 120
    with engine.connect() as watcher:
        while thread.is_alive() and time.monotonic() < deadline:
            waiting = watcher.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = :t AND NOT granted"),
                {"t": locktype},
            ).scalar_one()
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
