"""A chaos run's report: the JSON figures, the printed summary table and the PNG timeline.

`figures(result)` holds the issue's keys first (`REPORT_KEYS`), then what helps to read them;
`failures(figures)` names every figure that breaks the pass rule (`MUST_BE_ZERO` all zero,
every hostile record dead-lettered with its reason, every planned fault carried out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from streams.chaos.run import ChaosResult
from streams.chaos.schedule import FaultKind

#: The keys every report carries, in this order.
REPORT_KEYS = (
    "seed",
    "worker_kills",
    "broker_kills",
    "zombies",
    "orders",
    "lost_orders",
    "double_assignments",
    "capacity_violations",
    "commits_after_end",
    "fenced_commits",
    "fuzz_sent",
    "fuzz_dead_lettered",
    "valid_in_dlq",
    "unexpected_crashes",
    "max_lag_s",
    "tick_p99_ms",
)
#: Figures a passing run has at zero.
MUST_BE_ZERO = (
    "lost_orders",
    "double_assignments",
    "capacity_violations",
    "commits_after_end",
    "fenced_commits",
    "valid_in_dlq",
    "unexpected_crashes",
    "eta_after_delivery",
    "faults_not_started",
    "harness_errors",
    "open_at_end",
)
#: Colour of each fault's mark on the timeline.
FAULT_COLOURS = {
    "worker_killed": "tab:red",
    "broker_killed": "tab:purple",
    "zombie_paused": "tab:orange",
    "unexpected_exit": "black",
}


def figures(result: ChaosResult) -> dict[str, Any]:
    """Every figure of `result`, the issue's keys first."""
    f = result.figures
    probe = result.probe
    out: dict[str, Any] = {
        "seed": result.options.seed,
        "worker_kills": result.count(FaultKind.WORKER_KILL),
        "broker_kills": result.count(FaultKind.BROKER_KILL),
        "zombies": result.count(FaultKind.ZOMBIE),
        "orders": f.orders,
        "lost_orders": f.lost_orders,
        "double_assignments": f.double_assignments,
        "capacity_violations": f.capacity_violations,
        "commits_after_end": f.commits_after_end,
        "fenced_commits": f.fenced_commits,
        "fuzz_sent": f.fuzz_sent,
        "fuzz_dead_lettered": f.fuzz_dead_lettered,
        "valid_in_dlq": f.valid_in_dlq,
        "unexpected_crashes": result.unexpected_crashes,
        "max_lag_s": round(probe.max_lag_s, 2),
        "tick_p99_ms": probe.tick_p99_ms,
    }
    out.update(
        eta_after_delivery=f.eta_after_delivery,
        fuzz_wrong_reason=f.fuzz_wrong_reason,
        faults_not_started=len(result.faults_not_started),
        harness_errors=len(result.errors),
        open_at_end=len(result.open_at_end),
        open_at_end_orders=list(result.open_at_end[:20]),
        zombies_evicted=result.zombies_fenced,
        worker_restarts_wiped=sum(
            1
            for fault, _ in result.faults_done
            if fault.kind is FaultKind.WORKER_KILL and fault.wipe
        ),
        trace_mismatches=f.trace_mismatches,
        delivered=f.delivered,
        cancelled=f.cancelled,
        expired=f.expired,
        commits=f.commits,
        duplicate_commit_records=f.duplicate_commit_records,
        duplicate_dead_letters=f.duplicate_dead_letters,
        ticks=probe.ticks,
        circuit_breaker_ticks=probe.breaker_ticks,
        orders_in_burst=result.orders_in_burst,
        steps=result.steps,
        wall_s=result.wall_s,
        load_average=[round(x, 2) for x in os.getloadavg()],
        cpus=os.cpu_count(),
        options={k: str(v) if isinstance(v, Path) else v for k, v in vars(result.options).items()},
        fuzz_by_reason=f.fuzz_by_reason,
        fuzz_by_topic=f.fuzz_by_topic,
        faults=[
            {
                "kind": fault.kind.value,
                "planned_step": fault.step,
                "started_step": step,
                "target": fault.target,
                "down_s": fault.down_s,
                "wipe": fault.wipe,
            }
            for fault, step in result.faults_done
        ],
        fault_events=result.fault_events,
        crash_lines=result.crash_lines[:20],
        harness_error_messages=result.errors[:20],
        examples=f.examples,
    )
    return out


