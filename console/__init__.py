"""The ops console: a read-side service over every shard's topics (`dispatchflow ops`).

It reads the input, output and dead-letter topics from the beginning with its own group-less
consumer, keeps a read model in memory and serves one web page (map, order decision history,
exceptions, per-shard KPIs) plus a JSON API. The read model (`console.model` and the modules it
uses) is pure: only `console.reader` and `console.scraper` talk to Kafka or to workers.
"""
