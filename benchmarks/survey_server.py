"""Benchmark: the survey server's answer time while connections are held open against it.

Run ``python -m benchmarks.survey_server`` with optional ``--held N`` (default 300) and
``--requests N`` (default 200 per round, 2 rounds).

``cxdesk survey serve`` runs as its own process on a demo desk (SQLite), with its default
limits except a 60 s read timeout (so the held connections stay for the whole run). The client
fetches the NPS form (a database read and a rendered page) one request after another, each on
a new connection, and times each:

- loaded: while ``--held`` connections are held open: a third silent, a third with headers
  that never end, a third with a POST whose body never comes (what starved the old server);
- baseline: the same requests with nothing held, alternating round by round with the loaded
  ones so a busy neighbour hurts both alike.

Target: p50 and p99 with the connections held within 3x of the baseline's (each turn of
waitress's event loop looks at every open connection: a few milliseconds more per request with
300 held; the point is that it stays milliseconds, where the old server never answered).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import figure, format_table

HELD = 300
REQUESTS = 200
ROUNDS = 2
TARGET = 3.0
HALF_OPEN = [
    b"",
    b"GET /nps HTTP/1.1\r\nHost: survey\r\n",
    b"POST /nps HTTP/1.1\r\nHost: survey\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nemail=a",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_server(port: int, server: subprocess.Popen[str]) -> None:
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        if server.poll() is not None:
            raise RuntimeError(f"cxdesk survey serve exited: {server.communicate()[1]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("cxdesk survey serve did not listen within 60 s")


def timed_requests(url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as reply:
            reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{url} answered {reply.status}")
        times.append(time.perf_counter() - started)
    return times


def hold(port: int, count: int) -> list[socket.socket]:
    held = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if HALF_OPEN[number % 3]:
            sock.sendall(HALF_OPEN[number % 3])
        held.append(sock)
    return held


def p99(times: list[float]) -> float:
    return sorted(times)[max(0, round(len(times) * 0.99) - 1)]


def run(
    *,
    held: int = HELD,
    requests: int = REQUESTS,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cxdesk-bench-web-") as folder:
        port = free_port()
        env = {
            **os.environ,
            "CXDESK_HOME": folder,
            "CXDESK_DATABASE_URL": f"sqlite:///{Path(folder) / 'desk.db'}",
            "CXDESK_PASSWORD_HASH_COST": "cheapest",
            "CXDESK_SURVEY_READ_TIMEOUT": "60",
        }
        subprocess.run(
            [sys.executable, "-m", "cxdesk.cli.main", "demo"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "cxdesk.cli.main", "survey", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for_server(port, server)
            url = f"http://127.0.0.1:{port}/nps"
            timed_requests(url, 20)  # warm up
            log(f"survey server: {ROUNDS} rounds of {requests} requests, {held} held ...")
            baseline: list[float] = []
            loaded: list[float] = []
            for _ in range(ROUNDS):
                baseline += timed_requests(url, requests)
                sockets = hold(port, held)
                try:
                    loaded += timed_requests(url, requests)
                finally:
                    for sock in sockets:
                        sock.close()
        finally:
            server.terminate()
            server.communicate(timeout=30)
    return [
        figure(
            f"survey_server.p50_with_{held}_held",
            value=statistics.median(loaded) * 1000,
            baseline=statistics.median(baseline) * 1000,
            unit="ms",
            at_most_ratio=TARGET,
        ),
        figure(
            f"survey_server.p99_with_{held}_held",
            value=p99(loaded) * 1000,
            baseline=p99(baseline) * 1000,
            unit="ms",
            at_most_ratio=TARGET,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--held", type=int, default=HELD, help="connections held open")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests per round")
    args = parser.parse_args(argv)
    if args.held < 0 or args.requests < 1:
        parser.error("--held must be 0 or more and --requests at least 1")
    print(format_table(run(held=args.held, requests=args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
