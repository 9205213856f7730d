"""Live dispatch on a real broker: lifecycle paths, idempotence, parity, rebalance, cadence."""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from contracts.geo import decode_center, shard_of
from contracts.tracing import parse_traceparent, start_trace
from dispatch.live.invariants import check_invariants
from dispatchflow.settings import Settings
from features.store import OnlineFeatureStore
from simulators.city import SimRecord, SimulationLog, run_simulation, small_town
from simulators.inprocess import InProcessDispatch
from simulators.synthetic import Record
from streams.bench_ingest import generate_pings
from streams.consistency import check_topics
from streams.sim_dispatch import KafkaDispatch
from streams.worker_process import WorkerProcess
from tests.integration.conftest import Cluster, features_fed
from tests.integration.stepping import AtStep

T0 = 1_795_000_000_000
S = 1_000
SHARD = shard_of(40.7580, -73.9855, 4)
LAT, LON = decode_center(SHARD)


def ev(event_type: str, ts_ms: int, **fields: Any) -> dict[str, Any]:
    """An event with a deterministic id."""
    event_id = (
        f"{event_type}-{ts_ms}-{'-'.join(str(v) for v in fields.values() if isinstance(v, str))}"
    )
    return {"event_id": event_id[:120], "type": event_type, "v": 1, "ts_ms": ts_ms, **fields}


def rec(topic: str, key: str, event: dict[str, Any]) -> SimRecord:
    """A record for KafkaDispatch."""
    return SimRecord(topic, key.encode(), event)


def online(courier_id: str, ts_ms: int, dlat: float = 0.0) -> list[SimRecord]:
    """A courier going online with a fix at the shard centre (plus an offset)."""
    fix = {"courier_id": courier_id, "lat": LAT + dlat, "lon": LON, "ts_ms": ts_ms}
    return [
        rec(
            "courier_events",
            courier_id,
            ev(
                "courier_online",
                ts_ms,
                courier_id=courier_id,
                lat=LAT + dlat,
                lon=LON,
                capacity=2,
                vehicle="bike",
            ),
        ),
        rec(
            "courier_pings",
            "gw",
            {
                **ev("courier_ping_batch", ts_ms, pings=[fix]),
                "event_id": f"pings-{courier_id}-{ts_ms}",
            },
        ),
    ]


def tick(ts_ms: int) -> SimRecord:
    """A tick of the test shard."""
    return rec("dispatch_ticks", SHARD, ev("dispatch_tick", ts_ms, shard=SHARD))


def order(order_id: str, ts_ms: int) -> SimRecord:
    """An order ready right away at the shard centre."""
    return rec(
        "order_events",
        SHARD,
        ev(
            "order_created",
            ts_ms,
            order_id=order_id,
            merchant_id="m1",
            shard=SHARD,
            pickup={"lat": LAT, "lon": LON},
            dropoff={"lat": LAT + 0.01, "lon": LON},
            prep_estimate_s=0.0,
        ),
    )


def respond(decision: dict[str, Any], answer: str, ts_ms: int) -> SimRecord:
    """The courier's answer to a proposal."""
    return rec(
        "assignment_responses",
        SHARD,
        ev(
            "assignment_response",
            ts_ms,
            decision_id=decision["decision_id"],
            courier_id=decision["courier_id"],
            shard=SHARD,
            response=answer,
        ),
    )


def of_type(outputs: list[SimRecord], event_type: str) -> list[dict[str, Any]]:
    """Events of one type among outputs."""
    return [r.event for r in outputs if r.event["type"] == event_type]


def _proposed(dispatch: KafkaDispatch) -> dict[str, Any]:
    """c1 online at T0 and o1 ordered at T0 + 1 s: the proposal of the tick at T0 + 2 s."""
    dispatch.run_until([*online("c1", T0), order("o1", T0 + S)], T0 + S)
    out = dispatch.run_until([tick(T0 + 2 * S)], T0 + 2 * S)
    return of_type(out, "assignment_proposed")[0]


