"""ETA: base-ETA providers, residual quantile models, calibration, registry, training, serving.

Public API for the stream worker and dispatch:

- `models.service.EtaService(source, metrics=FallbackCounts(), shadow=None)`:
  `predict_legs(LegBatch) -> EtaBatchResult` — arrays of legs in (origin/destination lat/lon,
  `request_ts_ms`, `leg`, optional `base_eta_s` and context), arrays of `p50_s`/`p90_s`,
  `base_eta_s`, per-leg `fallback` flags and `reason` codes out; never raises on model failure.
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
