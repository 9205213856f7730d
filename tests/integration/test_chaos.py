"""The short chaos run (`make chaos-short`), on three Kafka nodes through three workers.

A small town with 3 worker kills, 1 broker kill, 1 zombie and 5,000 hostile records: every figure
that must be zero is zero and every hostile record is dead-lettered with its reason.

The full run (a lunch rush with 20 worker kills, 3 broker kills and 100,000 hostile records) is
`make chaos`. This one runs with `make chaos-short`, not in `make test`, which is at its time
budget (see README, "Faults, overload and capacity", for what the full run still shows).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.chaos.report import failures, figures
from streams.chaos.run import ChaosOptions, run_chaos

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.chaos]


def test_a_short_chaos_run_passes(tmp_path: Path) -> None:
    """Every planned fault is carried out and the run passes the chaos report's rule."""
    options = ChaosOptions(
        seed=5,
        preset="small_town",
        worker_kills=3,
        broker_kills=1,
        zombies=1,
        fuzz=5_000,
        workdir=tmp_path,
        progress=False,
    )
    report = figures(run_chaos(options))
    done = (report["worker_kills"], report["broker_kills"], report["zombies"])
    assert (done, failures(report)) == ((3, 1, 1), []), report["examples"]