@pytest.fixture
def live(cluster: Cluster) -> Iterator[tuple[Cluster, KafkaDispatch]]:
    """A worker driven in lockstep (its own ticker off) through Kafka."""
    worker = cluster.start_worker(tick_interval_s=15.0, lease_s=30.0, cooldown_s=300.0)
    dispatch = KafkaDispatch(cluster.client, [worker.url])
    try:
        yield cluster, dispatch
    finally:
        dispatch.close()


def test_accept_commits_and_repeated_or_replayed_responses_commit_nothing_more(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """An accept commits once; the same response again, and its record replayed, commit nothing."""
    _, dispatch = live
    accept = respond(_proposed(dispatch), "accept", T0 + 3 * S)
    first = of_type(dispatch.run_until([accept], T0 + 3 * S), "assignment_committed")
    again = dispatch.run_until([accept, accept], T0 + 4 * S)
    assert [c["order_ids"] for c in first] == [["o1"]]
    assert of_type(again, "assignment_committed") == []


def test_an_answer_to_an_offer_counts_once_in_the_courier_s_online_features(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """An accept updates the online features (the courier's acceptance rate); again, nothing."""
    cluster, dispatch = live
    created = order("o1", T0 + S)
    dispatch.run_until([*online("c1", T0), created], T0 + S)
    proposal = of_type(dispatch.run_until([tick(T0 + 2 * S)], T0 + 2 * S), "assignment_proposed")[0]
    accept = respond(proposal, "accept", T0 + 3 * S)
    dispatch.run_until([accept, accept], T0 + 3 * S)
    cluster.wait_caught_up()
    expected = features_fed([created.event, accept.event])
    acceptance = OnlineFeatureStore(dict(expected)).read("courier_acceptance_30d", "c1", T0 + 3 * S)
    assert acceptance.values["responses"] == 1.0
    assert cluster.online_features() == expected


UPSTREAM_TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _records_of(outputs: list[SimRecord], event_type: str) -> list[SimRecord]:
    """Output records of one event type."""
    return [r for r in outputs if r.event["type"] == event_type]


def _offer_and_accept(dispatch: KafkaDispatch, created: SimRecord) -> list[SimRecord]:
    """c1 online, `created`, a tick and c1's accept; the proposal and commit records."""
    dispatch.run_until([*online("c1", T0), created], T0 + S)
    [proposal] = _records_of(
        dispatch.run_until([tick(T0 + 2 * S)], T0 + 2 * S), "assignment_proposed"
    )
    accept = respond(proposal.event, "accept", T0 + 3 * S)
    [commit] = _records_of(dispatch.run_until([accept], T0 + 3 * S), "assignment_committed")
    return [proposal, commit]


def test_an_order_s_trace_context_reaches_its_proposal_and_commit(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """Proposal and commit carry `traceparent` headers in the trace of the order's creation."""
    _, dispatch = live
    records = _offer_and_accept(dispatch, replace(order("o1", T0 + S), traceparent=UPSTREAM_TRACE))
    upstream = parse_traceparent(UPSTREAM_TRACE)
    contexts = [parse_traceparent(str(r.traceparent)) for r in records]
    assert {(c.trace_id, c.flags) for c in contexts} == {(upstream.trace_id, "01")}
    assert len({c.parent_id for c in contexts} | {upstream.parent_id}) == 3


def test_a_malformed_trace_header_is_counted_and_its_order_still_dispatched(
    cluster: Cluster,
) -> None:
    """The header is ignored (the order's records get a trace from its id) and counted."""
    worker = cluster.start_worker(tick_interval_s=15.0, lease_s=30.0, cooldown_s=300.0)
    dispatch = KafkaDispatch(cluster.client, [worker.url])
    try:
        records = _offer_and_accept(dispatch, replace(order("o1", T0 + S), traceparent="00-bad"))
    finally:
        dispatch.close()
    traces = {parse_traceparent(str(r.traceparent)).trace_id for r in records}
    assert traces == {start_trace("o1").trace_id}
    metrics = worker.request("/metrics")[1].decode()
    assert 'dispatchflow_trace_contexts_invalid_total{topic="order_events"} 1.0' in metrics


def rank_until_answered(
    worker: WorkerProcess, body: bytes, timeout_s: float = 30.0
) -> tuple[int, bytes]:
    """POST /rank to the rank server again while it sheds (503), as a caller retries.

    The first request of a shard waits for the worker to publish its view; on a busy machine
    that may take longer than the request's deadline.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        status, raw = worker.request("/rank", body=body, base_url=worker.rank_url)
        if status != 503 or time.monotonic() > deadline:
            return status, raw
        time.sleep(0.1)


def test_rank_answers_from_the_worker_s_live_shard_state(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """`POST /rank` lists the shard's idle couriers nearest first; a bad body gets a 400."""
    cluster, dispatch = live
    dispatch.run_until([*online("near", T0), *online("far", T0, dlat=0.02)], T0 + S)
    request = {
        "pickup": {"lat": LAT, "lon": LON},
        "dropoff": {"lat": LAT + 0.01, "lon": LON},
        "k": 5,
        "request_time_ms": T0 + 2 * S,
    }
    worker = cluster.workers[0]
    status, raw = rank_until_answered(worker, orjson.dumps(request))
    answer = orjson.loads(raw)
    assert status == 200 and answer["shard"] == SHARD
    assert [c["courier_id"] for c in answer["couriers"]] == ["near", "far"]
    assert worker.request("/rank", body=b"{}", base_url=worker.rank_url)[0] == 400


def test_decline_releases_and_the_next_tick_offers_another_courier(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """A decline releases the order with its reason; the next tick offers it to someone else."""
    _, dispatch = live
    dispatch.run_until(
        [*online("c1", T0), *online("c2", T0, dlat=0.004), order("o1", T0 + S)], T0 + S
    )
    proposal = of_type(dispatch.run_until([tick(T0 + 2 * S)], T0 + 2 * S), "assignment_proposed")[0]
    released = of_type(
        dispatch.run_until([respond(proposal, "decline", T0 + 3 * S)], T0 + 3 * S),
        "assignment_released",
    )
    again = of_type(dispatch.run_until([tick(T0 + 4 * S)], T0 + 4 * S), "assignment_proposed")
    assert [(r["order_ids"], r["reason"]) for r in released] == [(["o1"], "declined")]
    assert [(p["order_ids"], p["courier_id"] != proposal["courier_id"]) for p in again] == [
        (["o1"], True)
    ]


def test_an_unanswered_offer_is_released_when_its_lease_expires(
    live: tuple[Cluster, KafkaDispatch],
) -> None:
    """With no answer within the lease, a tick releases the offer as lease_expired."""
    _, dispatch = live
    _proposed(dispatch)
    out = dispatch.run_until([tick(T0 + 40 * S)], T0 + 40 * S)
    assert [(r["order_ids"], r["reason"]) for r in of_type(out, "assignment_released")] == [
        (["o1"], "lease_expired")
    ]


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        (
            rec(
                "order_events",
                SHARD,
                ev("order_cancelled", T0 + 4 * S, order_id="o1", shard=SHARD, reason="customer"),
            ),
            "order_cancelled",
        ),
        (
            rec("courier_events", "c1", ev("courier_offline", T0 + 4 * S, courier_id="c1")),
            "courier_offline",
        ),
    ],
    ids=["customer cancels", "courier goes offline"],
)
def test_a_cancellation_or_the_courier_going_offline_releases_a_committed_order(
    live: tuple[Cluster, KafkaDispatch], ending: SimRecord, reason: str
) -> None:
    """Before pickup, a customer cancellation or the courier going offline releases the order."""
    _, dispatch = live
    proposal = _proposed(dispatch)
    dispatch.run_until([respond(proposal, "accept", T0 + 3 * S)], T0 + 3 * S)
    out = dispatch.run_until([ending], T0 + 4 * S)
    assert [(r["order_ids"], r["reason"]) for r in of_type(out, "assignment_released")] == [
        (["o1"], reason)
    ]


def by_timestamp(outputs: list[SimRecord]) -> dict[int, set[tuple[str, str, str | None]]]:
    """Output event ids and trace headers grouped by event time (order within one is free)."""
    grouped: dict[int, set[tuple[str, str, str | None]]] = defaultdict(set)
    for r in outputs:
        if r.topic != "courier_handoffs":
            grouped[int(r.event["ts_ms"])].add((r.topic, str(r.event["event_id"]), r.traceparent))
    return dict(grouped)


def test_a_live_run_decides_exactly_like_the_in_process_run(cluster: Cluster) -> None:
    """A seeded city through Kafka and a worker yields the in-process outputs at every time.

    The tick budget is wide on both sides: the circuit breaker is a wall-clock guard (tested on
    its own), and a loaded machine must not make the two runs decide differently. Likewise the
    worker applies its buffered pings to the online features before every tick, as the
    in-process run does: what surge prices (the zones' supply) must not depend on where the
    wall-clock flush of `ping_features_flush_s` happened to fall.
    """
    config = small_town(seed=11)
    budget_s = 60.0
    worker = cluster.start_worker(
        tick_interval_s=config.tick_interval_s,
        tick_budget_s=budget_s,
        ping_features_flush_s=0.0,
    )
    dispatch = KafkaDispatch(cluster.client, [worker.url])
    try:
        live_log = run_simulation(config, dispatch, progress=False)
    finally:
        dispatch.close()
    inproc = InProcessDispatch.from_settings(
        Settings(tick_interval_s=config.tick_interval_s, tick_budget_s=budget_s)
    )
    try:
        local_log = run_simulation(config, inproc, progress=False)
    finally:
        inproc.close()
    assert by_timestamp(list(live_log.outputs)) == by_timestamp(list(local_log.outputs))
    commits = [r for r in live_log.outputs if r.event["type"] == "assignment_committed"]
    # The city's orders come with sampled traces: commits continue them (flags 01).
    assert commits and all(str(r.traceparent).endswith("-01") for r in commits)
    assert live_log.settled


def _assert_every_invariant(cluster: Cluster, log: SimulationLog) -> None:
    """Every order ended; no double commit, overload, commit after the end or broken trace."""
    report = asyncio.run(check_topics(cluster.client, require_terminal=True))
    assert report.summary()["violations"] == {
        "double_commit": 0,
        "over_capacity": 0,
        "commit_after_terminal": 0,
        "unfinished_order": 0,
        "trace_mismatch": 0,
    }
    assert report.commits > 0
    records = (*log.inputs, *log.outputs)
    headers = {str(r.event["event_id"]): r.traceparent for r in records}
    assert (
        check_invariants(
            [r.event for r in records], require_terminal=True, traceparents=headers
        ).violation_count
        == 0
    )


def test_two_workers_with_a_forced_rebalance_keep_every_invariant(cluster: Cluster) -> None:
    """Two workers, one stopped mid-run: no double assignment, no overload, every order ended."""
    config = small_town(seed=5)
    w1 = cluster.start_worker("w1", tick_interval_s=config.tick_interval_s)
    w2 = cluster.start_worker("w2", tick_interval_s=config.tick_interval_s)
    w1.wait_ready(90)
    dispatch = KafkaDispatch(cluster.client, [w1.url, w2.url])

    def stop_w2() -> None:
        dispatch.remove_worker(w2.url)
        assert w2.stop() == 0
        w1.wait_ready(90)

    try:
        log = run_simulation(config, AtStep(dispatch, 40, stop_w2), progress=False)
    finally:
        dispatch.close()
    _assert_every_invariant(cluster, log)


def test_a_worker_joining_mid_run_keeps_every_invariant(cluster: Cluster) -> None:
    """A second worker joins mid-run (a scale-up): the partitions it takes keep every invariant.

    The joining rebalance commits what the first worker handled and makes it forget its
    progress, so the lockstep also has to count the group's commits to see that nothing is in
    flight.
    """
    config = small_town(seed=5)
    w1 = cluster.start_worker("w1", tick_interval_s=config.tick_interval_s)
    w1.wait_ready(90)
    dispatch = KafkaDispatch(cluster.client, [w1.url], settle_timeout_s=60.0)

    def start_w2() -> None:
        w2 = cluster.start_worker("w2", tick_interval_s=config.tick_interval_s)
        w1.wait_ready(90)
        dispatch.add_worker(w2.url)

    try:
        log = run_simulation(config, AtStep(dispatch, 40, start_w2), progress=False)
    finally:
        dispatch.close()
    _assert_every_invariant(cluster, log)


def _interval_buckets(metrics: bytes) -> dict[float, float]:
    return {
        float(m.group(1).decode().replace("+Inf", "inf")): float(m.group(2))
        for m in re.finditer(
            rb'^dispatchflow_tick_interval_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)',
            metrics,
            re.M,
        )
    }


#: Ticks the cadence test measures while pings drain, and most 200k-ping chunks it adds.
MIN_DRAIN_TICKS = 10
MAX_DRAIN_ROUNDS = 6


def test_tick_cadence_holds_while_a_ping_backlog_drains(cluster: Cluster) -> None:
    """With 1 s ticks, 99% of tick intervals stay within 2 s while backlogged pings drain.

    Pings are backlogged 200k at a time until at least `MIN_DRAIN_TICKS` ticks fell within the
    drains (at most `MAX_DRAIN_ROUNDS` chunks), so a fast machine measures as many ticks as a
    slow one; a worker whose ticks stall while it drains fails either way.
    """
    worker = cluster.start_worker(ticker_enabled=True, tick_interval_s=1.0)
    now = int(time.time() * 1000)
    cluster.produce(
        [
            Record(
                "courier_events",
                b"k1",
                orjson.dumps(
                    ev(
                        "courier_online",
                        now,
                        courier_id="k1",
                        lat=LAT,
                        lon=LON,
                        capacity=2,
                        vehicle="bike",
                    )
                ),
                now,
            ),
            Record(
                "order_events",
                SHARD.encode(),
                orjson.dumps(
                    ev(
                        "order_created",
                        now,
                        order_id="x1",
                        merchant_id="m",
                        shard=SHARD,
                        pickup={"lat": LAT, "lon": LON},
                        dropoff={"lat": LAT, "lon": LON},
                        prep_estimate_s=36_000.0,
                    )
                ),
                now,
            ),
        ]
    )
    deadline = time.monotonic() + 60
    while (
        sum(_interval_buckets(worker.request("/metrics")[1]).values()) == 0
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    before = _interval_buckets(worker.request("/metrics")[1])
    # A fast machine drains one chunk in a few ticks: add chunks until enough ticks fell in.
    chunk, produced, total = 200_000, 0, 0.0
    during: dict[float, float] = {}
    applied = re.compile(rb"^dispatchflow_positions_applied_total ([0-9.e+]+)", re.M)
    for round_ in range(MAX_DRAIN_ROUNDS):
        cluster.produce(
            generate_pings(
                chunk,
                500,
                5000,
                3 + round_,
                start_ts_ms=now - chunk // 500 * 1000,
                id_prefix=f"round{round_}-",
            )
        )
        produced += chunk
        deadline, applied_now = time.monotonic() + 300, 0.0
        while time.monotonic() < deadline:
            match = applied.search(worker.request("/metrics")[1])
            applied_now = float(match.group(1)) if match else 0.0
            if applied_now >= produced:
                break
            time.sleep(0.2)
        assert applied_now >= produced, f"{applied_now:.0f} of {produced} pings applied"
        after = _interval_buckets(worker.request("/metrics")[1])
        during = {le: after[le] - before.get(le, 0.0) for le in after}
        total = during[float("inf")]
        if total >= MIN_DRAIN_TICKS:
            break
    assert total >= MIN_DRAIN_TICKS, f"too few ticks during the drain: {during}"
    assert during[2.0] >= 0.99 * total, f"tick intervals during the drain: {during}"
