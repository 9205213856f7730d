import pytest

from contracts.topics import load_topics
from contracts.validation import validate_schema
from simulators.city import compute_kpis, lunch_rush, run_simulation
from tests.unit.simulators.city.nearest_idle import NearestIdleDispatch


@pytest.mark.slow
def test_the_lunch_rush_runs_to_a_settled_end_with_valid_records() -> None:
    """The lunch-rush preset settles every order and emits only valid, correctly keyed records."""
    log = run_simulation(lunch_rush(), NearestIdleDispatch(), progress=False)
    topics = load_topics()
    for rec in log.inputs:
        body = validate_schema(rec.event)
        assert body["type"] in topics[rec.topic].value_schemas
    kpis = compute_kpis(log)
    assert log.settled
    assert kpis["open_at_end"] == 0
    assert kpis["delivered"] + kpis["cancelled"] + kpis["expired"] == kpis["orders"] > 200
