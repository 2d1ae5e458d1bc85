"""What every benchmark shares: one figure's dict, the printed table, a scratch PostgreSQL."""

from __future__ import annotations

import argparse
import statistics
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url


def figure(
    name: str,
    *,
    value: float,
    baseline: float | None,
    unit: str,
    target_ratio: float | None = None,
    at_most_ratio: float | None = None,
) -> dict[str, Any]:
    """One figure; ``target_ratio``: value/baseline must be at least it (throughput);
    ``at_most_ratio``: at most it (times, memory)."""
    ratio = value / baseline if baseline else None
    target, met = None, None
    if target_ratio is not None:
        target, met = (
            f">= {target_ratio:.0%} of baseline",
            ratio is not None and ratio >= target_ratio,
        )
    elif at_most_ratio is not None:
        target = f"<= {at_most_ratio:g}x baseline"
        met = ratio is not None and ratio <= at_most_ratio
    return {
        "name": name,
        "value": value,
        "baseline": baseline,
        "ratio": ratio,
        "unit": unit,
        "target": target,
        "met": met,
    }


def paired_figure(
    name: str,
    pairs: Sequence[tuple[float, float]],
    *,
    unit: str,
    target_ratio: float | None = None,
    at_most_ratio: float | None = None,
) -> dict[str, Any]:
    """One figure from ``(value, baseline)`` pairs measured side by side (alternating): the
    medians of each, and as its ratio the median of the per-pair ratios, on which the target
    is judged. A change of load on a shared machine falls on both of a pair, so it moves a
    pair's ratio far less than either time."""
    item = figure(
        name,
        value=statistics.median(value for value, _ in pairs),
        baseline=statistics.median(base for _, base in pairs),
        unit=unit,
        target_ratio=target_ratio,
        at_most_ratio=at_most_ratio,
    )
    ratio = (
        statistics.median(value / base for value, base in pairs)
        if all(base for _, base in pairs)
        else None
    )
    item["ratio"] = ratio
    if target_ratio is not None:
        item["met"] = ratio is not None and ratio >= target_ratio
    elif at_most_ratio is not None:
        item["met"] = ratio is not None and ratio <= at_most_ratio
    return item


def format_table(figures: list[dict[str, Any]]) -> str:
    """The figures as an aligned text table: value, baseline, ratio, target, met."""

    def number(value: float | None) -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value:,}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    width = max([38, *(len(f"{f['name']} ({f['unit']})") for f in figures)])
    header = f"{'figure':<{width}} {'cxdesk':>9} {'baseline':>9} {'ratio':>7}  {'target':<22} met"
    lines = [header, "-" * len(header)]
    for item in figures:
        met = {True: "yes", False: "NO", None: ""}[item["met"]]
        lines.append(
            f"{item['name'] + ' (' + item['unit'] + ')':<{width}} {number(item['value']):>9} "
            f"{number(item['baseline']):>9} {number(item['ratio']):>7}  "
            f"{item['target'] or '':<22} {met}"
        )
    return "\n".join(lines)


@contextmanager
def scratch_pg_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped afterwards."""
    url = make_url(admin_url).set(drivername="postgresql")
    name = f"cxdesk_bench_{uuid.uuid4().hex[:12]}"
    admin = url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main_with_runs(
    doc: str | None,
    run: Callable[..., list[dict[str, Any]]],
    default_runs: int,
    argv: list[str] | None,
    *,
    what: str,
) -> int:
    """A benchmark's ``main``: ``--runs N`` (at least 1; ``what`` each run repeats), then
    ``run(runs=N)``'s figures as a table."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--runs", type=int, default=default_runs, help=f"runs of each {what}")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(format_table(run(runs=args.runs)))
    return 0
