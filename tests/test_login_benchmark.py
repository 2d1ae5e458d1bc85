"""The login benchmark still catches a timing oracle: a refusal of an unknown name that skips
the password hash shows as a missed figure, however its ratio is now taken (the median of the
per-round ratios). No figure of the real code is asserted: speed is for benchmarks to show."""

from __future__ import annotations

import pytest

from benchmarks import login
from cxdesk.store import logins


@pytest.mark.slow  # a dozen argon2 checks at the default cost
def test_an_unknown_name_refused_without_the_hash_misses_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logins, "verify_nobody", lambda password: False)  # the leak
    figures = {f["name"]: f for f in login.run(runs=3, fresh_runs=0)}
    assert set(figures) == {"refused_login_unknown_user_s", "refused_login_deactivated_user_s"}
    unknown = figures["refused_login_unknown_user_s"]
    assert unknown["met"] is False
