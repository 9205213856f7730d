"""`dispatchflow`: one command line for worker, broker, simulation, training and benchmarks."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dispatchflow import __version__
from dispatchflow.commands import CommandRegistry
from dispatchflow.errors import UserError

#: Modules that contribute subcommands; each exposes `register(registry: CommandRegistry)`.
COMMAND_MODULES: tuple[str, ...] = (
    "contracts.cli",
    "streams.cli",
    "streams.dlq_cli",
    "streams.chaos.cli",
    "models.cli",
    "simulators.cli",
    "dispatch.cli",
    "console.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every package's subcommands attached."""
    parser = argparse.ArgumentParser(
        prog="dispatchflow",
        description=(
            "Real-time dispatch and ETA for delivery marketplaces. "
            "Run `dispatchflow COMMAND --help` for the options of one command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"dispatchflow {__version__}")
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    bench_parser = top.add_parser(
        "bench", help="benchmarks that print figures and write JSON under bench-results/"
    )
    bench = bench_parser.add_subparsers(title="benchmarks", metavar="BENCHMARK")
    registry = CommandRegistry(top=top, bench=bench)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(registry)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code.

    A `UserError` (an invalid or unknown setting, an unreachable broker) is printed as one line,
    `error: <message>`, on stderr, and the exit code is 1.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
