"""ETA: base-ETA providers, residual quantile models, calibration, registry, training, serving.

Public API for the stream worker and dispatch:

- `models.service.EtaService(source, metrics=FallbackCounts(), shadow=None)`:
  `predict_legs(LegBatch) -> EtaBatchResult` — arrays of legs in (origin/destination lat/lon,
  `request_ts_ms`, `leg`, optional `base_eta_s` and context), arrays of `p50_s`/`p90_s`,
  `base_eta_s`, per-leg `fallback` flags and `reason` codes out; never raises on model failure.
- `EtaService.predict_one(...)`: one leg in plain Python scalars (the `POST /eta` path, same
  answer as a one-leg batch); `warm_up()` prepares the current model before traffic.
- Online p90 recalibration (`models.online_calibration`): the service shifts the p90 margin
  from realized outcomes; feed each completed leg with
  `EtaService.record_outcome(model_version, completion_ts_ms, actual_s, served_p90_s)`; only
  requests after the completion see it. `OnlineCalibratedModel` does the same for any
  residual model (e.g. click-to-door totals).
- `models.http.eta_view(service)` / `make_app(service)`: `POST /eta` for aiohttp;
  `handle_eta(service, body) -> (status, json_bytes)` is the pure handler underneath.
- `models.registry.ModelRegistry(root)`: versioned model directories; `publish`, `pin`,
  `unpin`, `refresh()` (hot reload: call it periodically), `current()`; it is the `source` of an
  `EtaService`. `ShadowScorer` scores a candidate on served traffic without serving it.
- `models.fallback.FallbackCounts`: served/fallback-by-reason/clamp counters to export.
- `models.base_eta.StraightLineProvider` (default) and `models.osrm.OsrmRouteProvider` behind
  the `BaseEtaProvider` protocol.

Nothing here imports Faust or Kafka or registers Prometheus metrics.
"""
