"""ETA benchmarks: accuracy on the public DoorDash and NYC files, and inference speed.

`eta_bench` trains on one file and evaluates on another (time split done by the caller);
`split_shared` makes the standard splits of the shared files; `vectorized_throughput` and
`http_latency` measure the batch API and `POST /eta`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import datasets as ds
from models.base_eta import StraightLineProvider
from models.calibration import coverage_rate
from models.evaluate import eta_metrics, write_plots
from models.legs import jittered_travel_rows
from models.model_files import save_model
from models.online_calibration import OnlineCalibratedModel
from models.residual import ClampConfig, ResidualQuantileModel, Target, TrainConfig, TrainingData
from models.selection import CalibrationCandidate, train_with_selection
from models.service import EtaService, LegBatch, LoadedModel, StaticModelSource
from models.timeparts import local_parts, zone

DATASETS = ("doordash", "nyc")

#: Click-to-door model on DoorDash rows: additive residual, p90 booster + conformal margin.
#: The calibration settings here are placeholders: `DOORDASH_CALIBRATION` is chosen from.
DOORDASH_CONFIG = TrainConfig(
    rounds_p50=400,
    rounds_p90=400,
    max_depth=5,
    learning_rate=0.03,
    min_child_weight=20.0,
    calibration_days=7.0,
    calibration_blocks=1,
)

#: Calibration grid of the click-to-door model (choice: `models.selection`).
#:
#: Both use a one-week window, so every weekday is in it. `split-7d` is plain split
#: conformal: the margin covers 90 % of the week's pooled scores. `block-median-7d` cuts the
#: week into 7 consecutive blocks of equal row count (about a day each), takes the split
#: conformal margin of each and keeps the median, so that one exceptional day does not set
#: the margin for the others.
DOORDASH_CALIBRATION: tuple[CalibrationCandidate, ...] = (
    CalibrationCandidate("split-7d", calibration_days=7.0, calibration_blocks=1),
    CalibrationCandidate("block-median-7d", calibration_days=7.0, calibration_blocks=7),
)
DOORDASH_CLAMP = ClampConfig(residual_min_s=-1800.0, residual_max_s=4 * 3600.0)

#: Travel-leg model: log-ratio residual; a 400-round pseudo-Huber model distilled into a
#: 20-tree student so dispatch gets ≥ 1M legs/s on one core; p90 = p50 + Mondrian-conformal
#: margin per base-ETA bin.
TRAVEL_CONFIG = TrainConfig(
    rounds_p50=400,
    rounds_p90=0,
    max_depth=6,
    learning_rate=0.03,
    min_child_weight=10.0,
    distill_rounds=20,
    distill_depth=9,
    distill_learning_rate=0.4,
    distill_samples=400_000,
    p50_objective="pseudohuber",
    huber_slope=0.15,
    p90_mode="binned",
    p90_bins=8,
    calibration_days=21.0,
    calibration_blocks=1,
)

#: Calibration grid of the travel-leg model (choice: `models.selection`).
#:
#: Mondrian conformal margins per equal-count base-ETA bin: 4 or 8 bins (coarser bins have
#: more rows per margin, finer ones follow how the error grows with the trip), over a window
#: of the last 3 or 4 weeks (whole weeks, so each weekday weighs the same).
TRAVEL_CALIBRATION: tuple[CalibrationCandidate, ...] = tuple(
    CalibrationCandidate(f"bins{b}-{d}d", calibration_days=float(d), p90_bins=b)
    for d in (21, 28)
    for b in (4, 8)
)
TRAVEL_CLAMP = ClampConfig(residual_min_s=-1800.0, residual_max_s=3 * 3600.0)


@dataclass(frozen=True)
class DatasetRows:
    """Train and test rows of one dataset, plus the local hour of each test row."""

    train: TrainingData
    test: TrainingData
    test_hour: npt.NDArray[np.float64]
    timezone: str


def load_rows(dataset: str, train_path: Path, test_path: Path) -> DatasetRows:
    """Build model rows; test-row history features only use training rows."""
    if dataset == "doordash":
        tr = ds.DoorDashFrame.read(train_path)
        te = ds.DoorDashFrame.read(test_path)
        train = ds.doordash_training_data(tr, tr)
        fill = float(np.nanmedian(tr.df["estimated_store_to_consumer_driving_duration"]))
        test = ds.doordash_training_data(te, tr, drive_fill_s=fill)
        tz = ds.DOORDASH_TIMEZONE
    elif dataset == "nyc":
        train = ds.nyc_training_data(ds.nyc_read(train_path))
        test = ds.nyc_training_data(ds.nyc_read(test_path))
        tz = ds.NYC_TIMEZONE
    else:
        raise ds.DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if len(train.ts_ms) < 50 or len(test.ts_ms) == 0:
        raise ds.DatasetError("need at least 50 training rows and one test row")
    if int(train.ts_ms.max()) > int(test.ts_ms.min()):
        raise ds.DatasetError("training rows overlap the test period: split by time")
    hour, _, _ = local_parts(test.ts_ms, zone(tz))
    return DatasetRows(train=train, test=test, test_hour=hour, timezone=tz)


def load_train_rows(dataset: str, train_path: Path) -> TrainingData:
    """Training rows of one file (history features from the file itself, causally)."""
    if dataset == "doordash":
        tr = ds.DoorDashFrame.read(train_path)
        return ds.doordash_training_data(tr, tr)
    if dataset == "nyc":
        return ds.nyc_training_data(ds.nyc_read(train_path))
    raise ds.DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def train_for(dataset: str, rows: TrainingData, progress: bool = True) -> ResidualQuantileModel:
    """Train the dataset's residual model with its standard configuration.

    The p90 calibration is chosen from the dataset's grid by validation on the latest
    training rows (`models.selection`); the choice is in `metadata["calibration_selection"]`.
    """
    if dataset == "doordash":
        model, _ = train_with_selection(
            rows,
            kind="total",
            target=Target.ADDITIVE,
            config=DOORDASH_CONFIG,
            clamp=DOORDASH_CLAMP,
            candidates=DOORDASH_CALIBRATION,
            metadata={"dataset": dataset, "timezone": ds.DOORDASH_TIMEZONE},
            progress=progress,
        )
        return model
    provider = StraightLineProvider()

    def synthesize(
        data: TrainingData, mask: npt.NDArray[np.bool_], n: int, rng: np.random.Generator
    ) -> npt.NDArray[np.float32]:
        return jittered_travel_rows(
            data.features[mask],
            data.ts_ms[mask],
            data.feature_names,
            ds.NYC_FEATURE_CONFIG,
            provider.eta_s_batch,
            n,
            rng,
        )

    model, _ = train_with_selection(
        rows,
        kind="travel",
        target=Target.LOG_RATIO,
        config=TRAVEL_CONFIG,
        clamp=TRAVEL_CLAMP,
        candidates=TRAVEL_CALIBRATION,
        metadata={"dataset": dataset, "feature_config": ds.NYC_FEATURE_CONFIG.to_dict()},
        progress=progress,
        synthesize=synthesize,
    )
    return model


def predict_throughput(
    model: ResidualQuantileModel, x: npt.NDArray[np.float32], base: npt.NDArray[np.float64]
) -> float:
    """Rows per CPU-second of `model.predict` on one thread (input tiled to ≥ 200k rows)."""
    reps = max(1, -(-200_000 // max(1, x.shape[0])))
    xx = np.ascontiguousarray(np.tile(x, (reps, 1)))
    bb = np.tile(base, reps)
    model.set_threads(1)
    model.predict(xx[:100], bb[:100])
    start = time.process_time()
    model.predict(xx, bb)
    return xx.shape[0] / max(time.process_time() - start, 1e-9)


def eta_bench(
    dataset: str,
    train_path: Path,
    test_path: Path,
    plots_dir: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], ResidualQuantileModel]:
    """Train on `train_path`, evaluate on `test_path`; returns (figures, model).

    The headline figures are those of the served path: the p50 as trained, the p90 with
    online recalibration (`models.online_calibration`), the test rows served in request-time
    order and each outcome fed back only once it has completed (`p90_coverage_served` says
    so). The static p90 (training-time calibration alone) is reported next to it.
    """
    rows = load_rows(dataset, train_path, test_path)
    model = train_for(dataset, rows.train, progress=progress)
    static = model.predict(rows.test.features, rows.test.base_eta_s)
    # The served path: online recalibration, each test outcome fed back once it completes.
    online_model = OnlineCalibratedModel(model)
    pred = online_model.replay(
        rows.test.features, rows.test.base_eta_s, rows.test.ts_ms, rows.test.actual_s
    )
    median_residual = float(np.median(rows.train.actual_s - rows.train.base_eta_s))
    figures: dict[str, Any] = dict(
        eta_metrics(
            rows.test.actual_s,
            rows.test.base_eta_s,
            pred.p50_s,
            pred.p90_s,
            ~pred.finite,
            median_residual,
        )
    )
    figures["p90_coverage_served"] = "online"
    figures["p90_coverage_online"] = figures["p90_coverage"]
    figures["p90_coverage_static"] = coverage_rate(rows.test.actual_s, static.p90_s)
    figures["p90_width_min_online"] = float(np.mean(pred.p90_s - pred.p50_s) / 60.0)
    figures["p90_width_min_static"] = float(np.mean(static.p90_s - static.p50_s) / 60.0)
    figures["online_calibration"] = online_model.describe()
    if dataset == "nyc":
        figures["predict_pairs_per_s"] = vectorized_throughput(model, rows.test, n_pairs=1_000_000)
    else:
        figures["predict_pairs_per_s"] = predict_throughput(
            model, rows.test.features, rows.test.base_eta_s
        )
    figures["dataset"] = dataset
    figures["n_train"] = len(rows.train.ts_ms)
    figures["p90_margin"] = model.p90_margin
    figures.update(selection_figures(model))
    sel = figures.get("calibration_selection")
    figures["validation_online_p90_coverage"] = (
        sel.get("validation_online_p90_coverage") if isinstance(sel, dict) else None
    )
    if plots_dir is not None:
        figures["plots"] = [
            str(p)
            for p in write_plots(
                plots_dir,
                f"eta_{dataset}",
                rows.test.actual_s,
                rows.test.base_eta_s,
                pred.p50_s,
                pred.p90_s,
                rows.test_hour,
            )
        ]
    return figures, model


def selection_figures(model: ResidualQuantileModel) -> dict[str, Any]:
    """Bench JSON keys describing how the model's p90 calibration was chosen.

    `calibration_choice` (candidate name), `validation_p90_coverage` (its p90 coverage on the
    validation slice of the training rows, None if it was not validated) and
    `calibration_selection` (every candidate's figures and the validation slice).
    """
    sel = model.metadata.get("calibration_selection")
    if not isinstance(sel, dict):
        return {"calibration_choice": None, "validation_p90_coverage": None}
    return {
        "calibration_choice": sel.get("calibration_choice"),
        "validation_p90_coverage": sel.get("validation_p90_coverage"),
        "calibration_selection": sel,
    }


def legs_like(test: TrainingData, n_pairs: int, seed: int = 0) -> LegBatch:
    """A batch of `n_pairs` legs resampled from test rows (origins/destinations jittered)."""
    names = list(test.feature_names)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, test.features.shape[0], n_pairs)
    f = test.features.astype(np.float64)

    def col(name: str) -> npt.NDArray[np.float64]:
        return f[idx, names.index(name)] + rng.normal(0.0, 0.001, n_pairs)

    return LegBatch(
        origin_lat=col("origin_lat"),
        origin_lon=col("origin_lon"),
        dest_lat=col("dest_lat"),
        dest_lon=col("dest_lon"),
        request_ts_ms=test.ts_ms[idx].astype(np.int64),
        leg=f[idx, names.index("leg")].astype(np.int64),
    )


def vectorized_throughput(model: ResidualQuantileModel, test: TrainingData, n_pairs: int) -> float:
    """Legs per CPU-second through `EtaService.predict_legs` on one thread.

    Features and the straight-line base are included; the best of three runs counts.
    """
    model.set_threads(1)
    service = EtaService(StaticModelSource(LoadedModel(model, "bench")), model_timeout_s=None)
    batch = legs_like(test, n_pairs)
    service.predict_legs(batch)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        service.predict_legs(batch)
        best = min(best, time.process_time() - start)
    return n_pairs / max(best, 1e-9)


# --- shared-file splits -----------------------------------------------------------------------


def split_shared(shared: Path, out: Path) -> dict[str, tuple[Path, Path]]:
    """Write the standard time splits of the shared files into `out`.

    DoorDash: test = the last 7 UTC calendar days of `deliveries.csv`. NYC: the last 20 % of
    trips by pickup time.
    """
    dd_path = shared / "benchmarks" / "eta" / "doordash" / "deliveries.csv"
    nyc_path = shared / "benchmarks" / "eta" / "nyc-taxi" / "trips.csv"
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, tuple[Path, Path]] = {}
    dd = ds.read_csv(dd_path, ds.DOORDASH_REQUIRED)
    tr, te = ds.doordash_split(dd, test_days=7)
    paths["doordash"] = (out / "doordash_train.csv", out / "doordash_test.csv")
    tr.to_csv(paths["doordash"][0], index=False)
    te.to_csv(paths["doordash"][1], index=False)
    nyc = ds.read_csv(nyc_path, ds.NYC_REQUIRED)
    tr2, te2 = ds.nyc_split(nyc, test_frac=0.2)
    paths["nyc"] = (out / "nyc_train.csv", out / "nyc_test.csv")
    tr2.to_csv(paths["nyc"][0], index=False)
    te2.to_csv(paths["nyc"][1], index=False)
    return paths


# --- HTTP latency -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise OSError(f"the ETA server exited with code {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _load(
    port: int,
    bodies: list[bytes],
    rps: float,
    warmup: int,
    connections: int = 8,
    path: bytes = b"/eta",
) -> tuple[list[float], list[float], list[int], list[float]]:
    """Open-loop load: request i is due at t0 + i / rps on a pool of keep-alive connections.

    The client is a minimal HTTP/1.1 writer/reader on asyncio streams so that the load
    generator itself costs little CPU next to the server on the same machine.
    """
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    from_schedule: list[float] = []
    statuses: list[int] = []
    handler: list[float] = []

    async def one(i: int, due: float) -> None:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        reader, writer = await pool.get()
        sent = time.perf_counter()
        body = bodies[i]
        writer.write(
            b"POST "
            + path
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        done = time.perf_counter()
        pool.put_nowait((reader, writer))
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"server-timing:") and b"dur=" in line and i >= warmup:
                handler.append(float(line.split(b"dur=", 1)[1]) / 1000.0)
        if i >= warmup:
            latencies.append(done - sent)
            # Also from the scheduled time: client timer lateness and queueing count too.
            from_schedule.append(done - due)
            statuses.append(status)

    # The load generator's own garbage collection must not pause it mid-measurement, and
    # requests are started as they fall due rather than all parked at once.
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter() + 0.2
        tasks = []
        for i in range(len(bodies)):
            due = t0 + i / rps
            delay = due - time.perf_counter() - 0.002
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return latencies, from_schedule, statuses, handler


def http_latency(
    model: ResidualQuantileModel, test: TrainingData, rps: float = 200.0, seconds: float = 15.0
) -> dict[str, float]:
    """Open-loop `POST /eta` load at `rps` on loopback against a server in a child process."""
    batch = legs_like(test, int(rps * (seconds + 1)), seed=1)
    bodies = [
        json.dumps(
            {
                "origin": {"lat": float(batch.origin_lat[i]), "lon": float(batch.origin_lon[i])},
                "destination": {"lat": float(batch.dest_lat[i]), "lon": float(batch.dest_lon[i])},
                "request_time_ms": int(batch.request_ts_ms[i]),
                "leg": "ride",
            }
        ).encode()
        for i in range(len(batch))
    ]
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp) / "model")
        port = _free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "models.serve",
                "--model",
                str(Path(tmp) / "model"),
                "--port",
                str(port),
                "--with-noop",
            ]
        )
        try:
            asyncio.run(_wait_port(port, 30.0, proc))
            lat, sched, statuses, handler = asyncio.run(_load(port, bodies, rps, warmup=int(rps)))
            # The same load on an endpoint that does no work: what the machine, the HTTP
            # stack and the client cost by themselves.
            noop, _, _, _ = asyncio.run(_load(port, bodies, rps, warmup=int(rps), path=b"/noop"))
        finally:
            proc.terminate()
            proc.wait(10)
    arr = np.array(lat) * 1000.0
    sch = np.array(sched) * 1000.0
    return {
        "rps": rps,
        "requests": len(arr),
        "ok_rate": float(np.mean(np.array(statuses) == 200)),
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "p99_from_schedule_ms": float(np.percentile(sch, 99)),
        "noop_endpoint_p50_ms": float(np.percentile(np.array(noop) * 1000.0, 50)),
        "noop_endpoint_p99_ms": float(np.percentile(np.array(noop) * 1000.0, 99)),
        "handler_p99_ms": float(np.percentile(np.array(handler) * 1000.0, 99))
        if handler
        else float("nan"),
        "load_average_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count() or 0,
    }
