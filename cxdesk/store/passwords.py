"""Password hashing (argon2id). The only place that knows how a password is stored.

The cost defaults to argon2-cffi's RFC 9106 low-memory profile. ``CXDESK_PASSWORD_HASH_COST=
cheapest`` picks the cheapest parameters: for test suites that create thousands of users, never
for a real desk. Every hash records its own parameters, so verification works across both, and
a login whose hash was made at another cost gets a new hash at the current one
(``needs_rehash``).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argon2 loads when a password is hashed or checked, not with the module
    from argon2 import PasswordHasher

PROFILES = {"default": "RFC_9106_LOW_MEMORY", "cheapest": "CHEAPEST"}
"""Each cost's ``argon2.profiles`` parameters, by name."""

# For unknown usernames: a hash of a random password nobody was told, one per cost, made once
# and committed. Hashing it at run time cost every fresh process (each CLI command) one argon2
# hash on top of the check, so an unknown name took about twice a real user's wrong password.
# tests/test_auth.py checks each one's parameters against its cost's hasher.
DECOY_HASHES = {
    "default": "$argon2id$v=19$m=65536,t=3,p=4$uLJ2tUSXQYcDebxZ2FsuRQ"
    "$1BelJPbDAEI0xTvDvdBfXM1ZfNM0CBRfxeij5TfhCaw",
    "cheapest": "$argon2id$v=19$m=8,t=1,p=1$741+q+jppfI$qoabDQ",
}


def current_cost() -> str:
    """The cost in use: ``CXDESK_PASSWORD_HASH_COST`` if it names one, else ``default``."""
    cost = os.environ.get("CXDESK_PASSWORD_HASH_COST", "default")
    return cost if cost in PROFILES else "default"


@cache
def hasher(cost: str) -> PasswordHasher:
    from argon2 import PasswordHasher, profiles

    return PasswordHasher.from_parameters(getattr(profiles, PROFILES[cost]))


def _current() -> PasswordHasher:
    return hasher(current_cost())


def hash_password(password: str) -> str:
    return _current().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher("default").verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current cost's."""
    from argon2.exceptions import InvalidHashError

    try:
        return _current().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def verify_nobody(password: str) -> bool:
    """A password check against no user, costing what a real one costs; always False.

    Used for unknown usernames, so a login's time does not tell whether the name exists.
    """
    verify_password(DECOY_HASHES[current_cost()], password)
    return False
