"""Windowed feature definitions (pure) and their online and offline materializations.

Public API for the stream worker:

- `features.events`: the event shapes consumed (`validate_event`, `EventError`, type names).
- `features.store.OnlineFeatureStore(mapping, on_degrade=...)`: feature state in any
  `MutableMapping[bytes, bytes]` (a Faust RocksDB table with raw bytes, a rocksdict `Rdict`).
  `apply(event)` updates every feature the event feeds; `read(feature, key, now_ms)` and
  `order_features(merchant_id, lat, lon, now_ms)` serve values with staleness degradation
  (entity → city → global), each degradation reported to `on_degrade(feature, level, reason)`;
  `features.store.DegradationCounts` is a ready-made counter with `snapshot()` for export.
- `features.pings.apply_pings(engine, batch)`: a batch of courier pings applied in bulk, with
  the states `apply` would leave applying them one at a time in time order.
- `features.offline.build_training_rows(path)`: the same definitions over a JSON-Lines event
  log, one training row per created order (labels `prep_s`, `total_s`).
- `features.definitions.default_features()`: the definitions and their staleness SLAs.

Nothing here imports Faust or Kafka; time is event time (`ts_ms`) throughout.
"""
