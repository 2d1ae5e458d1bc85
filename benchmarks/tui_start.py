"""Benchmark: from process start to the desk's first screen drawn, against a bare Textual app.

Run ``python -m benchmarks.tui_start`` with optional ``--runs N`` (default 7).

Each run is a fresh Python process, timed by the parent from spawn until the child reports
that its first screen has been drawn (headless, 100x32: the first screen's first refresh has
run), then exits. The two contenders alternate run by run so that a busy neighbour hurts
both alike; the figure is the median.

- cxdesk: what ``cxdesk run`` does (``cxdesk.launch.open_desk``) on a demo desk on SQLite
  built beforehand: the App paints its login screen, and opens the desk's database (settings,
  SQLAlchemy, the schema check) behind it while the user types. The figure is the moment the
  login screen is drawn and takes keys;
- baseline: a bare ``textual.app.App`` showing one ``Label``.

Target: cxdesk's median within 1.5x of the bare app's.

Two more figures from one run of the desk (``cxdesk run --user maya``, the password and Enter
sent as soon as the login screen takes keys, as a terminal's driver sends typed keys), each
from process start to a refresh of the queues screen, the password check excluded (argon2's
own CPU time, measured in the child around ``verify_password``/``verify_nobody`` in the thread
running them, is subtracted: its cost is a setting, not the desk's speed; the wrapper is put in
place as the app imports ``cxdesk.store.passwords``, so every module loads where the app loads
it):

- ``tui_start.desk_ready`` (issue 18): the expert's queues drawn with their rows and their open
  tickets: the screen's first fill (read lean, before the store has loaded: the estimate,
  availability and SLA columns show "…"). Target within 2x of the same baseline (a bare Textual
  app's first paint);
- ``tui_start.desk_complete``: every column filled (the store loaded, the tables read again
  through it). No target: reported.

The child marks each moment from the queues screen's own ``_show`` (after the refresh that
draws it), not from the pilot's key presses, which return only once the app is idle.

Every child runs from compiled bytecode, as an installed desk does (pip compiles a wheel's
modules when it installs them): the children write and read theirs in a cache of the run's
own (``PYTHONPYCACHEPREFIX``), filled by the warm-up runs, whatever ``PYTHONDONTWRITEBYTECODE``
says. With that variable set and the desk installed editable, every child compiled the
desk's modules from source again (about 40 ms of CPU at each start), which the bare app's
Textual, installed with its bytecode, never paid.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import figure, main_with_runs

RUNS = 7
TARGET = 1.5
READY_TARGET = 2.0
CHILD_TIMEOUT = 120.0

# "Drawn": the first screen's first refresh has happened (its call_after_refresh callbacks
# run); the child prints the line then and exits. The same hook for both contenders.
CXDESK_CHILD = textwrap.dedent(
    """
    from cxdesk.launch import open_desk
    from cxdesk.screens.login import LoginScreen

    _mount = LoginScreen.on_mount

    def on_mount(self):
        _mount(self)
        self.call_after_refresh(lambda: (print("drawn", flush=True), self.app.exit()))

    LoginScreen.on_mount = on_mount
    open_desk(None, headless=True, size=(100, 32))
    """
)

DESK_READY_CHILD = textwrap.dedent(
    """
    import importlib.util
    import sys
    import time
    from textual import events
    from cxdesk.launch import open_desk
    from cxdesk.screens.login import LoginScreen

    checking = [0.0]

    def timed(check):
        # The check's own CPU time (its thread's), not its wall time: work other threads do
        # meanwhile (the desk loading) is not subtracted.
        def timed_check(*args, **kwargs):
            started = time.thread_time()
            try:
                return check(*args, **kwargs)
            finally:
                checking[0] += time.thread_time() - started

        return timed_check

    def drawn(queues_screen):
        # A queues screen's _show: once its refresh has drawn a snapshot with rows, say
        # "ready" (the first time) and "complete" (every column: then exit).
        show = queues_screen._show
        said = set()

        def shown(self, snapshot):
            show(self, snapshot)
            complete = getattr(snapshot, "complete", True)  # main's has every column
            # Drawn: after the refresh that follows the one drawing the rows, in which the
            # tables have measured their new rows (cxdesk/widgets/table.py).
            for word in ("ready", "complete") if complete else ("ready",):
                if word not in said and snapshot.queues:
                    said.add(word)
                    self.call_after_refresh(
                        self.call_after_refresh, print, word, checking[0], flush=True
                    )
            if complete and snapshot.queues:
                self.call_after_refresh(self.call_after_refresh, self.app.exit)

        queues_screen._show = shown

    class Hooks:
        # Each wrapper goes in as its module is imported, where the app imports it.
        waiting = {"cxdesk.store.passwords", "cxdesk.screens.queues"}

        def find_spec(self, name, path, target=None):
            if name not in self.waiting:
                return None
            self.waiting.discard(name)  # the spec found below, without this hook
            spec = importlib.util.find_spec(name)
            run_module = spec.loader.exec_module

            def exec_module(module):
                run_module(module)
                if name == "cxdesk.store.passwords":
                    module.verify_password = timed(module.verify_password)
                    module.verify_nobody = timed(module.verify_nobody)
                else:
                    drawn(module.QueuesScreen)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Hooks())

    async def log_in(pilot):
        # The password and Enter as a terminal's driver delivers typed keys: sent one after
        # the other, not each after the app is idle again (as Pilot.press does: ~70 ms a key
        # on a loaded machine, which no desk sees).
        app = pilot.app
        while not isinstance(app.screen, LoginScreen):
            await pilot.pause(0.001)
        for key, char in [*((c, c) for c in "demo"), ("enter", "\\r")]:
            event = events.Key(key, char)
            event.set_sender(app)
            app._driver.send_message(event)

    open_desk("maya", headless=True, size=(100, 32), auto_pilot=log_in)
    """
)

BARE_CHILD = textwrap.dedent(
    """
    from textual.app import App
    from textual.widgets import Label

    class Bare(App):
        def compose(self):
            yield Label("Ask the Experts")

        def on_mount(self):
            self.call_after_refresh(lambda: (print("drawn", flush=True), self.exit()))

    Bare().run(headless=True, size=(100, 32))
    """
)


def time_child(code: str, env: dict[str, str], lines: int = 1) -> list[float]:
    """Seconds from spawning ``python -c code`` to each of its first ``lines`` lines (each
    "<word> [seconds]"), less the seconds the line reports after its word (time the child
    spent on what is not measured)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    timer = threading.Timer(CHILD_TIMEOUT, child.kill)  # a child that never draws: no hang
    timer.start()
    found = []
    for _ in range(lines):
        line = child.stdout.readline()
        elapsed = time.perf_counter() - started
        words = line.split()
        if not words:
            break
        found.append(elapsed - sum(float(word) for word in words[1:]))
    _, errors = child.communicate(timeout=CHILD_TIMEOUT)
    timer.cancel()
    if len(found) < lines or child.returncode != 0:
        raise RuntimeError(f"the app did not draw what is measured:\n{errors}")
    return found


