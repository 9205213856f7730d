"""`dispatchflow schemas`: the event contracts for upstream teams."""

from __future__ import annotations

import argparse
from pathlib import Path

from contracts.schemas import export_schemas, schema_names
from dispatchflow.commands import CommandRegistry


def _export(args: argparse.Namespace) -> int:
    written = export_schemas(Path(args.directory))
    for path in written:
        print(path)
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in schema_names():
        print(name)
    return 0


def register(registry: CommandRegistry) -> None:
    """Attach `schemas export` and `schemas list`."""
    parser = registry.top.add_parser(
        "schemas", help="list or export the JSON Schemas of every event (the contracts)"
    )
    sub = parser.add_subparsers(title="actions", metavar="ACTION")
    export = sub.add_parser("export", help="write every schema as <type>.v<N>.json into DIRECTORY")
    export.add_argument("directory", help="where to write the schema files (created if missing)")
    export.set_defaults(handler=_export)
    listing = sub.add_parser("list", help="print the event types that have a schema")
    listing.set_defaults(handler=_list)
