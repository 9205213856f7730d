"""A monotonic clock that tests move by hand (inject it where code takes `clock=`)."""

from __future__ import annotations


class ManualClock:
    """Returns `now_s` until the test changes it."""

    def __init__(self, now_s: float = 100.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s