def run(
    *,
    runs: int = RUNS,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-tui-") as folder:
        env = {
            **os.environ,
            "CXDESK_HOME": folder,
            "CXDESK_DATABASE_URL": f"sqlite:///{Path(folder) / 'desk.db'}",
            "CXDESK_PASSWORD_HASH_COST": "cheapest",
            "PYTHONPYCACHEPREFIX": str(Path(folder) / "bytecode"),  # the module docstring
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [sys.executable, "-m", "cxdesk.cli.main", "demo"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        log(f"TUI start: {runs} runs each, alternating ...")
        time_child(CXDESK_CHILD, env)  # warm the OS file cache for both
        time_child(BARE_CHILD, env)
        time_child(DESK_READY_CHILD, env, lines=2)
        cxdesk, ready, complete, bare = [], [], [], []
        for _ in range(runs):
            cxdesk += time_child(CXDESK_CHILD, env)
            ready_then_complete = time_child(DESK_READY_CHILD, env, lines=2)
            ready.append(ready_then_complete[0])
            complete.append(ready_then_complete[1])
            bare += time_child(BARE_CHILD, env)
    return [
        figure(
            "tui_start.first_screen",
            value=statistics.median(cxdesk) * 1000,
            baseline=statistics.median(bare) * 1000,
            unit="ms",
            at_most_ratio=TARGET,
        ),
        figure(
            "tui_start.desk_ready",
            value=statistics.median(ready) * 1000,
            baseline=statistics.median(bare) * 1000,
            unit="ms",
            at_most_ratio=READY_TARGET,
        ),
        figure(
            "tui_start.desk_complete",
            value=statistics.median(complete) * 1000,
            baseline=statistics.median(bare) * 1000,
            unit="ms",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return main_with_runs(__doc__, run, RUNS, argv, what="app")


if __name__ == "__main__":
    sys.exit(main())
