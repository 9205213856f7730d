"""One chaos run end to end: cluster, workers, a seeded rush with faults and hostile input.

`run_chaos(options)` starts a three-node Apache Kafka cluster (replication 3, min ISR 2) and
`options.workers` workers in one consumer group, each with its own static membership id
(`consumer_group_instance_id`), local state directory and log. The city simulator drives them in
event-time lockstep (`streams.sim_dispatch.KafkaDispatch`) and plays the courier app against
their offers; before each step, hostile records are produced to the input topics
(`simulators.hostile`), and after each step's ticks the fault injector starts what the schedule
says (`streams.chaos.schedule`, `streams.chaos.faults`). After the simulation, every fault is
over, every worker is up, and every record of every consumed topic is handled; then the checker
reads the topics (`streams.chaos.checker`) and the workers' logs (`streams.chaos.worker_logs`).

An overload run (`options.burst_factor > 1`) adds orders in a window of the scenario so that the
order rate there is that many times the normal one (`burst_scenario`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.topics import load_topics
from dispatch.live.topic_names import CONSUMED_TOPICS
from dispatchflow.settings import BrokerKind, Settings
from simulators.city import PRESETS, CityConfig, SimRecord, run_simulation
from simulators.city.scenario import Scenario, build_scenario
from simulators.hostile import HostileInput, HostileLimits, HostileRecord
from streams.chaos.checker import Figures, Place, RunTruth, check_run, read_run
from streams.chaos.faults import FaultInjector
from streams.chaos.probe import Probe, StepSample
from streams.chaos.schedule import Fault, FaultKind, ScheduleSpec, draw_schedule
from streams.chaos.worker_logs import crash_lines, joins
from streams.demo import local_settings
from streams.kafka_broker import KafkaCluster
from streams.kafka_config import aiokafka_kwargs
from streams.produce import wait_processed
from streams.sim_dispatch import KafkaDispatch
from streams.topics import TopicAdmin
from streams.worker_process import WorkerProcess

#: Steps at the start of the scenario without faults (the workers warm up).
WARMUP_STEPS = 10
#: Hostile events about unknown orders stop this long before the scenario ends, so that their
#: wait for the order (`orphan_ttl_s`) ends within the run.
UNKNOWN_ORDERS_MARGIN_S = 120.0
#: How long one lockstep settle may wait (a fault can hold a partition for a while).
SETTLE_TIMEOUT_S = 900.0
#: Longest drain after the scenario: ticking goes on until every order in the world has ended,
#: at most this long. A tight city can assign its last orders late (an order placed in the
#: scenario's last hour waited 56 min for a courier with no fault at all), and an order still
#: on its way when the drain stops cannot be judged: the run reports it in `open_at_end`.
DRAIN_MAX_S = 7_200.0


@dataclass(frozen=True)
class ChaosOptions:
    """What to run.

    Attributes:
        seed: seeds the city, the fault schedule and the hostile records.
        preset: the city scenario (`simulators.city.PRESETS`).
        duration_min: shorten the scenario's order-placement window to this (None: as is).
        workers: worker processes in the group.
        worker_kills: SIGKILLs of a worker.
        broker_kills: SIGKILLs of a broker.
        zombies: SIGSTOPs of a worker past its session timeout.
        fuzz: hostile records in all.
        burst_factor: order rate in the burst window, times the normal one (1: no burst).
        burst_at_min: minutes after the scenario start when the burst begins.
        burst_min: length of the burst, minutes of event time.
        workdir: where the cluster, workers and logs live (None: a temporary folder, removed
            after a passing run).
        progress: show progress bars.
    """

    seed: int = 1
    preset: str = "lunch_rush"
    duration_min: float | None = None
    workers: int = 3
    worker_kills: int = 20
    broker_kills: int = 3
    zombies: int = 2
    fuzz: int = 100_000
    burst_factor: float = 1.0
    burst_at_min: float = 60.0
    burst_min: float = 5.0
    workdir: Path | None = None
    progress: bool = True

    def city(self) -> CityConfig:
        """The scenario's configuration."""
        config = PRESETS[self.preset](seed=self.seed)
        config = replace(config, drain_max_s=max(config.drain_max_s, DRAIN_MAX_S))
        if self.duration_min is not None:
            config = replace(config, duration_s=self.duration_min * 60)
        return config


