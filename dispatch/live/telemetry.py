"""Where the shard engine reports what it did: metrics in the stream layer, counters in tests."""

from __future__ import annotations

from typing import Protocol


class Telemetry(Protocol):
    """What the shard engine reports."""

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:
        """One tick of `shard` decided `assignments` in `duration_s`; `breaker`: greedy used."""

    def released(self, reason: str) -> None:
        """A proposal or commitment was released for `reason`."""

    def committed(self) -> None:
        """A proposal was accepted and committed."""

    def stale_response(self) -> None:
        """A response arrived for a proposal that is no longer open."""

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:
        """A delivered order's realized time against its announced ETA."""

    def ready_times(self, source: str, count: int) -> None:
        """A tick took `count` orders' ready times from `source` (`dispatch.live.staged`)."""

    def model_label(
        self, kind: str, role: str, version: str, abs_error_s: float, covered_p90: bool
    ) -> None:
        """A `kind` model (`prep`, `total`) of `version`, `served` or `candidate`, met a label."""


class NullTelemetry:
    """Telemetry that records nothing."""

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:  # noqa: D102
        return

    def released(self, reason: str) -> None:  # noqa: D102
        return

    def committed(self) -> None:  # noqa: D102
        return

    def stale_response(self) -> None:  # noqa: D102
        return

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:  # noqa: D102
        return

    def ready_times(self, source: str, count: int) -> None:  # noqa: D102
        return

    def model_label(  # noqa: D102
        self, kind: str, role: str, version: str, abs_error_s: float, covered_p90: bool
    ) -> None:
        return
