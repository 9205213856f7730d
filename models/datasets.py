"""Adapters from public delivery/trip files to residual-model rows, and time-based splits.

DoorDash `historical_data`-style deliveries become total (click-to-door) rows whose base is
DoorDash's own estimate (order-place + drive). NYC taxi trips become travel-leg rows whose
base is the straight-line provider. Splits are by time only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from contracts.geo import haversine_m as haversine_m_np
from models.base_eta import StraightLineProvider
from models.legs import Leg, TravelFeatureConfig, travel_features
from models.residual import TrainingData
from models.timeparts import local_parts, zone


class DatasetError(ValueError):
    """A data file is missing, unreadable or lacks required columns."""


DOORDASH_TIMEZONE = "America/Los_Angeles"
NYC_TIMEZONE = "America/New_York"
#: Manhattan's street grid runs about 29° east of true north.
NYC_GRID_ROTATION_DEG = 29.0
NYC_MIN_TRIP_S = 60.0
NYC_MAX_TRIP_S = 3 * 3600.0

#: Columns of a DoorDash order's contents, features of the total model as they are.
DOORDASH_ORDER_COLUMNS: tuple[str, ...] = (
    "order_protocol",
    "total_items",
    "subtotal",
    "num_distinct_items",
    "min_item_price",
    "max_item_price",
)
DOORDASH_REQUIRED = (
    "market_id",
    "created_at",
    "actual_delivery_time",
    "store_id",
    "store_primary_category",
    *DOORDASH_ORDER_COLUMNS,
    "total_onshift_dashers",
    "total_busy_dashers",
    "total_outstanding_orders",
    "estimated_order_place_duration",
    "estimated_store_to_consumer_driving_duration",
)
NYC_REQUIRED = (
    "pickup_datetime",
    "dropoff_datetime",
    "pickup_longitude",
    "pickup_latitude",
    "dropoff_longitude",
    "dropoff_latitude",
    "trip_duration",
)

#: Feature columns of the total (click-to-door) model trained on DoorDash rows.
TOTAL_FEATURES: tuple[str, ...] = (
    "base_eta_s",
    "order_place_s",
    "drive_s",
    "market_id",
    "hour",
    "dow",
    "hour_of_week",
    *DOORDASH_ORDER_COLUMNS,
    "onshift_couriers",
    "busy_couriers",
    "outstanding_orders",
    "busy_ratio",
    "outstanding_per_onshift",
    "outstanding_minus_onshift",
    "merchant_prior_residual_s",
    "merchant_prior_n",
    "category_prior_residual_s",
)


def read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV and check that it has the `required` columns."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(f"{path} lacks columns {missing}")
    return df


def _to_ms(series: pd.Series, tz: str | None) -> npt.NDArray[np.int64]:
    ts = pd.to_datetime(series, errors="coerce")
    if tz is None:
        ts = ts.dt.tz_localize("UTC")
    else:
        ts = ts.dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    epoch = pd.Timestamp(0, tz="UTC")
    ms = ((ts - epoch) // pd.Timedelta(milliseconds=1)).to_numpy(dtype="float64", na_value=np.nan)
    out = np.where(np.isnan(ms), float(np.iinfo(np.int64).min), ms)
    return out.astype(np.int64)


# --- DoorDash ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoorDashFrame:
    """Cleaned DoorDash deliveries with epoch-ms times and numeric columns."""

    df: pd.DataFrame

    @classmethod
    def read(cls, path: Path) -> DoorDashFrame:
        """Read and clean a deliveries file (rows without both times are dropped)."""
        raw = read_csv(path, DOORDASH_REQUIRED)
        df = raw.copy()
        df["created_ts_ms"] = _to_ms(df["created_at"], None)
        df["delivered_ts_ms"] = _to_ms(df["actual_delivery_time"], None)
        bad = np.iinfo(np.int64).min
        ok = (df["created_ts_ms"] != bad) & (df["delivered_ts_ms"] > df["created_ts_ms"])
        df = df[ok].sort_values("created_ts_ms", kind="stable").reset_index(drop=True)
        df["actual_s"] = (df["delivered_ts_ms"] - df["created_ts_ms"]) / 1000.0
        return cls(df)


def doordash_split(df: pd.DataFrame, test_days: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split of a raw deliveries frame: test = the last `test_days` UTC calendar days."""
    created = pd.to_datetime(df["created_at"], errors="coerce")
    if created.isna().all():
        raise DatasetError("no parseable created_at values")
    cut = created.max().floor("D") - pd.Timedelta(days=test_days - 1)
    test = created >= cut
    return df[~test & created.notna()], df[test]


