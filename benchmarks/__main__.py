"""Run every benchmark and print one table: ``python -m benchmarks [--json FILE] [--pg URL]``.

Each module in ``BENCHMARKS`` exposes ``run(**options) -> list[dict]`` (see
``benchmarks/__init__.py``); this runs them in turn and prints every figure with its same-run
baseline, ratio and target. PostgreSQL figures need a server: ``--pg URL`` (a role that may
create databases), else a throwaway cluster is started with ``scripts/pg-cluster`` when
PostgreSQL is installed, else they are left out and the table says so.

``--quick`` runs each benchmark at a small size (a smoke test of the harness; its figures are
not the benchmark's). ``--only NAME`` runs some of them. ``--json FILE`` also writes the
figures as a list of objects with ``name``, ``value``, ``baseline``, ``ratio``, ``unit``,
``target`` and ``met``. The exit status is 1 when a benchmark failed to run, never because a
figure missed its target.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import format_table

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [
    "pull",
    "delivery",
    "checkin",
    "views",
    "tui_start",
    "cli_start",
    "survey_server",
    "login",
    "estimate",
]
# Small sizes for --quick, by module: each run's keyword arguments.
QUICK: dict[str, dict[str, Any]] = {
    "pull": {"tickets": 400, "workers": 4},
    "delivery": {"messages": 100, "repeats": 1},
    "checkin": {"checkins": 20},
    "views": {"tickets": 5_000, "small": 500},
    "tui_start": {"runs": 1},
    "cli_start": {"runs": 1},
    "survey_server": {"held": 30, "requests": 20},
    "login": {"runs": 1, "fresh_runs": 1},
    "estimate": {"days": 1, "waiting": 1_000},
}


@contextmanager
def postgres(url: str | None, log: Any) -> Iterator[str | None]:
    """``url``, or a throwaway cluster's URL while it runs, or None when there is none."""
    script = ROOT / "scripts" / "pg-cluster"
    if url or not script.exists():
        yield url
        return
    folder = tempfile.mkdtemp(prefix="cxdesk-bench-pg-")
    started = subprocess.run([str(script), "start", folder], capture_output=True, text=True)
    if started.returncode != 0:
        log(f"PostgreSQL figures left out: no server ({started.stderr.strip()[-200:]})")
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(script), "stop", folder], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def run_one(name: str, options: dict[str, Any], pg_url: str | None) -> list[dict[str, Any]]:
    module = importlib.import_module(f"benchmarks.{name}")
    accepted = inspect.signature(module.run).parameters
    kwargs = {key: value for key, value in options.items() if key in accepted}
    if "pg_url" in accepted:
        kwargs["pg_url"] = pg_url
    figures: list[dict[str, Any]] = module.run(**kwargs)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the figures here")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL server for the PostgreSQL figures")
    parser.add_argument("--quick", action="store_true", help="small sizes: test the harness")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run just these")
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    figures: list[dict[str, Any]] = []
    failed: list[str] = []
    with postgres(args.pg, log) as pg_url:
        for name in args.only or BENCHMARKS:
            log(f"== {name}")
            try:
                options = QUICK.get(name, {}) if args.quick else {}
                figures += run_one(name, options, pg_url)
            except Exception:  # one broken benchmark must not hide the others' figures
                log(traceback.format_exc())
                failed.append(name)
    print(format_table(figures))
    missed = [f["name"] for f in figures if f["met"] is False]
    if missed:
        print(f"\n{len(missed)} figure(s) miss their target: {', '.join(missed)}")
    if pg_url is None:
        print("PostgreSQL figures left out: no server (pass --pg URL or install PostgreSQL)")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("CXDESK_PASSWORD_HASH_COST", "cheapest")
    sys.exit(main())
