"""Live dispatch over event streams: shard state, the tick, the decision lifecycle. No Kafka."""
