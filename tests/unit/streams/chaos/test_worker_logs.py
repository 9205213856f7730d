"""Reading the workers' logs: group joins with their generation, and crash lines."""

from __future__ import annotations

import time
from pathlib import Path

from streams.chaos.worker_logs import crash_lines, joins

LOG = """[2026-06-16 12:00:01,250] [81] [INFO] [^Worker]: Starting...
[2026-06-16 12:00:02,500] [81] [INFO] Joined group 'dispatchflow' (generation 3) with member_id w0-1
[2026-06-16 12:00:09,000] [81] [ERROR] agent shard crashed; stopping the worker
[2026-06-16 12:01:00,000] [97] [INFO] Joined group 'dispatchflow' (generation 5) with member_id w0-2
"""


def test_joins_carry_their_generation_and_local_time(tmp_path: Path) -> None:
    """Each join line gives its generation and its epoch time, milliseconds included."""
    path = tmp_path / "w.log"
    path.write_text(LOG)
    found = joins(path, 2)
    expected_s = time.mktime(time.strptime("2026-06-16 12:00:02", "%Y-%m-%d %H:%M:%S")) + 0.5
    assert [(j.worker, j.generation) for j in found] == [(2, 3), (2, 5)]
    assert found[0].wall_s == expected_s


def test_a_crashed_agent_is_a_crash_line(tmp_path: Path) -> None:
    """The agent-crash line is the one crash line of the log."""
    path = tmp_path / "w.log"
    path.write_text(LOG)
    assert crash_lines(path) == [LOG.splitlines()[2]]


def test_a_missing_log_has_nothing(tmp_path: Path) -> None:
    """A worker that never wrote a log has no joins and no crash lines."""
    assert joins(tmp_path / "none.log", 0) == [] and crash_lines(tmp_path / "none.log") == []
