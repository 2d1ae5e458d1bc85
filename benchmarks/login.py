"""Login timing: a failed login for an unknown username against one for a real user.

``cxdesk.store.logins.check_password`` checks an unknown name against a decoy hash at the
current cost, so the time of a refusal does not tell whether the name exists. This times
refused logins on a SQLite desk at the default argon2 cost, alternating a real user with a wrong
password (the baseline), an unknown username, and a deactivated user, two ways:

- in one process, through ``check_password``: each attempt from its own source, so every one is
  a first failure (checked, then counted) and no failure delay applies;
- from fresh processes, the CLI's real case (a new process per command): each attempt is the
  first check of a process of its own, timed in that process. Whatever a process does once (a
  decoy hash made at run time cost one argon2 hash more per command) shows here and not in
  one process.

Each attempt is timed by the CPU time of its process (``time.process_time``: every thread,
argon2's four lanes included), not the wall clock: on a shared 2-core machine a 4-lane argon2
check waits for the cores 0.5-1 s beside its ~0.23 s of work, and two checks in a row differed
by 0.81-1.44x on the wall clock against 0.98-1.04x in CPU time (the work, which is what would
differ if a refusal skipped or added a hash; the three refusals run the same statements, which
``tests/test_tui_lean.py`` checks, so they wait for the same I/O). ``runs`` rounds (``fresh_runs``
from processes), each timing the three kinds one after the other, the order turning round by
round; a figure's ratio is the median of the per-round ratios to the baseline's attempt of the
same round (``common.paired_figure``). A login that skipped the hash for an unknown name shows
at once (ratio ~0.02; ``tests/test_login_benchmark.py``).
Target: an unknown or deactivated name takes at least 90% of the baseline's time (faster would
be the oracle), and at most 110% from fresh processes (slower is the same oracle).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import format_table, paired_figure
from cxdesk.errors import PermissionDenied
from cxdesk.store import directory
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.logins import check_password
from cxdesk.store.migrate import upgrade

RUNS = 15
FRESH_RUNS = 9
NAMES = ("maya", "nobody-here", "gone")  # the baseline first


# One refused login in a process of its own, as each CLI command is: the CPU time of its
# password check alone (logins.check_password, what `cxdesk login` and `--as` run), since the
# interpreter's start-up, the same for every name, varies by seconds on a loaded machine.
FRESH_CHILD = """
import contextlib, sys, time
from cxdesk.errors import PermissionDenied
from cxdesk.store.db import make_engine
from cxdesk.store.logins import check_password
engine = make_engine(sys.argv[1])
started = time.process_time()
with contextlib.suppress(PermissionDenied):
    check_password(engine, sys.argv[2], "wrong", source=sys.argv[3])
print(time.process_time() - started)
"""


def time_fresh_refusal(url: str, username: str, source: str) -> float:
    """CPU seconds a fresh process's first (refused) password check of ``username`` takes."""
    done = subprocess.run(
        [sys.executable, "-c", FRESH_CHILD, url, username, source],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return float(done.stdout.strip())


def _rounds(rounds: int, attempt: Callable[[str, int], float]) -> dict[str, list[float]]:
    """Each name's time in each of ``rounds`` rounds (``attempt(name, round)``), the names in
    turn, the order rotated by one each round."""
    times: dict[str, list[float]] = {username: [] for username in NAMES}
    for number in range(rounds):
        shift = number % len(NAMES)
        for username in NAMES[shift:] + NAMES[:shift]:
            times[username].append(attempt(username, number))
    return times


def _pairs(times: dict[str, list[float]], username: str) -> list[tuple[float, float]]:
    return list(zip(times[username], times[NAMES[0]], strict=True))


def run(runs: int = RUNS, fresh_runs: int = FRESH_RUNS) -> list[dict[str, Any]]:
    """The figures; ``fresh_runs`` 0 leaves out the fresh processes' ones."""
    saved_cost = os.environ.pop("CXDESK_PASSWORD_HASH_COST", None)  # the real, default cost
    try:
        with tempfile.TemporaryDirectory(prefix="cxdesk-bench-login-") as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'desk.db'}")
            upgrade(engine)
            with transaction(engine) as session:
                for username in ("maya", "gone"):
                    user = directory.add_user(
                        session, actor=None, username=username, name=username.title(),
                        email=f"{username}@example.com", password="right", role="expert",
                    )  # fmt: skip
                    user.active = username != "gone"

            def attempt(username: str, number: int) -> float:
                started = time.process_time()
                with contextlib.suppress(PermissionDenied):  # every one is refused
                    check_password(engine, username, "wrong", source=f"bench-{number}")
                return time.process_time() - started

            _rounds(1, attempt)  # warm-up: the hasher, the statements, the pages read
            times = _rounds(runs, lambda username, number: attempt(username, number + 1))
            fresh = _rounds(
                fresh_runs,  # a first failure every time: a source of its own
                lambda username, number: time_fresh_refusal(
                    str(engine.url), username, f"bench-fresh-{number}"
                ),
            )
            engine.dispose()
    finally:
        if saved_cost is not None:
            os.environ["CXDESK_PASSWORD_HASH_COST"] = saved_cost
    figures = [
        paired_figure("refused_login_unknown_user_s", _pairs(times, "nobody-here"), unit="s",
                      target_ratio=0.9),
        paired_figure("refused_login_deactivated_user_s", _pairs(times, "gone"), unit="s",
                      target_ratio=0.9),
    ]  # fmt: skip
    if not fresh_runs:
        return figures
    return figures + [
        paired_figure("refused_login_unknown_user_fresh_not_faster_s",
                      _pairs(fresh, "nobody-here"), unit="s", target_ratio=0.9),
        paired_figure("refused_login_unknown_user_fresh_not_slower_s",
                      _pairs(fresh, "nobody-here"), unit="s", at_most_ratio=1.1),
        paired_figure("refused_login_deactivated_user_fresh_s", _pairs(fresh, "gone"), unit="s",
                      target_ratio=0.9),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help="attempts of each kind")
    parser.add_argument(
        "--fresh-runs", type=int, default=FRESH_RUNS, help="fresh-process attempts of each kind"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.fresh_runs < 1:
        parser.error("--runs and --fresh-runs must be at least 1")
    print(
        f"login: {args.runs} refused logins of each kind in one process, {args.fresh_runs} from"
        " fresh processes (baseline: a real user with a wrong password)"
    )
    print(format_table(run(runs=args.runs, fresh_runs=args.fresh_runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
