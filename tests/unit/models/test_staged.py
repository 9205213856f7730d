"""The staged models trained from event logs (`models.staged`)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from features.offline import OfflineRows, load_event_log, replay_log
from models.staged import (
    DEFAULT_PREP_S,
    PREP_COLUMNS,
    Days,
    StagedModels,
    predict_prep,
    prep_base_s,
    prep_training_data,
    train_staged,
)

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def rows(event_log: Path) -> OfflineRows:
    """The shared four-day log replayed through the offline materialization."""
    return replay_log(load_event_log(event_log))


@pytest.fixture(scope="module")
def trained(rows: OfflineRows) -> StagedModels:
    """The three models of that log."""
    return train_staged([rows], progress=False)


def test_every_model_of_the_set_is_trained(trained: StagedModels) -> None:
    """A log with labelled orders and legs yields prep, travel and placement-ETA models."""
    assert sorted(trained.as_dict()) == ["prep", "total", "travel"]
    assert trained.prep is not None and trained.prep.feature_names == PREP_COLUMNS


def test_an_order_with_a_tablet_estimate_trains_with_and_without_it(rows: OfflineRows) -> None:
    """Each labelled order is a row as at placement; one with an estimate is also a row with it."""
    days = Days([rows])
    data, row_days = prep_training_data([rows], days)
    labelled = [r for r in rows.orders if r["prep_s"] is not None]
    estimated = [r for r in labelled if r["estimated_ready_ts_ms"] is not None]
    assert len(data.actual_s) == len(row_days) == len(labelled) + len(estimated)
    tablet = data.features[:, PREP_COLUMNS.index("tablet_estimate_s")]
    assert np.isnan(tablet[: len(labelled)]).all()
    assert np.isfinite(tablet[len(labelled) :]).all()


def test_the_same_date_in_two_logs_is_two_days(rows: OfflineRows) -> None:
    """Days are (log, date): two simulated cities of one date never share a day."""
    one = Days([rows])
    two = Days([rows, rows])
    assert len(two) == 2 * len(one)
    ts = rows.orders[0]["created_ts_ms"]
    assert two.of(0, ts) != two.of(1, ts)


def test_too_few_days_are_refused(rows: OfflineRows) -> None:
    """Calibrating on the last two days needs at least three."""
    first_day = rows.orders[0]["created_ts_ms"] // DAY_MS
    one_day = OfflineRows(
        [r for r in rows.orders if r["created_ts_ms"] // DAY_MS == first_day],
        [g for g in rows.legs if g["depart_ts_ms"] // DAY_MS == first_day],
    )
    with pytest.raises(ValueError, match="need more than 2 days"):
        train_staged([one_day], progress=False)


def test_prep_p90_is_at_least_its_p50(trained: StagedModels, rows: OfflineRows) -> None:
    """P1's quantiles are ordered for every order, with or without the tablet's estimate."""
    assert trained.prep is not None
    picked = rows.orders[:50]
    own = [r["prep_estimate_s"] for r in picked]
    for tablet in ([None] * len(picked), [600.0] * len(picked)):
        p50, p90, fell_back = predict_prep(trained.prep, picked, own, tablet)
        assert not fell_back.any()
        assert (p90 >= p50).all() and (p50 > 0).all()


def test_the_prep_base_is_the_own_estimate_then_the_merchant_median_then_the_default() -> None:
    """The base falls back in order when a value is missing or not positive."""
    median = {"merchant_prep_30d.prep_p50_s": 700.0}
    assert prep_base_s(median, 500.0) == 500.0
    assert prep_base_s(median, None) == 700.0
    assert prep_base_s(median, math.nan) == 700.0
    assert prep_base_s({}, 0.0) == DEFAULT_PREP_S