@dataclass
class ChaosResult:
    """What a run produced: the figures, the faults, the timeline and where its files are."""

    options: ChaosOptions
    figures: Figures
    probe: Probe
    faults_done: list[tuple[Fault, int]]
    faults_not_started: list[Fault]
    fault_events: list[dict[str, Any]]
    unexpected_exits: int
    crash_lines: list[str]
    zombies_fenced: int
    orders_in_burst: int
    steps: int
    open_at_end: tuple[str, ...]
    wall_s: float
    workdir: Path
    errors: list[str] = field(default_factory=list)

    @property
    def unexpected_crashes(self) -> int:
        """Worker exits nobody asked for, or crash lines logged by a worker that did not exit."""
        return max(self.unexpected_exits, len(self.crash_lines))

    def count(self, kind: FaultKind) -> int:
        """Faults of `kind` carried out."""
        return sum(1 for fault, _ in self.faults_done if fault.kind is kind)


def burst_scenario(config: CityConfig, factor: float, at_s: float, length_s: float) -> Scenario:
    """The scenario of `config` with extra orders making the rate `factor` times in a window.

    The extra orders are drawn like the city's own (same merchants' places, same kinds of
    customers) at `factor - 1` times the normal rate over `[start + at_s, start + at_s +
    length_s)`, with ids prefixed `burst-`; couriers are the city's.
    """
    base = build_scenario(config)
    if factor <= 1:
        return base
    scale = factor - 1
    demand = replace(
        config.demand,
        base_orders_per_h=config.demand.base_orders_per_h * scale,
        lunch_peak_orders_per_h=config.demand.lunch_peak_orders_per_h * scale,
        dinner_peak_orders_per_h=config.demand.dinner_peak_orders_per_h * scale,
    )
    extra_config = replace(
        config,
        id_prefix=f"{config.id_prefix}burst-",
        start_ts_ms=config.start_ts_ms + round(at_s * 1000),
        duration_s=length_s,
        demand=demand,
    )
    extra = build_scenario(extra_config)
    orders = sorted((*base.orders, *extra.orders), key=lambda o: (o.placed_ts_ms, o.order_id))
    return Scenario(
        merchants=(*base.merchants, *extra.merchants),
        orders=tuple(orders),
        couriers=base.couriers,
        shards=tuple(sorted({*base.shards, *extra.shards})),
    )


class _HostileProducer:
    """Produces hostile records on a loop of its own and notes where each one landed."""

    def __init__(self, client: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()

        async def start() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(
                **client,
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                max_request_size=2_000_000,
            )
            await producer.start()
            return producer

        self.producer = self.loop.run_until_complete(start())

    def send(self, records: Sequence[HostileRecord]) -> dict[Place, HostileRecord]:
        """Produce `records`; their places once acknowledged."""

        async def send_all() -> dict[Place, HostileRecord]:
            futures = [
                await self.producer.send(
                    r.topic,
                    value=r.value,
                    key=r.key,
                    timestamp_ms=r.ts_ms,
                    headers=list(r.headers) or None,
                )
                for r in records
            ]
            placed: dict[Place, HostileRecord] = {}
            for record, meta in zip(records, await asyncio.gather(*futures), strict=True):
                placed[(meta.topic, meta.partition, meta.offset)] = record
            return placed

        return self.loop.run_until_complete(send_all())

    def close(self) -> None:
        """Stop the producer and its loop."""
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.producer.stop())
        self.loop.close()


