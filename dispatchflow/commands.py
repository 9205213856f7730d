"""The registry each package uses to add its subcommands to the one `dispatchflow` CLI."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

#: A command handler receives the parsed arguments and returns the process exit code.
Handler = Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` that shows an option's default only when there is one worth showing.

    No default is printed for a required option, an option whose default is None (its help
    says what applies instead, e.g. the setting's own default), a flag without a value
    (`store_true`), or an option whose help already states its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.required
            or action.default is None
            or action.default is argparse.SUPPRESS
            or action.nargs == 0
            or "default" in text
        ):
            return text
        return super()._get_help_string(action)


@dataclass(frozen=True)
class CommandRegistry:
    """Where packages attach subcommands.

    Attributes:
        top: subparsers of `dispatchflow` itself (`dispatchflow worker`, `dispatchflow train`, ...).
        bench: subparsers of `dispatchflow bench` (`dispatchflow bench ingest`, ...).
    """

    top: argparse._SubParsersAction[argparse.ArgumentParser]
    bench: argparse._SubParsersAction[argparse.ArgumentParser]

    def add(
        self, name: str, handler: Handler, help_text: str, *, bench: bool = False
    ) -> argparse.ArgumentParser:
        """Add a subcommand that runs `handler`; returns its parser so options can be added."""
        group = self.bench if bench else self.top
        parser = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=HelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser
