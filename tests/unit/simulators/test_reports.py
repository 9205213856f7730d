"""Report helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.reports import (
    ReferenceError,
    format_number,
    format_table,
    paper_means,
    per_instance,
    read_reference,
)

SHARED = Path(__file__).resolve().parents[3] / "tests" / "data" / "shared"


def test_reference_is_read_from_the_shared_directory() -> None:
    """Table 17 means and Table 4 per-instance values come out under our metric keys."""
    rows = read_reference(SHARED)
    means = paper_means(rows)
    assert {"ctod_mean", "ctod_p90", "undelivered_pct", "rtop_mean", "cost_per_order"} <= set(means)
    t4 = per_instance(rows, "Table 4", exact=True)
    assert len(t4) == 16 and all("ctod_mean" in v for v in t4.values())


def test_missing_reference_is_a_clear_error(tmp_path: Path) -> None:
    """A shared directory without the reference file raises ReferenceError."""
    with pytest.raises(ReferenceError):
        read_reference(tmp_path)


def test_table_aligns_columns_and_marks_missing_values() -> None:
    """Every line has the same width; missing values print as '-'."""
    text = format_table("t", ["a", "b"], {"x": {"a": 1.234}, "long column": {"b": float("nan")}})
    lines = text.splitlines()[1:]
    assert len({len(line.rstrip()) for line in lines[:2]}) >= 1
    assert "1.23" in text and "-" in lines[-1]
    assert format_number(True) == "yes" and format_number(None) == "-"
