"""The online feature store in a Faust table, fed by the shard agent's accepted events.

The shard agent calls `FeatureFeed.on_event` right after it accepts an event of `order_events`,
`merchant_ready`, `delivery_events` or `assignment_responses` (and for the events that were
parked waiting for an order, when they are accepted with it), inside the same stream iteration,
so each table write goes to the changelog partition of that event. Every key is scoped to that
partition (`p<partition>|...`): one partition's keys are written only while iterating it, and
the city and global priors are per partition, as is a courier's acceptance rate (the answers it
gave to offers of that partition's shards). Courier pings are not fed here (they are read in
batches by `streams.ingest_pings`), so courier speed and the zone supply/speed features stay
empty online.

Events too old for a feature's window are counted in `dispatchflow_feature_events_late_total`
(feature, level); an accepted event whose feature update is refused is logged and counted in
`dispatchflow_feature_updates_rejected_total` (type).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from features.events import EventError
from features.from_contracts import MerchantOf, to_feature_event
from features.store import LateCallback, OnlineFeatureStore
from streams.runtime import Runtime

logger = logging.getLogger(__name__)

FEATURES_TABLE = "online_features"


class PartitionScoped(MutableMapping[bytes, bytes]):
    """The keys of one partition in a bytes mapping, under the prefix `p<partition>|`."""

    def __init__(self, mapping: MutableMapping[bytes, bytes], partition: int) -> None:
        self._mapping = mapping
        self._prefix = f"p{partition}|".encode()

    def __getitem__(self, key: bytes) -> bytes:
        return self._mapping[self._prefix + key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._mapping[self._prefix + key] = value

    def __delitem__(self, key: bytes) -> None:
        del self._mapping[self._prefix + key]

    def __iter__(self) -> Iterator[bytes]:
        n = len(self._prefix)
        return (bytes(k)[n:] for k in list(self._mapping) if bytes(k).startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class FeatureFeed:
    """Applies accepted contract events to the per-partition online feature stores."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        on_late: LateCallback | None = None,
        on_rejected: Callable[[str], None] | None = None,
    ) -> None:
        self.table = table
        self.on_late = on_late
        self.on_rejected = on_rejected
        self._stores: dict[int, OnlineFeatureStore] = {}

    def store(self, partition: int) -> OnlineFeatureStore:
        """The feature store of one partition."""
        store = self._stores.get(partition)
        if store is None:
            store = OnlineFeatureStore(PartitionScoped(self.table, partition), on_late=self.on_late)
            self._stores[partition] = store
        return store

    def on_event(self, event: Mapping[str, Any], partition: int, merchant_of: MerchantOf) -> bool:
        """Update the features from one validated contract event; True if any were updated.

        Must be called inside the stream iteration of `partition` (table writes go to its
        changelog partition). A feature event the engine rejects is logged, reported to
        `on_rejected` (with its type) and skipped.
        """
        feature_event = to_feature_event(event, merchant_of)
        if feature_event is None:
            return False
        try:
            self.store(partition).apply(feature_event)
        except EventError as exc:
            logger.warning("feature update skipped for %s: %s", event.get("event_id"), exc)
            if self.on_rejected is not None:
                self.on_rejected(str(feature_event.get("type")))
            return False
        return True


def register(rt: Runtime) -> FeatureFeed:
    """Attach the online feature table; return the feed the shard agent calls."""
    partitions = rt.topics["order_events"].partitions
    table = rt.table(
        FEATURES_TABLE, partitions, "Online feature state, keyed by partition and feature key."
    )
    metrics = rt.metrics
    return FeatureFeed(
        table,
        on_late=lambda feature, level: metrics.feature_events_late.labels(feature, level).inc(),
        on_rejected=lambda kind: metrics.feature_updates_rejected.labels(kind).inc(),
    )
