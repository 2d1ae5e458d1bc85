"""Starting things at the same instant from threads, for the tests of collisions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

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
