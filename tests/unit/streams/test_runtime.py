"""The worker runtime's process-level guarantees."""

from __future__ import annotations

import subprocess
import sys

from streams.runtime import CRASH_EXIT_STATUS

HANGING_STOP = """
import logging, threading
from streams.runtime import exit_hard_after
logging.basicConfig(level=logging.INFO)
exit_hard_after(0.2)
threading.Event().wait()  # a graceful stop that never finishes
"""


def test_a_crashed_worker_whose_stop_hangs_exits_hard_with_its_status() -> None:
    """After the timeout the process ends with status 70 and says why on its log."""
    result = subprocess.run(
        [sys.executable, "-c", HANGING_STOP], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == CRASH_EXIT_STATUS
    assert "graceful stop did not finish" in result.stderr