def _merchant_priors(
    train: pd.DataFrame, query: pd.DataFrame, residual: npt.NDArray[np.float64], key: str, k: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Shrunk mean residual of each query row's `key`, from train deliveries completed before it.

    A delivery counts only once its delivery time precedes the query's creation time, which is
    what the online merchant window would have seen.
    """
    global_prior = float(np.median(residual)) if residual.size else 0.0
    done_ts = train["delivered_ts_ms"].to_numpy()
    done_key = train[key].astype(str).to_numpy()
    order = np.argsort(done_ts, kind="stable")
    q_ts = query["created_ts_ms"].to_numpy()
    q_key = query[key].astype(str).to_numpy()
    q_order = np.argsort(q_ts, kind="stable")
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    out = np.empty(len(query))
    n_out = np.empty(len(query))
    j = 0
    for qi in q_order:
        while j < len(order) and done_ts[order[j]] < q_ts[qi]:
            i = order[j]
            sums[done_key[i]] += residual[i]
            counts[done_key[i]] += 1
            j += 1
        c = counts.get(q_key[qi], 0)
        out[qi] = (sums.get(q_key[qi], 0.0) + k * global_prior) / (c + k)
        n_out[qi] = c
    return out, n_out


def doordash_training_data(
    rows: DoorDashFrame, history: DoorDashFrame, drive_fill_s: float | None = None
) -> TrainingData:
    """Total-ETA rows; merchant/category priors come only from `history` deliveries.

    Missing drive estimates are filled with `drive_fill_s` (default: the history median).
    """
    df = rows.df
    h = history.df
    fill = float(np.nanmedian(h["estimated_store_to_consumer_driving_duration"]))
    if drive_fill_s is not None:
        fill = drive_fill_s
    place = df["estimated_order_place_duration"].to_numpy(dtype=np.float64)
    drive = df["estimated_store_to_consumer_driving_duration"].fillna(fill).to_numpy(np.float64)
    base = place + drive
    h_base = h["estimated_order_place_duration"].to_numpy(np.float64) + h[
        "estimated_store_to_consumer_driving_duration"
    ].fillna(fill).to_numpy(np.float64)
    h_res = h["actual_s"].to_numpy(np.float64) - h_base
    merchant, merchant_n = _merchant_priors(h, df, h_res, "store_id", k=10.0)
    category, _ = _merchant_priors(h, df, h_res, "store_primary_category", k=10.0)
    ts = df["created_ts_ms"].to_numpy(np.int64)
    hour, dow, how = local_parts(ts, zone(DOORDASH_TIMEZONE))
    onshift = df["total_onshift_dashers"].to_numpy(np.float64)
    busy = df["total_busy_dashers"].to_numpy(np.float64)
    outstanding = df["total_outstanding_orders"].to_numpy(np.float64)
    denom = np.maximum(onshift, 1.0)
    cols: dict[str, npt.ArrayLike] = {
        "base_eta_s": base,
        "order_place_s": place,
        "drive_s": drive,
        "market_id": df["market_id"].to_numpy(np.float64),
        "hour": hour,
        "dow": dow,
        "hour_of_week": how,
        **{name: df[name].to_numpy(np.float64) for name in DOORDASH_ORDER_COLUMNS},
        "onshift_couriers": onshift,
        "busy_couriers": busy,
        "outstanding_orders": outstanding,
        "busy_ratio": busy / denom,
        "outstanding_per_onshift": outstanding / denom,
        "outstanding_minus_onshift": outstanding - onshift,
        "merchant_prior_residual_s": merchant,
        "merchant_prior_n": merchant_n,
        "category_prior_residual_s": category,
    }
    x = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in TOTAL_FEATURES])
    return TrainingData(
        features=np.ascontiguousarray(x, dtype=np.float32),
        base_eta_s=base,
        actual_s=df["actual_s"].to_numpy(np.float64),
        ts_ms=ts,
        feature_names=TOTAL_FEATURES,
    )


# --- NYC taxi ---------------------------------------------------------------------------------

#: JFK and LaGuardia airports and Midtown (Penn Station).
NYC_LANDMARKS = ((40.6413, -73.7781), (40.7769, -73.8740), (40.7506, -73.9935))
NYC_FEATURE_CONFIG = TravelFeatureConfig(
    timezone=NYC_TIMEZONE, grid_rotation_deg=NYC_GRID_ROTATION_DEG, landmarks=NYC_LANDMARKS
)


def nyc_read(path: Path) -> pd.DataFrame:
    """Read trips, keep valid ones (60 s ≤ duration ≤ 3 h, coordinates in range), sort by time."""
    df = read_csv(path, NYC_REQUIRED).copy()
    df["pickup_ts_ms"] = _to_ms(df["pickup_datetime"], NYC_TIMEZONE)
    lat_ok = df["pickup_latitude"].between(-90, 90) & df["dropoff_latitude"].between(-90, 90)
    lon_ok = df["pickup_longitude"].between(-180, 180) & df["dropoff_longitude"].between(-180, 180)
    dur_ok = df["trip_duration"].between(NYC_MIN_TRIP_S, NYC_MAX_TRIP_S)
    ok = lat_ok & lon_ok & dur_ok & (df["pickup_ts_ms"] != np.iinfo(np.int64).min)
    return df[ok].sort_values("pickup_ts_ms", kind="stable").reset_index(drop=True)


def nyc_split(df: pd.DataFrame, test_frac: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test split of a raw trips frame by pickup time: the last `test_frac` is test."""
    if not 0.0 < test_frac < 1.0:
        raise DatasetError(f"test_frac must be in (0, 1), got {test_frac}")
    order = pd.to_datetime(df["pickup_datetime"], errors="coerce").argsort(kind="stable")
    ordered = df.iloc[order.to_numpy()]
    cut = round(len(ordered) * (1.0 - test_frac))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def nyc_training_data(
    df: pd.DataFrame, provider: StraightLineProvider | None = None
) -> TrainingData:
    """Travel-leg rows (leg = ride) with the straight-line base."""
    prov = provider or StraightLineProvider()
    olat = df["pickup_latitude"].to_numpy(np.float64)
    olon = df["pickup_longitude"].to_numpy(np.float64)
    dlat = df["dropoff_latitude"].to_numpy(np.float64)
    dlon = df["dropoff_longitude"].to_numpy(np.float64)
    ts = df["pickup_ts_ms"].to_numpy(np.int64)
    dist = haversine_m_np(olat, olon, dlat, dlon)
    base = prov.eta_s_batch(olat, olon, dist)
    leg = np.full(len(df), int(Leg.RIDE), dtype=np.int64)
    x = travel_features(olat, olon, dlat, dlon, ts, leg, base, NYC_FEATURE_CONFIG, dist_m=dist)
    return TrainingData(
        features=x,
        base_eta_s=base,
        actual_s=df["trip_duration"].to_numpy(np.float64),
        ts_ms=ts,
        feature_names=NYC_FEATURE_CONFIG.feature_names(),
    )
