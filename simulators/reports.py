"""Report helpers: comparison tables and the published MDRP reference numbers."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Where the published reference numbers live, relative to the shared directory.
REFERENCE_CSV = Path("benchmarks") / "mdrp" / "published_reference.csv"


class ReferenceError(ValueError):
    """The published reference file is missing or malformed."""


@dataclass(frozen=True)
class ReferenceRow:
    """One number copied from a paper.

    Attributes:
        source: citation.
        table: table in the source (e.g. "Table 17").
        instances: instance set or instance name.
        algorithm: algorithm and setting.
        metric: metric key (same names as our metrics, e.g. `ctod_mean`, `pct_undelivered`).
        value: the published mean or value.
    """

    source: str
    table: str
    instances: str
    algorithm: str
    metric: str
    value: float


def read_reference(shared: Path | str) -> list[ReferenceRow]:
    """Read `<shared>/benchmarks/mdrp/published_reference.csv`.

    Raises:
        ReferenceError: if the file is missing or a row is malformed.
    """
    path = Path(shared) / REFERENCE_CSV
    if not path.is_file():
        raise ReferenceError(f"{path}: missing (pass the shared directory with --shared)")
    rows = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                rows.append(
                    ReferenceRow(
                        source=row["source"],
                        table=row["table"],
                        instances=row["instances"],
                        algorithm=row["algorithm"],
                        metric=row["metric"],
                        value=float(row["mean_or_value"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ReferenceError(f"{path}:{number}: malformed row ({error})") from None
    return rows


def paper_means(rows: Sequence[ReferenceRow]) -> dict[str, float]:
    """Reyes et al. 2018 Table 17 all-instance means with perfect ready times, by our keys."""
    out: dict[str, float] = {}
    for row in rows:
        if row.table == "Table 17" and "perfect info" in row.algorithm:
            key = "undelivered_pct" if row.metric == "pct_undelivered" else row.metric
            key = "overage_mean" if key == "ctod_overage_mean" else key
            out[key] = row.value
    return out


def per_instance(
    rows: Sequence[ReferenceRow], table: str, exact: bool
) -> dict[str, dict[str, float]]:
    """Per-instance published values of a table: `{instance: {metric: value}}`.

    `exact` selects the clairvoyant exact solutions of Table 4 instead of the heuristic.
    """
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if row.table != table or ("exact" in row.algorithm) != exact:
            continue
        out.setdefault(row.instances, {})[row.metric] = row.value
    return out


def format_number(value: object, digits: int = 2) -> str:
    """A table cell: numbers rounded, missing values as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def format_table(
    title: str,
    row_labels: Sequence[str],
    columns: Mapping[str, Mapping[str, object]],
    digits: int = 2,
) -> str:
    """A plain-text table: one row per label, one column per mapping."""
    headers = ["", *columns]
    body = [
        [label, *(format_number(col.get(label), digits) for col in columns.values())]
        for label in row_labels
    ]
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(len(headers))]
    lines = [
        title,
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        ),
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)
