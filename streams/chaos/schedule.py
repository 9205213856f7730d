"""The fault schedule of a chaos run, drawn from its seed: which fault, at which step, how long.

Faults start at lockstep steps (one step = one tick of event time), a moment after the step's
ticks were produced, while the workers handle them. The schedule is a plan; the injector
(`streams.chaos.faults`) carries it out on whatever is up at that moment (a kill aimed at a
worker that is already down goes to the next one up) and postpones a broker kill until the
cluster has every replica back in sync, so that no two brokers are ever down together.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

#: Range of how long a killed worker stays down before its restart, seconds.
WORKER_DOWN_S = (1.0, 20.0)
#: Range of how long a killed broker stays down before its restart, seconds.
BROKER_DOWN_S = (5.0, 30.0)
#: How long past its session timeout a paused worker stays paused, seconds.
ZOMBIE_EXTRA_S = (3.0, 10.0)
#: Longest wait after a step's ticks are produced before its fault starts, seconds.
MAX_DELAY_S = 0.05


class FaultKind(enum.StrEnum):
    """What a fault does."""

    WORKER_KILL = "worker_kill"
    BROKER_KILL = "broker_kill"
    ZOMBIE = "zombie"


@dataclass(frozen=True)
class Fault:
    """One planned fault.

    Attributes:
        kind: what it does.
        step: the lockstep step (1-based) whose ticks it follows.
        target: the worker or broker aimed at (the injector takes the next one up if it is not).
        down_s: how long the target stays killed (or paused, for a zombie), seconds.
        wipe: a killed worker restarts with its local state directory deleted.
        delay_s: wait after the step's ticks are produced before the fault starts, seconds.
    """

    kind: FaultKind
    step: int
    target: int
    down_s: float
    wipe: bool = False
    delay_s: float = 0.0


@dataclass(frozen=True)
class ScheduleSpec:
    """What to draw.

    Attributes:
        first_step: earliest step a fault may start at.
        last_step: latest step a fault may start at.
        workers: worker processes in the group.
        brokers: broker nodes of the cluster.
        worker_kills: SIGKILLs of a worker (half of them restart with wiped state).
        broker_kills: SIGKILLs of a broker, one at a time.
        zombies: SIGSTOPs of a worker past its session timeout, then SIGCONT.
        session_timeout_s: the workers' consumer-group session timeout.
    """

    first_step: int
    last_step: int
    workers: int
    brokers: int
    worker_kills: int
    broker_kills: int
    zombies: int
    session_timeout_s: float

    def __post_init__(self) -> None:
        if not 1 <= self.first_step <= self.last_step:
            msg = f"steps must satisfy 1 <= first <= last, got {self.first_step}..{self.last_step}"
            raise ValueError(msg)
        if self.workers < 1 or self.brokers < 1:
            msg = "a schedule needs at least one worker and one broker"
            raise ValueError(msg)
        if min(self.worker_kills, self.broker_kills, self.zombies) < 0:
            msg = "fault counts must be >= 0"
            raise ValueError(msg)


def draw_schedule(seed: int, spec: ScheduleSpec) -> list[Fault]:
    """The faults of `spec`, drawn from `seed`, ordered by step (then kind and target).

    Worker kills and zombies start at uniformly drawn steps; exactly half of the worker kills
    (rounded down) wipe the worker's state. Broker kills get one step each in equal slices of
    the step range, so they are spread over the run.
    """
    rng = random.Random(seed)
    steps = range(spec.first_step, spec.last_step + 1)
    faults: list[Fault] = []
    wipes = [True] * (spec.worker_kills // 2) + [False] * (
        spec.worker_kills - spec.worker_kills // 2
    )
    rng.shuffle(wipes)
    for wipe in wipes:
        faults.append(
            Fault(
                FaultKind.WORKER_KILL,
                rng.choice(steps),
                rng.randrange(spec.workers),
                round(rng.uniform(*WORKER_DOWN_S), 3),
                wipe=wipe,
                delay_s=round(rng.uniform(0.0, MAX_DELAY_S), 4),
            )
        )
    span = (spec.last_step - spec.first_step + 1) / max(spec.broker_kills, 1)
    for i in range(spec.broker_kills):
        low = spec.first_step + int(i * span)
        high = max(low, spec.first_step + int((i + 1) * span) - 1)
        faults.append(
            Fault(
                FaultKind.BROKER_KILL,
                rng.randint(low, high),
                rng.randrange(spec.brokers),
                round(rng.uniform(*BROKER_DOWN_S), 3),
                delay_s=round(rng.uniform(0.0, MAX_DELAY_S), 4),
            )
        )
    for _ in range(spec.zombies):
        faults.append(
            Fault(
                FaultKind.ZOMBIE,
                rng.choice(steps),
                rng.randrange(spec.workers),
                round(spec.session_timeout_s + rng.uniform(*ZOMBIE_EXTRA_S), 3),
                delay_s=round(rng.uniform(0.0, MAX_DELAY_S), 4),
            )
        )
    return sorted(faults, key=lambda f: (f.step, f.kind.value, f.target))
