"""The live shard engine carries each order's trace context onto the records about the order."""

from __future__ import annotations

from pathlib import Path

from contracts.tracing import parse_traceparent, start_trace
from dispatch.live.effects import Output
from dispatch.live.engine_config import EngineConfig
from tests.unit.dispatch.live.shard_world import T0, S, World, offer

UPSTREAM = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ORDER_RECORDS = ("assignment_proposed", "assignment_committed", "eta_update", "assignment_released")


def _about_the_order(w: World) -> list[Output]:
    """Every record of the order's dispatch so far (proposal, commit, ETAs, release)."""
    return [o for o in w.outputs if isinstance(o.value, dict) and o.value["type"] in ORDER_RECORDS]


def _accept_then_cancel(w: World, traceparent: str | None) -> None:
    """o1 offered to c1, accepted, then cancelled (a release)."""
    w.online("c1", T0)
    w.create("o1", T0 + S, traceparent=traceparent)
    proposal = offer(w, T0 + 2 * S)
    w.respond(proposal["decision_id"], "c1", T0 + 3 * S)
    w.cancel("o1", T0 + 4 * S)


def test_every_record_about_an_order_continues_the_trace_of_its_creation(world: World) -> None:
    """Proposal, commit, ETA and release all carry the upstream trace id and its flags."""
    _accept_then_cancel(world, UPSTREAM)
    records = _about_the_order(world)
    assert {o.event["type"] for o in records} == set(ORDER_RECORDS)
    upstream = parse_traceparent(UPSTREAM)
    for output in records:
        assert output.traceparent is not None, output.event["type"]
        ctx = parse_traceparent(output.traceparent)
        assert (ctx.trace_id, ctx.flags) == (upstream.trace_id, upstream.flags)


def test_each_record_about_an_order_has_its_own_span(world: World) -> None:
    """No two records share a parent id, and none reuses the upstream span's."""
    _accept_then_cancel(world, UPSTREAM)
    spans = [parse_traceparent(str(o.traceparent)).parent_id for o in _about_the_order(world)]
    assert len(set(spans)) == len(spans)
    assert parse_traceparent(UPSTREAM).parent_id not in spans


def test_an_order_created_without_a_trace_gets_one_derived_from_its_id(world: World) -> None:
    """Without an upstream header the records share an unsampled trace made from the order id."""
    _accept_then_cancel(world, None)
    traces = {parse_traceparent(str(o.traceparent)) for o in _about_the_order(world)}
    assert {(t.trace_id, t.flags) for t in traces} == {(start_trace("o1").trace_id, "00")}


def test_the_same_input_yields_the_same_trace_headers(tmp_path: Path) -> None:
    """Span ids are derived, not drawn: a replay writes identical headers."""
    headers = []
    for run in ("a", "b"):
        with World(root=tmp_path / run) as w:
            _accept_then_cancel(w, UPSTREAM)
            headers.append([o.traceparent for o in _about_the_order(w)])
    assert headers[0] == headers[1]


def test_an_expired_order_s_record_continues_its_trace(tmp_path: Path) -> None:
    """`order_expired` joins the order's trace too."""
    with World(root=tmp_path, config=EngineConfig(max_order_age_s=60.0)) as w:
        w.create("o1", T0, traceparent=UPSTREAM)
        w.tick(T0 + 80 * S)
        [expired] = [
            o for o in w.outputs if isinstance(o.value, dict) and o.event["type"] == "order_expired"
        ]
        assert parse_traceparent(str(expired.traceparent)).trace_id == (
            parse_traceparent(UPSTREAM).trace_id
        )
