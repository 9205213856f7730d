"""Acting on a live run between two lockstep steps (a worker stopped, a model promoted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.city import SimRecord
from streams.sim_dispatch import KafkaDispatch


class AtStep:
    """Runs `action` before the `step`-th step of a `KafkaDispatch`, then steps as usual.

    Attributes:
        at_ts_ms: the event time the step after the action runs until (None: not reached).
    """

    def __init__(self, dispatch: KafkaDispatch, step: int, action: Callable[[], None]) -> None:
        self.dispatch = dispatch
        self.step = step
        self.action = action
        self.steps = 0
        self.at_ts_ms: int | None = None

    def run_until(self, inputs: Any, until_ts_ms: int) -> list[SimRecord]:
        """The wrapped dispatch's step, after the action when its step has come."""
        self.steps += 1
        if self.steps == self.step:
            self.action()
            self.at_ts_ms = until_ts_ms
        return self.dispatch.run_until(inputs, until_ts_ms)
