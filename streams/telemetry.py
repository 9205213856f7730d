"""The worker core's telemetry as Prometheus metrics (base units, our own registry)."""

from __future__ import annotations

from streams.metrics import Metrics, counter, gauge, histogram, make_declared


class PrometheusTelemetry:
    """Implements `dispatch.live.worker.WorkerTelemetry` with metrics on `metrics`."""

    tick_seconds = histogram(
        "Time to decide one shard's tick.",
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        name="tick_duration_seconds",
    )
    ticks = counter("Shard ticks decided.")
    breaker = counter(
        "Ticks that used the greedy policy because the optimiser would overrun the budget.",
        name="circuit_breaker_ticks",
    )
    proposals = counter("Assignments offered to couriers.", name="assignments_proposed")
    commits = counter("Assignments accepted and committed.", name="assignments_committed")
    releases = counter(
        "Proposals or commitments released, by reason.", "reason", name="assignments_released"
    )
    stale = counter(
        "Courier responses to proposals no longer open (duplicates, late answers).",
        name="stale_responses",
    )
    eta_error = histogram(
        "Realized minus announced p50 drop-off time of delivered orders.",
        buckets=(-900, -600, -300, -120, -60, 0, 60, 120, 300, 600, 900, 1800),
        name="eta_error_seconds",
    )
    eta_labels = counter(
        "Delivered orders with an announced ETA, by whether the p90 covered the delivery.",
        "covered_p90",
    )
    eta_fallbacks = counter(
        "Delivered orders whose announced ETA used the base-ETA fallback.",
        name="eta_fallback_labels",
    )
    ready_sources = counter(
        "Ready times a tick used, by source (order_ready, model, merchant_estimate, "
        "order_estimate, default) and by why the prep model could not serve (no_model, "
        "no_features).",
        "source",
        name="ready_times",
    )
    model_error = histogram(
        "Absolute error of a model's p50 on its label (prep: food ready; total: delivery "
        "against the placement ETA), for the served model set and the shadow candidate.",
        "kind",
        "role",
        "version",
        buckets=(30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800),
        name="model_abs_error_seconds",
    )
    model_covered = counter(
        "Labels a model's p90 covered, by kind, role (served, candidate) and version.",
        "kind",
        "role",
        "version",
        name="model_p90_covered",
    )
    model_sets_loaded = gauge(
        "1 for each model set the worker holds, by role (served, candidate) and version.",
        "role",
        "version",
        name="model_set",
    )

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        make_declared(self, metrics.registry)

    def tick(self, shard: str, duration_s: float, assignments: int, breaker: bool) -> None:
        """Record one tick."""
        self.ticks.inc()
        self.tick_seconds.observe(duration_s)
        self.proposals.inc(assignments)
        if breaker:
            self.breaker.inc()

    def released(self, reason: str) -> None:
        """Record a release."""
        self.releases.labels(reason).inc()

    def committed(self) -> None:
        """Record a commit."""
        self.commits.inc()

    def stale_response(self) -> None:
        """Record a stale response."""
        self.stale.inc()

    def ready_times(self, source: str, count: int) -> None:
        """Count ready times by source."""
        self.ready_sources.labels(source).inc(count)

    def model_label(
        self, kind: str, role: str, version: str, abs_error_s: float, covered_p90: bool
    ) -> None:
        """Record a model's labelled prediction."""
        self.model_error.labels(kind, role, version).observe(abs_error_s)
        if covered_p90:
            self.model_covered.labels(kind, role, version).inc()

    def model_sets(self, served: str | None, candidate: str | None) -> None:
        """Record which model sets are loaded (None: no set in that role)."""
        self.model_sets_loaded.clear()
        for role, version in (("served", served), ("candidate", candidate)):
            if version is not None:
                self.model_sets_loaded.labels(role, version).set(1)

    def eta_label(self, error_p50_s: float, covered_p90: bool, fallback: bool) -> None:
        """Record a delivered order's ETA outcome."""
        self.eta_error.observe(error_p50_s)
        self.eta_labels.labels("true" if covered_p90 else "false").inc()
        if fallback:
            self.eta_fallbacks.inc()

    def pings(self, count: int) -> None:
        """Record valid fixes."""
        self.metrics.pings.inc(count)

    def positions(self, applied: int, tracked: int) -> None:
        """Record fixes applied to the position store and the couriers it tracks."""
        self.metrics.positions_applied.inc(applied)
        self.metrics.couriers_tracked.set(tracked)

    def handoffs(self, count: int) -> None:
        """Record couriers that changed shard."""
        self.metrics.handoffs.inc(count)

    def tick_interval(self, seconds: float) -> None:
        """Record the wall time between two ticks of a shard."""
        self.metrics.tick_interval_seconds.observe(seconds)

    def internal_error(self, topic: str) -> None:
        """Record a record dead-lettered for an unexpected error."""
        self.metrics.internal_errors.labels(topic).inc()

    def trace_context_invalid(self, topic: str) -> None:
        """Record a malformed trace context header."""
        self.metrics.trace_contexts_invalid.labels(topic).inc()

    def event_time(self, topic: str, ts_ms: int) -> None:
        """Record the event time of the newest record handled of `topic`."""
        self.metrics.last_event_time.labels(topic).set(ts_ms / 1000)
