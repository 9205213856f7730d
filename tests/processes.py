"""Process checks shared by the tests of child processes and broker runners."""

from __future__ import annotations

import os


def process_gone(pid: int) -> bool:
    """True when no process with `pid` exists any more (signal 0 finds none)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
