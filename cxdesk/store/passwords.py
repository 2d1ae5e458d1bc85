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

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

_PROFILES = {"default": profiles.RFC_9106_LOW_MEMORY, "cheapest": profiles.CHEAPEST}


@cache
def _hasher(cost: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(_PROFILES.get(cost, profiles.RFC_9106_LOW_MEMORY))


def _current() -> PasswordHasher:
    return _hasher(os.environ.get("CXDESK_PASSWORD_HASH_COST", "default"))


def hash_password(password: str) -> str:
    return _current().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher("default").verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current cost's."""
    try:
        return _current().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _decoy_hash(cost: str) -> str:
    return _hasher(cost).hash("no user has this password")


def verify_nobody(password: str) -> bool:
    """A password check against no user, costing what a real one costs; always False.

    Used for unknown usernames, so a login's time does not tell whether the name exists.
    """
    verify_password(_decoy_hash(os.environ.get("CXDESK_PASSWORD_HASH_COST", "default")), password)
    return False
