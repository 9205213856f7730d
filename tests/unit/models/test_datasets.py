from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.bench import load_rows, split_shared
from models.datasets import DatasetError, doordash_split, nyc_split, read_csv

SHARED = Path(__file__).resolve().parents[3] / "tests" / "data" / "shared"
DD = SHARED / "benchmarks" / "eta" / "doordash" / "deliveries.csv"


def test_doordash_split_holds_out_the_last_seven_calendar_days() -> None:
    """Test rows are exactly those created on the last 7 UTC dates; train is everything before."""
    df = pd.DataFrame(
        {"created_at": pd.date_range("2015-01-01", "2015-01-20 23:00", freq="6h").astype(str)}
    )
    train, test = doordash_split(df, test_days=7)
    dates = pd.to_datetime(test["created_at"]).dt.date
    assert sorted(set(dates))[0] == pd.Timestamp("2015-01-14").date()
    assert pd.to_datetime(train["created_at"]).max() < pd.to_datetime(test["created_at"]).min()


def test_nyc_split_is_by_time_not_by_row_order() -> None:
    """The last 20 % by pickup time is test, whatever the file order."""
    times = pd.date_range("2016-01-01", periods=100, freq="h")
    df = pd.DataFrame({"pickup_datetime": times.astype(str)}).sample(frac=1.0, random_state=0)
    train, test = nyc_split(df, 0.2)
    assert len(test) == 20
    assert (
        pd.to_datetime(train["pickup_datetime"]).max()
        < pd.to_datetime(test["pickup_datetime"]).min()
    )


def test_missing_columns_are_a_clear_error(tmp_path: Path) -> None:
    """A file without the required columns raises DatasetError naming them."""
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="created_at"):
        read_csv(p, ("created_at",))


def test_shared_doordash_rows_use_only_training_history(tmp_path: Path) -> None:
    """Merchant priors of test rows come from training deliveries only (shared file split)."""
    if not DD.is_file():
        pytest.fail(f"shared benchmark file missing: {DD}")
    paths = split_shared(SHARED, tmp_path)
    rows = load_rows("doordash", *paths["doordash"])
    assert rows.train.ts_ms.max() < rows.test.ts_ms.min()
    names = list(rows.test.feature_names)
    n_prior = rows.test.features[:, names.index("merchant_prior_n")]
    assert np.all(np.isfinite(rows.test.features[:, names.index("merchant_prior_residual_s")]))
    # Nothing after training can raise a merchant's history count beyond the training rows.
    assert n_prior.max() <= len(rows.train.ts_ms)
