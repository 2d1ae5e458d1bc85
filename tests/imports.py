"""What a fresh interpreter loads to run a piece of code: for the tests that hold a start-up
path (the desk's first fill, a scripted command's client) to the modules it may import."""

from __future__ import annotations

import subprocess
import sys


def modules_loaded_by(code: str) -> set[str]:
    """The modules ``python -c code`` loads, beyond the interpreter's own start-up."""
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(ran.stdout.split())
