"""Rate limits on survey answers: per client address and per email, in the server's memory.

Each key gets a burst of ``limit`` answers, then one more every ``window / limit`` seconds
(the generic cell rate algorithm: one number per key, the time its allowance is next full).
The counts live in one server process: servers behind a load balancer count separately.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 100_000
"""Keys remembered at most; past it, the least recently seen is forgotten (in constant time:
the keys are kept in the order they were last seen)."""


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key; thread-safe."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ):
        self.interval = window / limit
        self.burst = window - self.interval
        self.clock = clock
        self.max_keys = max_keys
        self._full_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when an event for ``key`` is allowed (and counted), else the seconds to wait."""
        with self._lock:
            now = self.clock()
            full_at = max(self._full_at.get(key, now), now)
            if key in self._full_at:
                self._full_at.move_to_end(key)  # seen now, allowed or not
            if full_at - now > self.burst:
                return full_at - now - self.burst
            self._full_at[key] = full_at + self.interval
            while len(self._full_at) > self.max_keys:  # O(1): the least recently seen
                self._full_at.popitem(last=False)
            return 0.0


def address_key(address: str) -> str:
    """The key a client address counts under: itself, or its /64 network for IPv6 (one
    customer's connection gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
