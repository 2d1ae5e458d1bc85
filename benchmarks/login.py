"""Login timing: a failed login for an unknown username against one for a real user.

``cxdesk.store.logins.check_password`` checks an unknown name against a decoy hash at the
current cost, so the time of a refusal does not tell whether the name exists. This times
refused logins through it on a SQLite desk at the default argon2 cost, alternating a real user
with a wrong password (the baseline), an unknown username, and a deactivated user; each attempt
comes from its own source, so every one is a first failure (checked, then counted) and no
failure delay applies. Medians of ``runs`` attempts each.

Target: an unknown name takes at least 90% of the baseline's time (faster would be the oracle).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import figure, format_table
from cxdesk.errors import PermissionDenied
from cxdesk.store import directory
from cxdesk.store.db import make_engine, transaction
from cxdesk.store.logins import check_password
from cxdesk.store.migrate import upgrade

RUNS = 15


def run(runs: int = RUNS) -> list[dict[str, Any]]:
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
            times: dict[str, list[float]] = {"maya": [], "nobody-here": [], "gone": []}
            for attempt in range(runs + 1):  # the first round warms up (the decoy hash)
                for username, spent in times.items():
                    started = time.perf_counter()
                    with contextlib.suppress(PermissionDenied):  # every one is refused
                        check_password(engine, username, "wrong", source=f"bench-{attempt}")
                    if attempt:
                        spent.append(time.perf_counter() - started)
            engine.dispose()
    finally:
        if saved_cost is not None:
            os.environ["CXDESK_PASSWORD_HASH_COST"] = saved_cost
    known = statistics.median(times["maya"])
    return [
        figure("refused_login_unknown_user_s", value=statistics.median(times["nobody-here"]),
               baseline=known, unit="s", target_ratio=0.9),
        figure("refused_login_deactivated_user_s", value=statistics.median(times["gone"]),
               baseline=known, unit="s", target_ratio=0.9),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=RUNS, help="attempts of each kind")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(f"login: {args.runs} refused logins of each kind (baseline: a real user)")
    print(format_table(run(runs=args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
