"""Benchmark: a CLI command as a whole process, against ``python -c "import sqlite3"``.

Run ``python -m benchmarks.cli_start`` with optional ``--runs N`` (default 7).

Each run is a fresh process, timed by the parent from spawn to exit, on a demo desk on SQLite
built beforehand (maya and vera logged in with ``cxdesk login``, so no password is checked:
what a person at a terminal or a script with a session pays). The commands: ``cxdesk --help``,
``tickets list --json``, ``ticket pull`` and ``checkin``. Each alternates run by run with the
baseline, a Python process that imports sqlite3 (the least a desk command on SQLite needs), so
a busy neighbour hurts both alike; the figure is the median.

Also ``batch``: the same check-ins as one ``cxdesk batch`` process against one process each;
the figure is the batch's time per command against the separate processes' (target: at most
a quarter).

Warm (``cli_start.warm.*``): the same commands with the command server started before
measuring (``cxdesk server start``; ``cxdesk.command_server``), what a script pays from its
second command on. The cold figures run with the server off (``CXDESK_COMMAND_SERVER=off``).

Target (issue 18): each command within 8x the baseline.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import figure, main_with_runs

RUNS = 7
TARGET = 8.0
BATCH_TARGET = 0.25
BATCH_LINES = 20
CXDESK = [sys.executable, "-m", "cxdesk.launch"]
CHECKIN = [
    "checkin", "--as", "vera",
    "--answer", "first_name=Ada", "--answer", "last_name=Lovelace",
    "--answer", "email=ada@example.com", "--answer", "product=360",
]  # fmt: skip
COMMANDS: dict[str, list[str]] = {
    "help": ["--help"],
    "tickets_list_json": ["tickets", "list", "--json", "--limit", "20", "--as", "maya"],
    "ticket_pull": ["ticket", "pull", "360", "--as", "maya"],
    "checkin": CHECKIN,
}
BASELINE = [sys.executable, "-c", "import sqlite3"]


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit; the command must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def demo_desk(folder: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CXDESK_HOME": folder,
        "CXDESK_DATABASE_URL": f"sqlite:///{Path(folder) / 'desk.db'}",
        "CXDESK_PASSWORD_HASH_COST": "cheapest",
        "CXDESK_DELIVER": "0",
        "COLUMNS": "200",
        "CXDESK_COMMAND_SERVER": "off",  # the cold figures; warm_figures starts its own
    }
    env.pop("CXDESK_USER", None)
    subprocess.run([*CXDESK, "demo"], env=env, check=True, capture_output=True)
    for user in ("maya", "vera"):
        subprocess.run(
            [*CXDESK, "login", user],
            env={**env, "CXDESK_LOGIN_PASSWORD": "demo"},
            check=True,
            capture_output=True,
        )
    return env


def run(
    *,
    runs: int = RUNS,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-cli-") as folder:
        env = demo_desk(folder)
        for _i in range(runs * 2):  # tickets for the pulls, whatever the runs
            timed([*CXDESK, *CHECKIN], env)
        log(f"CLI start: {runs} runs of each command, alternating with the baseline ...")
        timed(BASELINE, env)  # warm the OS file cache
        figures += command_figures("cli_start", env, env, runs=runs)
        figures += warm_figures(env, runs=runs, log=log)
        log(f"CLI batch: {BATCH_LINES} check-ins in one batch and one process each ...")
        script = Path(folder) / "checkins.txt"
        script.write_text((" ".join(CHECKIN) + "\n") * BATCH_LINES, encoding="utf-8")
        batch = timed([*CXDESK, "batch", str(script)], env) / BATCH_LINES
        separate = statistics.median(timed([*CXDESK, *CHECKIN], env) for _i in range(runs))
        figures.append(
            figure(
                "cli_start.batch_per_command",
                value=batch * 1000,
                baseline=separate * 1000,
                unit="ms",
                at_most_ratio=BATCH_TARGET,
            )
        )
    return figures


def command_figures(
    prefix: str,
    env: dict[str, str],
    baseline_env: dict[str, str],
    *,
    runs: int,
    first_apart: bool = False,
) -> list[dict[str, Any]]:
    """Each of ``COMMANDS`` timed ``runs`` times in ``env``, alternating with the baseline; the
    medians. ``first_apart``: one untimed run of each first (a command server's first fork)."""
    figures: list[dict[str, Any]] = []
    for name, arguments in COMMANDS.items():
        if first_apart:
            timed([*CXDESK, *arguments], env)
        mine, bare = [], []
        for _i in range(runs):
            mine.append(timed([*CXDESK, *arguments], env))
            bare.append(timed(BASELINE, baseline_env))
        figures.append(
            figure(
                f"{prefix}.{name}",
                value=statistics.median(mine) * 1000,
                baseline=statistics.median(bare) * 1000,
                unit="ms",
                at_most_ratio=TARGET,
            )
        )
    return figures


def warm_figures(
    env: dict[str, str], *, runs: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The four commands through a command server of their own (a private socket folder),
    started before measuring and stopped after."""
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cxs-") as sockets:
        warm = {**env, "CXDESK_COMMAND_SERVER": "on", "CXDESK_COMMAND_SERVER_DIR": sockets}
        log("CLI start, warm: starting a command server ...")
        timed([*CXDESK, "server", "start"], warm)
        try:
            figures += command_figures("cli_start.warm", warm, env, runs=runs, first_apart=True)
        finally:
            timed([*CXDESK, "server", "stop"], warm)
    return figures


def main(argv: list[str] | None = None) -> int:
    return main_with_runs(__doc__, run, RUNS, argv, what="command")


if __name__ == "__main__":
    sys.exit(main())
