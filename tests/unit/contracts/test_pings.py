from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.pings import decode_pings
from contracts.records import envelope
from contracts.rejections import EventRejected, RejectReason
from contracts.schemas import compiled_validator
from contracts.validation import TimeBounds

NOW_MS = 1_795_000_000_000
BOUNDS = TimeBounds(max_age_ms=3_600_000, max_lead_ms=60_000)


def fix(**overrides: Any) -> dict[str, Any]:
    """A valid fix, with overrides."""
    value: dict[str, Any] = {"courier_id": "c1", "lat": 40.7, "lon": -73.9, "ts_ms": NOW_MS}
    value.update(overrides)
    return value


def batch(fixes: list[Any]) -> bytes:
    """A courier_ping_batch record holding `fixes`."""
    return orjson.dumps(envelope("courier_ping_batch", "b1", NOW_MS, pings=fixes))


# Fixes that are sometimes valid and sometimes not, in every way the schema can object to.
any_number = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-400, max_value=400),
    st.integers(-400, 400),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
fixes = st.fixed_dictionaries(
    {
        "courier_id": st.one_of(st.text(max_size=6), st.integers(-(2**40), 2**40), st.just("c1")),
        "lat": any_number,
        "lon": any_number,
        "ts_ms": st.one_of(
            st.integers(NOW_MS - 10**7, NOW_MS + 10**6), st.floats(), st.just(NOW_MS)
        ),
    },
    optional={
        "speed_mps": any_number,
        "heading_deg": any_number,
        "accuracy_m": any_number,
        "extra": st.integers(-5, 5),
    },
)


def schema_accepts(value: dict[str, Any]) -> bool:
    """The JSON Schema's verdict on a one-fix batch, time bounds included."""
    event = orjson.loads(batch([value]))
    try:
        compiled_validator("courier_ping_batch")(event)
    except fastjsonschema.JsonSchemaValueException:
        return False
    ts = value["ts_ms"]
    return NOW_MS - BOUNDS.max_age_ms <= ts <= NOW_MS + BOUNDS.max_lead_ms


@settings(max_examples=300)
@given(st.lists(fixes, min_size=1, max_size=8))
def test_every_fix_gets_the_schemas_verdict(values: list[dict[str, Any]]) -> None:
    """The fast decoder accepts exactly the fixes the JSON Schema (and time bounds) accept."""
    decoded = decode_pings(batch(values), NOW_MS, BOUNDS, 100)
    accepted = {i for i in range(len(values))} - {r.index for r in decoded.rejects}
    assert accepted == {i for i, v in enumerate(values) if schema_accepts(v)}
    assert len(decoded.columns) == len(accepted)


def test_valid_fixes_around_an_invalid_one_are_kept() -> None:
    """One bad fix is rejected alone; its neighbours come through in order."""
    values = [fix(courier_id="a"), fix(courier_id="b", lat=123.0), fix(courier_id="c")]
    decoded = decode_pings(batch(values), NOW_MS, BOUNDS, 100)
    assert decoded.columns.courier_id.tolist() == ["a", "c"]
    assert [(r.index, r.reason) for r in decoded.rejects] == [(1, RejectReason.SCHEMA_INVALID)]


def test_a_single_ping_is_a_batch_of_one() -> None:
    """A courier_ping record decodes to one fix stamped with the event time."""
    event = envelope("courier_ping", "p1", NOW_MS, courier_id="c9", lat=1.0, lon=2.0)
    decoded = decode_pings(orjson.dumps(event), NOW_MS, BOUNDS, 100)
    assert decoded.columns.courier_id.tolist() == ["c9"]
    assert decoded.columns.ts_ms.tolist() == [NOW_MS]


def test_oversized_batch_is_rejected_whole() -> None:
    """A batch above the size limit is rejected as a whole with its own reason."""
    with pytest.raises(EventRejected) as info:
        decode_pings(batch([fix()] * 3), NOW_MS, BOUNDS, 2)
    assert info.value.reason is RejectReason.BATCH_TOO_LARGE


def test_missing_optional_fields_become_nan() -> None:
    """Optional fields absent from a fix are NaN in the columns."""
    decoded = decode_pings(batch([fix(speed_mps=3.0)]), NOW_MS, BOUNDS, 100)
    assert decoded.columns.speed_mps.tolist() == [3.0]
    assert decoded.columns.heading_deg.tolist() != decoded.columns.heading_deg.tolist()  # NaN