class ChaosDispatch:
    """The simulator's `Dispatch` of a chaos run: the lockstep, with what goes around each step.

    Before a step: the hostile records due and the faults' bookkeeping; after its ticks: the
    faults due; after it: the timeline.
    """

    def __init__(
        self,
        config: CityConfig,
        dispatch: KafkaDispatch,
        injector: FaultInjector,
        probe: Probe,
        hostile: HostileInput,
        producer: _HostileProducer | None,
        fuzz: int,
    ) -> None:
        self.config = config
        self.dispatch = dispatch
        self.injector = injector
        self.probe = probe
        self.hostile = hostile
        self.producer = producer
        self.fuzz = fuzz
        self.truth = RunTruth()
        self.step = 0
        self.scenario_steps = max(1, round(config.duration_s / config.tick_interval_s))
        self._sent = 0
        self._open: set[str] = set()
        self._ticks_at = 0.0
        dispatch.after_ticks = self._after_ticks

    def _after_ticks(self) -> None:
        self._ticks_at = time.monotonic()
        self.injector.after_ticks(self.step)

    def _hostile(self, until_ts_ms: int) -> int:
        if self.producer is None or self.step > self.scenario_steps:
            return 0
        quota = self.fuzz * self.step // self.scenario_steps - self._sent
        if quota <= 0:
            return 0
        cutoff = self.config.scenario_end_ts_ms - round((300.0 + UNKNOWN_ORDERS_MARGIN_S) * 1000)
        records = self.hostile.records(quota, until_ts_ms, unknown_orders=until_ts_ms < cutoff)
        self.truth.hostile.update(self.producer.send(records))
        self._sent += len(records)
        return len(records)

    def run_until(self, inputs: Sequence[SimRecord], until_ts_ms: int) -> list[SimRecord]:
        """One step: faults due, hostile records, the lockstep step, the timeline."""
        self.step += 1
        self.injector.before_step(self.step)
        started = time.monotonic()
        sent = self._hostile(until_ts_ms)
        self._ticks_at = started
        outputs = self.dispatch.run_until(inputs, until_ts_ms)
        ended = time.monotonic()
        self.hostile.observe(inputs)
        self._track(inputs, outputs)
        self.probe.step(
            StepSample(
                self.step,
                round(self.probe.now_s(), 3),
                until_ts_ms,
                round(ended - started, 3),
                len(inputs),
                sent,
                round(max(self._ticks_at - started, ended - self._ticks_at), 3),
                len(self._open),
            )
        )
        return outputs

    def _track(self, inputs: Sequence[SimRecord], outputs: Sequence[SimRecord]) -> None:
        """Orders placed and not ended yet, from what went in and came out."""
        for record in (*inputs, *outputs):
            kind = record.event.get("type")
            if kind == "order_created":
                self.truth.orders.add(str(record.event["order_id"]))
                self._open.add(str(record.event["order_id"]))
            elif kind in ("delivery_delivered", "order_cancelled", "order_expired"):
                self._open.discard(str(record.event["order_id"]))


def _worker_settings(bootstrap: str, workdir: Path, index: int, config: CityConfig) -> Settings:
    return local_settings(
        bootstrap,
        workdir / f"worker-{index}" / "data",
        BrokerKind.KAFKA,
        ticker_enabled=False,
        tick_interval_s=float(config.tick_interval_s),
        consumer_group_instance_id=f"chaos-worker-{index}",
        replication_factor=3,
        log_level="info",
    )


def _start_all(workers: Sequence[WorkerProcess]) -> None:
    """Start every worker at once and wait until each is ready."""
    errors: list[BaseException] = []

    def start(worker: WorkerProcess) -> None:
        try:
            worker.start(ready_timeout_s=300)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    yield Path(tempfile.mkdtemp(prefix="dispatchflow-chaos-"))


