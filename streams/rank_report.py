"""The counts of `POST /rank`, kept where requests are answered and reported to the worker.

The rank server (`streams.rank_server`) answers requests in a process of its own, so it cannot
touch the worker's Prometheus registry. It notes each answer in a `RankTally`; every
`REPORT_EVERY_S` it sends the worker what came since (`RankTally.drain`: a `RankReport`), and
the worker adds that to its metrics (`apply_report`). The worker's series are the documented
ones, behind the answers by at most one report interval.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from streams.metrics import Metrics

#: Seconds between two reports of the rank server to the worker.
REPORT_EVERY_S = 0.5


@dataclass(frozen=True)
class RankReport:
    """What happened to `POST /rank` requests since the previous report.

    Attributes:
        requests: requests answered, by outcome.
        seconds: each answer's time from arrival to answer, by outcome.
        shed: requests answered 503 with Retry-After, by reason.
        in_flight: requests admitted and not yet answered when the report was made.
        asked: shards the requests asked about (their views are wanted).
        ranking_ready: whether the ranking backend could take a job when the report was made.
    """

    requests: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    shed: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    asked: frozenset[str] = frozenset()
    ranking_ready: bool = False


class RankTally:
    """Counts answers as they are made; `drain` hands them over and starts again."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._requests: Counter[str] = Counter()
        self._seconds: dict[str, list[float]] = {}
        self._shed: Counter[str] = Counter()
        self._asked: set[str] = set()

    def answered(self, outcome: str, seconds: float, shed: str = "") -> None:
        """One request answered with `outcome` after `seconds`; `shed` its reason if shed."""
        self._requests[outcome] += 1
        self._seconds.setdefault(outcome, []).append(seconds)
        if shed:
            self._shed[shed] += 1

    def asked(self, shard: str) -> None:
        """A request asked about `shard`."""
        self._asked.add(shard)

    def drain(self, ranking_ready: bool = False) -> RankReport:
        """Everything noted since the last drain, the in-flight count now and `ranking_ready`."""
        report = RankReport(
            requests=dict(self._requests),
            seconds=self._seconds,
            shed=dict(self._shed),
            in_flight=self.in_flight,
            asked=frozenset(self._asked),
            ranking_ready=ranking_ready,
        )
        self._requests.clear()
        self._seconds = {}
        self._shed.clear()
        self._asked.clear()
        return report


def apply_report(report: RankReport, metrics: Metrics) -> None:
    """Add `report` to the worker's rank series (requests, latency, shed, in-flight)."""
    for outcome, count in report.requests.items():
        metrics.rank_requests.labels(outcome).inc(count)
    for outcome, values in report.seconds.items():
        histogram = metrics.rank_request_seconds.labels(outcome)
        for seconds in values:
            histogram.observe(seconds)
    for reason, count in report.shed.items():
        metrics.rank_shed.labels(reason).inc(count)
    metrics.rank_in_flight.set(report.in_flight)
