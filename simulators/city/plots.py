"""PNG plots of a simulation run (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from contracts.geo import project_m
from simulators.city.config import CityConfig
from simulators.city.kpis import EtaSample, OrderOutcome
from simulators.city.moment import Moment

MS_PER_MIN = 60_000.0

COURIER_COLOURS = {
    "idle": "tab:green",
    "offered": "tab:olive",
    "to_pickup": "tab:orange",
    "delivering": "tab:blue",
    "offline": "lightgrey",
}
ORDER_COLOURS = {
    "unassigned": "tab:red",
    "offered": "gold",
    "committed": "tab:orange",
    "picked": "tab:blue",
}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def local_clock(config: CityConfig, ts_ms: int) -> str:
    """`HH:MM` local time of an event time."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC) + timedelta(minutes=config.utc_offset_min)
    return moment.strftime("%H:%M")


def ctod_plot(outcomes: Sequence[OrderOutcome], path: Path) -> Path:
    """Click-to-door distribution of delivered orders and their lateness against the promise."""
    delivered = [o for o in outcomes if o.delivered_ts_ms is not None]
    ctod = np.array([((o.delivered_ts_ms or 0) - o.created_ts_ms) / MS_PER_MIN for o in delivered])
    late = np.array(
        [
            ((o.delivered_ts_ms or 0) - o.promise_ts_ms) / MS_PER_MIN
            for o in delivered
            if o.promise_ts_ms is not None
        ]
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if ctod.size:
        left.hist(ctod, bins=np.arange(0, ctod.max() + 2, 1.0), color="tab:blue", alpha=0.8)
        for q, style in ((50, "--"), (90, ":")):
            value = float(np.percentile(ctod, q))
            left.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.1f} min")
        left.legend()
    left.set_xlabel("click-to-door (min)")
    left.set_ylabel("delivered orders")
    left.set_title(f"Click-to-door, {ctod.size} delivered orders")
    if late.size:
        low, high = np.floor(late.min()), np.ceil(late.max()) + 1
        right.hist(late, bins=np.arange(low, high + 1, 1.0), color="tab:purple", alpha=0.8)
        on_time = float(np.mean(late <= 0))
        right.set_title(f"Delivery minus promise (on time: {on_time:.1%})")
    else:
        right.set_title("Delivery minus promise")
    right.axvline(0, color="black", linestyle="--")
    right.set_xlabel("minutes late (negative: early)")
    right.set_ylabel("delivered orders")
    return _save(fig, path)


def eta_calibration_plot(samples: Sequence[EtaSample], path: Path) -> Path:
    """Announced p50/p90 dropoff ETAs against realized delivery, and coverage by horizon."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    if samples:
        p50 = np.array([(s.p50_ts_ms - s.issued_ts_ms) / MS_PER_MIN for s in samples])
        p90 = np.array([(s.p90_ts_ms - s.issued_ts_ms) / MS_PER_MIN for s in samples])
        real = np.array([(s.realized_ts_ms - s.issued_ts_ms) / MS_PER_MIN for s in samples])
        left.scatter(p50, real, s=8, alpha=0.5, label="predicted p50")
        left.scatter(p90, real, s=8, alpha=0.5, marker="x", label="predicted p90")
        top = float(max(p90.max(), real.max(), 1.0)) * 1.05
        left.plot([0, top], [0, top], color="grey", linestyle=":", label="realized = predicted")
        left.set_xlim(0, top)
        left.set_ylim(0, top)
        left.legend()
        n_bins = min(5, max(1, len(samples) // 20))
        edges = np.unique(np.percentile(p50, np.linspace(0, 100, n_bins + 1)))
        which = np.clip(np.searchsorted(edges, p50, side="right") - 1, 0, max(len(edges) - 2, 0))
        centers, below50, below90 = [], [], []
        for b in range(max(len(edges) - 1, 1)):
            mask = which == b
            if mask.any():
                centers.append(float(np.median(p50[mask])))
                below50.append(float(np.mean(real[mask] <= p50[mask])))
                below90.append(float(np.mean(real[mask] <= p90[mask])))
        right.plot(centers, below50, marker="o", label="share realized <= p50")
        right.plot(centers, below90, marker="s", label="share realized <= p90")
        right.axhline(0.5, color="tab:blue", linestyle=":")
        right.axhline(0.9, color="tab:orange", linestyle=":")
        right.legend(loc="lower right")
    left.set_xlabel("predicted (min from the announcement)")
    left.set_ylabel("realized (min from the announcement)")
    left.set_title(f"Dropoff ETA vs realized ({len(samples)} orders)")
    right.set_ylim(0, 1.05)
    right.set_xlabel("predicted p50 (min), by quantile bin")
    right.set_ylabel("coverage")
    right.set_title("Calibration: targets 0.5 and 0.9")
    return _save(fig, path)


def map_plot(moment: Moment, config: CityConfig, path: Path) -> Path:
    """Couriers coloured by state, open orders, and lines from couriers to their next stops."""
    lat0, lon0 = config.center_lat, config.center_lon

    def xy(lat: float, lon: float) -> tuple[float, float]:
        x, y = project_m(lat, lon, lat0, lon0)
        return float(x) / 1000, float(y) / 1000

    fig, ax = plt.subplots(figsize=(8, 8))
    where = {c.courier_id: xy(c.lat, c.lon) for c in moment.couriers}
    for order in moment.orders:
        if order.courier_id is None or order.courier_id not in where:
            continue
        cx, cy = where[order.courier_id]
        target = order.dropoff if order.state == "picked" else order.pickup
        tx, ty = xy(*target)
        style = ":" if order.state == "offered" else "-"
        ax.plot(
            [cx, tx], [cy, ty], color=ORDER_COLOURS[order.state], linewidth=0.8, linestyle=style
        )
    for state, colour in ORDER_COLOURS.items():
        pts = [
            xy(*(o.dropoff if o.state == "picked" else o.pickup))
            for o in moment.orders
            if o.state == state
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            label = f"order {state} ({len(pts)})" + (" at dropoff" if state == "picked" else "")
            ax.scatter(xs, ys, marker="x", s=30, color=colour, label=label)
    for state, colour in COURIER_COLOURS.items():
        pts = [where[c.courier_id] for c in moment.couriers if c.state == state]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(
                xs,
                ys,
                s=18,
                color=colour,
                edgecolors="black",
                linewidths=0.3,
                label=f"courier {state} ({len(pts)})",
            )
    circle = plt.Circle((0, 0), config.radius_m / 1000, fill=False, color="grey", linestyle=":")
    ax.add_patch(circle)
    r = config.radius_m / 1000 * 1.05
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.set_xlabel("km east of centre")
    ax.set_ylabel("km north of centre")
    ax.set_title(f"{config.name} at {local_clock(config, moment.ts_ms)} local")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    return _save(fig, path)
