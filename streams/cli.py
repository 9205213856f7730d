"""Subcommands contributed by `streams`."""

from __future__ import annotations

from dispatchflow.commands import CommandRegistry


def register(registry: CommandRegistry) -> None:
    """Attach this package's subcommands to `registry`."""
