from pathlib import Path

import numpy as np

from features.offline import build_training_rows, write_event_log
from features.synthetic import generate_event_log
from models.prep import DEFAULT_PREP_S, PREP_FEATURES, prep_training_data
from models.residual import ClampConfig, Target, TrainConfig, train_residual_model


def test_prep_model_trains_on_offline_feature_rows(tmp_path: Path) -> None:
    """Rows from the event-log builder train a prep residual model whose p90 ≥ p50."""
    events = generate_event_log(
        np.random.default_rng(2), n_orders=400, duration_ms=3 * 86_400_000, n_couriers=6
    )
    log = tmp_path / "events.jsonl"
    write_event_log(log, events)
    data = prep_training_data(build_training_rows(log))
    assert data.feature_names == PREP_FEATURES
    assert data.base_eta_s[0] == DEFAULT_PREP_S  # the first order has no history anywhere
    model = train_residual_model(
        data,
        kind="prep",
        target=Target.ADDITIVE,
        config=TrainConfig(
            rounds_p50=20, rounds_p90=20, max_depth=3, calibration_days=1.0, nthread=1
        ),
        clamp=ClampConfig(),
        progress=False,
    )
    out = model.predict(data.features, data.base_eta_s)
    assert np.all(out.finite) and np.all(out.p90_s >= out.p50_s)