def run_chaos(options: ChaosOptions) -> ChaosResult:
    """Run `options` end to end and return what it found (see the module docstring)."""
    started = time.monotonic()
    config = options.city()
    at_s, length_s = options.burst_at_min * 60, options.burst_min * 60
    scenario = burst_scenario(config, options.burst_factor, at_s, length_s)
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(_workdir(options.workdir))
        cluster = stack.enter_context(KafkaCluster(3, run_dir=workdir / "kafka", heap_mb=384))
        settings = [
            _worker_settings(cluster.bootstrap, workdir, i, config) for i in range(options.workers)
        ]
        client = aiokafka_kwargs(settings[0])
        topics = load_topics(app_id=settings[0].app_id).topics
        asyncio.run(TopicAdmin(client, replication=3, keep_forever=True).apply(topics))
        workers = [WorkerProcess(s, workdir / f"worker-{i}.log") for i, s in enumerate(settings)]
        for worker in workers:
            stack.callback(worker.kill)
        _start_all(workers)
        dispatch = KafkaDispatch(
            client,
            [w.url for w in workers],
            settle_timeout_s=SETTLE_TIMEOUT_S,
            group_id=settings[0].app_id,
            idempotent=True,
        )
        stack.callback(dispatch.close)
        injector = FaultInjector(
            draw_schedule(options.seed, _spec(options, config, settings[0])),
            cluster,
            workers,
            client,
            add_url=dispatch.add_worker,
            remove_url=dispatch.remove_worker,
        )
        stack.callback(injector.shutdown)
        probe = Probe(lambda: list(dispatch.worker_urls), workers)
        producer = _HostileProducer(client) if options.fuzz else None
        if producer is not None:
            stack.callback(producer.close)
        driver = ChaosDispatch(
            config,
            dispatch,
            injector,
            probe,
            HostileInput(options.seed, scenario.shards, _limits(settings[0])),
            producer,
            options.fuzz,
        )
        log = run_simulation(config, driver, progress=options.progress, scenario=scenario)
        injector.wait_idle(timeout_s=600)
        asyncio.run(
            wait_processed(
                client,
                settings[0].app_id,
                list(dispatch.worker_urls),
                CONSUMED_TOPICS,
                timeout_s=SETTLE_TIMEOUT_S,
            )
        )
        probe.scrape()
        truth = driver.truth
        truth.zombies = list(injector.zombies)
        for i, worker in enumerate(workers):
            truth.joins.extend(joins(worker.log_path, i))
        figures = check_run(asyncio.run(read_run(client)), truth)
        for worker in workers:
            worker.stop()
        lines = [line for w in workers for line in crash_lines(w.log_path)]
    burst_prefix = f"{config.id_prefix}burst-"
    return ChaosResult(
        options=options,
        figures=figures,
        probe=probe,
        faults_done=list(injector.done),
        faults_not_started=injector.pending,
        fault_events=[vars(e) for e in injector.events],
        unexpected_exits=sum(1 for e in injector.events if e.what == "unexpected_exit"),
        crash_lines=lines,
        zombies_fenced=_evicted(truth),
        orders_in_burst=sum(1 for o in truth.orders if o.startswith(burst_prefix)),
        steps=log.steps,
        open_at_end=log.open_order_ids,
        wall_s=round(time.monotonic() - started, 1),
        workdir=workdir,
        errors=list(injector.errors),
    )


def _spec(options: ChaosOptions, config: CityConfig, settings: Settings) -> ScheduleSpec:
    """The schedule's frame: faults start between the warm-up and the scenario's last steps."""
    steps = max(1, round(config.duration_s / config.tick_interval_s))
    first = min(WARMUP_STEPS, steps)
    return ScheduleSpec(
        first_step=first,
        last_step=max(first, steps - WARMUP_STEPS),
        workers=options.workers,
        brokers=3,
        worker_kills=options.worker_kills,
        broker_kills=options.broker_kills,
        zombies=options.zombies,
        session_timeout_s=settings.session_timeout_s,
    )


def _limits(settings: Settings) -> HostileLimits:
    """What the workers accept, so that every hostile record's reason is known."""
    return HostileLimits(
        max_event_bytes=settings.max_event_bytes,
        max_ping_batch=settings.max_ping_batch,
        max_ping_items=max(settings.max_ping_batch, 10_000),
        max_event_age_ms=int(settings.max_event_age_s * 1000),
        max_event_lead_ms=int(settings.max_event_lead_s * 1000),
        partitions=load_topics()["order_events"].partitions,
    )


def _evicted(truth: RunTruth) -> int:
    """Paused workers the group moved on from while they were paused."""
    return sum(
        1
        for z in truth.zombies
        if any(
            j.worker != z.worker and z.paused_wall_s <= j.wall_s <= z.resumed_wall_s
            for j in truth.joins
        )
    )


def remove_workdir(result: ChaosResult) -> None:
    """Delete a run's folder (cluster data, worker state and logs)."""
    shutil.rmtree(result.workdir, ignore_errors=True)
