from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from simulators.city import small_town
from simulators.live_bench import METRICS, BenchPlan, means, parse_seeds, prep_floor, table


def row(variant: str, seed: int, value: float | None) -> dict[str, Any]:
    """A result row whose every metric is `value`."""
    return {"variant": variant, "seed": seed} | dict.fromkeys(METRICS, value)


def test_seeds_parse_from_lists_and_ascending_ranges_once_each() -> None:
    """`1,3-5,4` is 1, 3, 4, 5 in order of first mention."""
    assert parse_seeds("1, 3-5,4") == (1, 3, 4, 5)


@pytest.mark.parametrize("text", ["5-3", "a", "1,,2", "1-b"])
def test_a_seed_that_is_not_an_integer_or_ascending_range_is_refused(text: str) -> None:
    """A bad part is named in the error."""
    with pytest.raises(ValueError, match="is not a seed"):
        parse_seeds(text)


def test_a_seed_both_evaluated_and_trained_on_is_refused(tmp_path: Path) -> None:
    """No evaluated day may be a training day."""
    with pytest.raises(ValueError, match=r"seeds \[3\] are both evaluated and trained on"):
        BenchPlan((1, 2, 3), (3, 4), tmp_path)


def test_means_are_per_variant_over_seeds_leaving_out_missing_values() -> None:
    """A metric missing for one seed is the mean of the others; missing for all, NaN."""
    rows = [row("fixed", 1, 2.0), row("fixed", 2, None), row("fixed", 3, 4.0)]
    rows += [row("learned", 1, None)]
    averages = means(rows)
    assert list(averages) == ["fixed", "learned"]
    assert all(averages["fixed"][k] == 3.0 for k in METRICS)
    assert all(math.isnan(averages["learned"][k]) for k in METRICS)


def test_the_table_has_a_row_per_variant_and_a_column_per_metric() -> None:
    """Markdown: header, rule, one line per variant; NaN shown as n/a."""
    lines = table(means([row("fixed", 1, 2.5), row("learned", 1, None)])).splitlines()
    assert len(lines) == 4
    assert lines[0].split(" | ")[1:4] == ["orders", "on_time_rate", "ctod_mean_min"]
    assert lines[2].startswith("| fixed | 2.5 |") and "n/a" in lines[3]


def test_the_prep_floor_is_zero_when_kitchens_keep_their_median() -> None:
    """Without per-order kitchen noise, the true median and slowdown give every ready time."""
    config = small_town(3)
    exact = replace(config, merchants=replace(config.merchants, prep_sigma=0.0))
    floor = prep_floor([exact])
    assert floor.orders > 0 and floor.p90_abs_err_min < 0.01


def test_the_prep_floor_grows_with_the_kitchens_noise() -> None:
    """Noisier kitchens leave a larger error that no placement-time prediction removes."""
    config = small_town(3)
    noisy = replace(config, merchants=replace(config.merchants, prep_sigma=0.6))
    assert prep_floor([noisy]).p50_abs_err_min > prep_floor([config]).p50_abs_err_min > 0.5
