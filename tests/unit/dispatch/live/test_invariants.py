from typing import Any

from contracts.tracing import start_trace, trace_header_for
from dispatch.live.invariants import check_invariants


def e(kind: str, ts: int, **fields: Any) -> dict[str, Any]:
    """An event of `kind` at `ts`."""
    return {
        "type": kind,
        "ts_ms": ts,
        "event_id": f"{kind}-{ts}-{sorted(fields.items())}",
        **fields,
    }


def commit(ts: int, decision: str, courier: str, *orders: str) -> dict[str, Any]:
    """An assignment_committed event."""
    return e(
        "assignment_committed", ts, decision_id=decision, courier_id=courier, order_ids=list(orders)
    )


def release(ts: int, decision: str, *orders: str) -> dict[str, Any]:
    """An assignment_released event."""
    return e(
        "assignment_released", ts, decision_id=decision, order_ids=list(orders), reason="declined"
    )


ONLINE = e("courier_online", 0, courier_id="c1", capacity=2)


def test_a_clean_run_has_no_violations() -> None:
    """Commit, deliver, next commit: nothing to report."""
    events = [
        ONLINE,
        e("order_created", 1, order_id="o1"),
        commit(2, "d1", "c1", "o1"),
        e("delivery_delivered", 3, order_id="o1"),
    ]
    report = check_invariants(events, require_terminal=True)
    assert report.violation_count == 0
    assert (report.orders, report.commits, report.delivered) == (1, 1, 1)


def test_a_second_decision_while_the_first_is_live_is_a_double_commit() -> None:
    """Two decisions committing one order without a release between them is a violation."""
    report = check_invariants([ONLINE, commit(1, "d1", "c1", "o1"), commit(2, "d2", "c1", "o1")])
    assert len(report.violations["double_commit"]) == 1


def recommitted() -> list[dict[str, Any]]:
    """o1 committed to c1 by d1, released, then committed again by d2."""
    return [
        ONLINE,
        commit(1, "d1", "c1", "o1"),
        release(2, "d1", "o1"),
        commit(3, "d2", "c1", "o1"),
    ]


def test_a_recommit_after_release_is_fine() -> None:
    """After a release, a new decision may commit the order."""
    assert check_invariants(recommitted()).violation_count == 0


def test_repeated_records_of_one_commit_are_duplicates_not_violations() -> None:
    """The same decision id committed twice is an at-least-once duplicate, counted apart."""
    report = check_invariants([ONLINE, commit(1, "d1", "c1", "o1"), commit(1, "d1", "c1", "o1")])
    assert report.violation_count == 0 and report.duplicate_commit_records == 1


def test_holding_more_than_capacity_is_reported() -> None:
    """A third live order on a courier of capacity 2 is over capacity."""
    events = [
        ONLINE,
        commit(1, "d1", "c1", "o1", "o2"),
        commit(2, "d2", "c1", "o3"),
    ]
    assert len(check_invariants(events).violations["over_capacity"]) == 1


def test_delivered_orders_free_capacity() -> None:
    """Orders delivered before the next commit do not count against capacity."""
    events = [
        ONLINE,
        commit(1, "d1", "c1", "o1", "o2"),
        e("delivery_delivered", 2, order_id="o1"),
        commit(3, "d2", "c1", "o3"),
    ]
    assert check_invariants(events).violation_count == 0


def test_committing_a_cancelled_order_is_reported() -> None:
    """A commit after the order was cancelled is a violation."""
    events = [e("order_cancelled", 1, order_id="o1"), commit(2, "d1", "c1", "o1")]
    assert len(check_invariants(events).violations["commit_after_terminal"]) == 1


def test_orders_without_an_end_are_reported_only_when_required() -> None:
    """An order neither delivered, cancelled nor expired is unfinished when the run must end."""
    events = [
        e("order_created", 1, order_id="o1"),
        e("order_created", 1, order_id="o2"),
        e("order_expired", 5, order_id="o2"),
    ]
    assert check_invariants(events).violation_count == 0
    assert check_invariants(events, require_terminal=True).violations["unfinished_order"] == [
        "o1 never delivered, cancelled or expired"
    ]


def test_arrival_order_of_events_does_not_matter() -> None:
    """The checker orders by event time, so shuffled input gives the same report."""
    events = [*recommitted(), commit(4, "d3", "c1", "o1")]
    forward = check_invariants(events).summary()
    backward = check_invariants(list(reversed(events))).summary()
    assert forward == backward and forward["violation_count"] == 1


UPSTREAM = start_trace("order-app:o1", sampled=True).header


def trace_run(
    created_header: str | None, commit_header: str | None, *orders: str
) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """Events and headers (by event id) of `orders` created and committed together.

    The first order is created with `created_header`, the others without one; the commit
    carries `commit_header`.
    """
    created = [e("order_created", 1, order_id=o) for o in orders]
    committed = commit(2, "d1", "c1", *orders)
    headers: dict[str, str | None] = {ev["event_id"]: None for ev in created}
    headers[created[0]["event_id"]] = created_header
    headers[committed["event_id"]] = commit_header
    return [ONLINE, *created, committed], headers


def commit_event_id(*orders: str) -> str:
    """The event id `trace_run` gives its commit."""
    return str(commit(2, "d1", "c1", *orders)["event_id"])


def test_a_commit_continuing_its_order_s_trace_is_not_a_trace_mismatch() -> None:
    """The commit's header carries the trace of the order's upstream header."""
    header = trace_header_for(UPSTREAM, "o1", commit_event_id("o1"))
    events, headers = trace_run(UPSTREAM, header, "o1")
    assert check_invariants(events, traceparents=headers).violation_count == 0


def test_a_commit_in_another_trace_is_a_trace_mismatch() -> None:
    """A commit whose header starts a trace of its own breaks the order's trace."""
    other = start_trace("somewhere-else").header
    events, headers = trace_run(UPSTREAM, other, "o1")
    assert len(check_invariants(events, traceparents=headers).violations["trace_mismatch"]) == 1


def test_a_commit_without_a_header_is_a_trace_mismatch() -> None:
    """Commits must carry the trace context; a missing header is reported."""
    events, headers = trace_run(UPSTREAM, None, "o1")
    report = check_invariants(events, traceparents=headers)
    assert report.violations["trace_mismatch"] == ["d1: no traceparent header"]


def test_an_order_without_a_header_is_checked_against_the_trace_derived_from_its_id() -> None:
    """Without an upstream header, the order's trace is the one derived from its order id."""
    derived = trace_header_for(None, "o1", commit_event_id("o1"))
    events, headers = trace_run(None, derived, "o1")
    assert check_invariants(events, traceparents=headers).violation_count == 0
    continuing_upstream = trace_header_for(UPSTREAM, "o1", commit_event_id("o1"))
    events, headers = trace_run(None, continuing_upstream, "o1")
    assert len(check_invariants(events, traceparents=headers).violations["trace_mismatch"]) == 1


def test_a_bundle_commit_may_continue_any_of_its_orders_traces() -> None:
    """A bundle's commit continues the trace of one of its orders, not necessarily the first."""
    second = trace_header_for(None, "o2", commit_event_id("o1", "o2"))
    events, headers = trace_run(UPSTREAM, second, "o1", "o2")
    assert check_invariants(events, traceparents=headers).violation_count == 0


def test_traces_are_not_checked_without_headers() -> None:
    """Without the records' headers the checker reports no trace mismatch."""
    events, _ = trace_run(UPSTREAM, None, "o1")
    assert check_invariants(events).violations["trace_mismatch"] == []
