"""What the workers' own logs say: group joins (with their generation) and signs of a crash.

A worker logs at info level (Faust's format: `[YYYY-mm-dd HH:MM:SS,mmm] [pid] [LEVEL] text`,
local time). Each worker of a run appends every process it ran to one file, so a file holds the
lines of every restart.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from streams.chaos.checker import Joined

_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\] \[(\d+)\] \[(\w+)\] (.*)$")
_JOINED = re.compile(r"Joined group '[^']*' \(generation (\d+)\)")
#: Lines that mean a worker process is ending because something went wrong in it.
CRASH_MARKERS = (
    "crashed; stopping the worker",
    "graceful stop did not finish",
    "[CRITICAL]",
)


def _wall_s(date: str, millis: str) -> float:
    """Epoch seconds of a local `YYYY-mm-dd HH:MM:SS` plus milliseconds."""
    return time.mktime(time.strptime(date, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


def joins(path: Path, worker: int) -> list[Joined]:
    """Every group join in the log of `worker`, in the order logged."""
    found: list[Joined] = []
    for line in _lines(path):
        match = _LINE.match(line)
        if match is None:
            continue
        joined = _JOINED.search(match.group(5))
        if joined is not None:
            found.append(Joined(_wall_s(match.group(1), match.group(2)), worker, int(joined[1])))
    return found


def crash_lines(path: Path) -> list[str]:
    """Every line of the log that marks a crash (`CRASH_MARKERS`)."""
    return [line for line in _lines(path) if any(m in line for m in CRASH_MARKERS)]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