def overload_figures(result: ChaosResult) -> dict[str, Any]:
    """Lag and ticks before, during and after the burst of an overload run."""
    options = result.options
    start_ms = options.city().start_ts_ms
    burst_from = start_ms + round(options.burst_at_min * 60_000)
    burst_to = burst_from + round(options.burst_min * 60_000)
    steps = result.probe.steps
    before = [s.lag_s for s in steps if s.sim_ts_ms < burst_from]
    during = [s for s in steps if burst_from <= s.sim_ts_ms < burst_to]
    after = [s.lag_s for s in steps if s.sim_ts_ms >= burst_to]
    wall_from = during[0].at_s - during[0].wall_s if during else 0.0
    wall_to = during[-1].at_s if during else 0.0
    in_burst = [m for m in result.probe.metrics if wall_from <= m.at_s <= wall_to + 30]
    return {
        "burst_factor": options.burst_factor,
        "burst_window_ms": [burst_from, burst_to],
        "lag_before_burst_p50_s": _median(before),
        "lag_peak_s": max((s.lag_s for s in during), default=0.0),
        "lag_after_burst_max_s": max(after, default=0.0),
        "lag_last_20_steps_p50_s": _median(after[-20:]),
        "open_orders_peak": max((s.open_orders for s in steps), default=0),
        "breaker_ticks_in_burst": sum(m.breaker_ticks for m in in_burst),
        "tick_p99_ms_in_burst_max": max(
            (m.tick_p99_ms for m in in_burst if m.tick_p99_ms is not None), default=None
        ),
    }


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 3) if ordered else 0.0


def failures(report: Mapping[str, Any]) -> list[str]:
    """Every way `report` breaks the pass rule, one line each (empty: the run passed)."""
    out = [f"{key} = {report[key]}" for key in MUST_BE_ZERO if report.get(key)]
    if report["fuzz_dead_lettered"] != report["fuzz_sent"]:
        out.append(
            f"fuzz_dead_lettered = {report['fuzz_dead_lettered']} of fuzz_sent = "
            f"{report['fuzz_sent']}"
        )
    return out


def print_table(report: Mapping[str, Any]) -> None:
    """Print the figures, each with what a passing run needs."""
    rules = {key: "0" for key in MUST_BE_ZERO}
    rules["fuzz_dead_lettered"] = "= fuzz_sent"
    rows = [
        *REPORT_KEYS,
        "eta_after_delivery",
        "fuzz_wrong_reason",
        "zombies_evicted",
        "faults_not_started",
        "harness_errors",
        "open_at_end",
        "circuit_breaker_ticks",
        "duplicate_commit_records",
        "duplicate_dead_letters",
    ]
    print(f"\n{'figure':<28}{'value':>14}  {'must be':<12}")
    print("-" * 56)
    for key in rows:
        value = report.get(key)
        mark = ""
        if key in rules:
            ok = (value == report["fuzz_sent"]) if key == "fuzz_dead_lettered" else not value
            mark = "" if ok else "  <-- FAIL"
        print(f"{key:<28}{value!s:>14}  {rules.get(key, ''):<12}{mark}")
    print("\nfuzz by reason (sent / dead-lettered with it):")
    for reason, counts in report["fuzz_by_reason"].items():
        print(f"  {reason:<26}{counts['sent']:>8} / {counts['dead_lettered']}")
    for kind, examples in report["examples"].items():
        for example in examples[:3]:
            print(f"  {kind}: {example}")
    print(
        f"\n{report['steps']} steps in {report['wall_s']:.0f} s; load average "
        f"{', '.join(map(str, report['load_average']))} on {report['cpus']} CPUs"
    )


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    """Write `report` as JSON to `path` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def plot_timeline(result: ChaosResult, path: Path, title: str) -> Path:
    """The run over wall time: throughput, lag, tick p99 and open orders, faults as marks."""
    probe = result.probe
    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    metric_t = [m.at_s for m in probe.metrics]
    axes[0].plot(metric_t, [m.consumed_per_s for m in probe.metrics], color="tab:blue")
    axes[0].set_ylabel("records consumed/s\n(all workers)")
    step_t = [s.at_s for s in probe.steps]
    axes[1].plot(
        step_t,
        [s.lag_s for s in probe.steps],
        color="tab:green",
        linewidth=0.8,
        drawstyle="steps-pre",
    )
    axes[1].set_ylabel("lag (s)\nlongest wait of a step")
    p99 = [(m.at_s, m.tick_p99_ms) for m in probe.metrics if m.tick_p99_ms is not None]
    axes[2].plot([t for t, _ in p99], [v for _, v in p99], color="tab:brown", marker=".")
    breaker = [(m.at_s, m.breaker_ticks) for m in probe.metrics if m.breaker_ticks]
    if breaker:
        twin = axes[2].twinx()
        twin.bar(
            [t for t, _ in breaker],
            [n for _, n in breaker],
            width=3,
            color="tab:gray",
            alpha=0.5,
            label="greedy-fallback ticks",
        )
        twin.set_ylabel("fallback ticks")
    axes[2].set_ylabel("tick p99 (ms)")
    axes[3].plot(step_t, [s.open_orders for s in probe.steps], color="tab:olive")
    axes[3].set_ylabel("open orders")
    axes[3].set_xlabel("seconds since the run started")
    _mark_faults(axes, result.fault_events)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mark_faults(axes: Sequence[Any], events: Sequence[Mapping[str, Any]]) -> None:
    labelled: set[str] = set()
    for event in events:
        colour = FAULT_COLOURS.get(event["what"])
        if colour is None:
            continue
        for i, ax in enumerate(axes):
            label = event["what"] if i == 0 and event["what"] not in labelled else None
            ax.axvline(event["at_s"], color=colour, linewidth=0.8, alpha=0.7, label=label)
        labelled.add(event["what"])
    if labelled:
        axes[0].legend(loc="upper right", fontsize="small")
