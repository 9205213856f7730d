"""Waiting for a condition with a deadline (never a fixed sleep standing in for it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    fetch: Callable[[], T],
    holds: Callable[[T], bool],
    timeout_s: float = 30.0,
    every_s: float = 0.2,
) -> T:
    """Call `fetch` every `every_s` until its value `holds`; past `timeout_s`, fail with it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if holds(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s; last value: {value}")
        time.sleep(every_s)
