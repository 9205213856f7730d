from collections import Counter

import pytest

from contracts.topics import load_topics
from contracts.validation import IngressValidator, TimeBounds, default_rules
from simulators.synthetic import CityConfig, SyntheticCity

SMALL = CityConfig(n_couriers=20, n_orders=40, duration_s=300)


def test_same_seed_same_records() -> None:
    """Two cities with one seed produce identical records."""
    assert SyntheticCity(SMALL).records() == SyntheticCity(SMALL).records()


def test_records_are_in_timestamp_order() -> None:
    """Records come out sorted by their timestamp."""
    stamps = [r.ts_ms for r in SyntheticCity(SMALL).records()]
    assert stamps == sorted(stamps)


def test_every_untagged_record_passes_ingress_and_tagged_ones_are_there() -> None:
    """Valid records pass the stateless checks; invalid ones cover several reasons."""
    topics = load_topics()
    validator = IngressValidator(
        default_rules({t.name: t.value_schemas for t in topics.inputs()}),
        TimeBounds(max_age_ms=86_400_000, max_lead_ms=300_000),
        SMALL.shard_precision,
    )
    records = SyntheticCity(SMALL).records()
    for record in records:
        if record.expect_reason is None and record.topic != "courier_pings":
            validator.check(record.topic, record.key, record.value, record.ts_ms)
    reasons = Counter(r.expect_reason for r in records if r.expect_reason)
    assert {"undecodable", "schema_invalid", "unknown_id", "duplicate_event", "wrong_key"} <= set(
        reasons
    )


def test_a_config_without_couriers_is_refused() -> None:
    """A city needs at least one courier."""
    with pytest.raises(ValueError, match="courier"):
        CityConfig(n_couriers=0)
