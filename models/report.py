"""`dispatchflow evaluate`: a registry model scored on a test file, as JSON plus PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from models import bench
from models.evaluate import bias_by_segment, calibration_curve, eta_metrics, write_plots
from models.registry import ModelRegistry, RegistryError


def evaluate_registry_model(
    dataset: str,
    registry_dir: Path,
    version: str | None,
    train_path: Path,
    test_path: Path,
    out: Path,
) -> dict[str, Any]:
    """Score `version` (default: pinned or newest) and write `out/report.json` and plots.

    The report has `metrics` (as in `eta bench`), `bias_by_hour` and a second segment
    (`bias_by_market` for DoorDash, `bias_by_distance_km` for NYC), `calibration` (nominal vs
    observed coverage) and `plots`.

    Raises:
        RegistryError: no such version, or the model does not fit the dataset's features.
    """
    registry = ModelRegistry(registry_dir)
    chosen = version or registry.target_version()
    if chosen is None:
        raise RegistryError(f"no model versions under {registry_dir}")
    model = registry.load(chosen)
    rows = bench.load_rows(dataset, train_path, test_path)
    if tuple(model.feature_names) != tuple(rows.test.feature_names):
        raise RegistryError(f"model {chosen} ({model.kind}) was not trained on {dataset} rows")
    pred = model.predict(rows.test.features, rows.test.base_eta_s)
    y = rows.test.actual_s
    median_residual = float(np.median(rows.train.actual_s - rows.train.base_eta_s))
    metrics = eta_metrics(
        y, rows.test.base_eta_s, pred.p50_s, pred.p90_s, ~pred.finite, median_residual
    )
    names = list(rows.test.feature_names)
    report: dict[str, Any] = {
        "dataset": dataset,
        "model_version": chosen,
        "metrics": metrics,
        "bias_by_hour": bias_by_segment(y, pred.p50_s, np.floor(rows.test_hour).astype(int)),
        "calibration": calibration_curve(y, pred.p50_s, pred.p90_s),
    }
    if dataset == "doordash":
        market = rows.test.features[:, names.index("market_id")]
        report["bias_by_market"] = bias_by_segment(y, pred.p50_s, np.nan_to_num(market, nan=-1))
    else:
        km = np.floor(rows.test.features[:, names.index("dist_m")] / 1000.0).clip(0, 20)
        report["bias_by_distance_km"] = bias_by_segment(y, pred.p50_s, km.astype(int))
    report["plots"] = [
        str(p)
        for p in write_plots(
            out, f"eta_{dataset}", y, rows.test.base_eta_s, pred.p50_s, pred.p90_s, rows.test_hour
        )
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
