"""Every output the live shard engine emits: deterministic, and valid against its schema."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.validation import validate_schema
from tests.unit.dispatch.live.shard_world import (
    T0,
    S,
    World,
    committed,
    offer,
    offset,
)


def every_output_type(w: World) -> None:
    """A scenario emitting every output type of the engine at least once."""
    proposal = committed(w)  # proposed, committed
    w.create("o2", T0 + 4 * S, pickup=offset(-400.0, 0.0), merchant_id="m2")
    w.online("c2", T0 + 4 * S, at=offset(-300.0, 0.0))
    second = offer(w, T0 + 5 * S)
    w.respond(second["decision_id"], second["courier_id"], T0 + 6 * S, "decline")  # released
    w.picked_up("o1", "c1", proposal["route"][0]["planned_ts_ms"] + 600 * S)
    w.create("o3", T0 + 7 * S, prep_s=14_000.0, pickup=offset(0.0, -600.0), merchant_id="m3")
    for i in range(40):
        w.create(f"busy{i}", T0 + 8 * S, prep_s=10_000.0, merchant_id="m4")
    for n in range(1, 26):  # eta and surge cadences; o3 expires after max_order_age_s
        w.tick(T0 + 3_600 * S * (n // 20) + 10 * S + n * S)


OUTPUT_TYPES = (
    "assignment_proposed",
    "assignment_committed",
    "assignment_released",
    "order_expired",
    "eta_update",
    "surge_update",
)


@pytest.fixture(scope="module")
def all_outputs() -> list[dict[str, Any]]:
    """The JSON outputs of `every_output_type`."""
    with World() as w:
        every_output_type(w)
        return [o.value for o in w.outputs if isinstance(o.value, dict)]


def test_the_same_inputs_give_the_same_outputs() -> None:
    """Two fresh engines given the same inputs emit identical outputs, in the same order."""
    runs = []
    for _ in range(2):
        with World() as w:
            every_output_type(w)
            runs.append([(o.topic, o.key, o.value) for o in w.outputs])
    assert runs[0] == runs[1] and runs[0]


@pytest.mark.parametrize("kind", OUTPUT_TYPES)
def test_every_output_of_each_type_passes_its_schema(
    all_outputs: list[dict[str, Any]], kind: str
) -> None:
    """The engine emits events of this type, and each one is valid against its JSON Schema."""
    events = [e for e in all_outputs if e["type"] == kind]
    assert events, f"the scenario emitted no {kind}"
    for event in events:
        validate_schema(event)
