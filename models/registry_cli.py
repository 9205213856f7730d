"""`dispatchflow models`: list a model registry, run a version in shadow, promote one.

A worker re-reads its registry (`model_dir`) every `model_refresh_s` seconds: a candidate named
here runs in shadow beside the served set from the next re-read (its errors are exported as
`dispatchflow_model_abs_error_seconds{role="candidate"}`), and a promoted version serves from
then on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dispatchflow.commands import CommandRegistry

HELP = (
    "list the versions of a model registry, run one in shadow beside the served set "
    "(candidate), stop that (clear-candidate), or serve one from now on (promote); workers "
    "pick the change up at their next registry re-read"
)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def registry_state(root: Path) -> dict[str, Any]:
    """The registry's versions (with their model kinds), the served one and the candidate."""
    from models.registry import SET_FILE, ModelRegistry

    registry = ModelRegistry(root)
    versions = []
    for version in registry.versions():
        listing = root / version / SET_FILE
        kinds = json.loads(listing.read_text())["kinds"] if listing.is_file() else ["single"]
        versions.append({"version": version, "kinds": kinds})
    return {
        "registry": str(root),
        "versions": versions,
        "served": registry.target_version(),
        "pinned": registry.pinned(),
        "candidate": registry.candidate_version(),
    }


def _run(args: argparse.Namespace) -> int:
    from models.registry import ModelRegistry, RegistryError

    registry = ModelRegistry(args.registry)
    try:
        if args.action == "candidate":
            registry.set_candidate(args.version)
        elif args.action == "clear-candidate":
            registry.clear_candidate()
        elif args.action == "promote":
            registry.promote(args.version)
    except (RegistryError, OSError, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(registry_state(args.registry), indent=2))
    return 0


def register(registry: CommandRegistry) -> None:
    """Attach `models` to `registry`."""
    p = registry.add("models", _run, HELP)
    sub = p.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    for name, text, needs_version in (
        ("list", "print the versions, the served one and the candidate", False),
        ("candidate", "run VERSION in shadow beside the served set", True),
        ("clear-candidate", "stop the shadow run", False),
        ("promote", "serve VERSION from now on (pinned; no longer the candidate)", True),
    ):
        action = sub.add_parser(name, help=text, description=text)
        action.add_argument("--registry", type=Path, required=True, help="model registry directory")
        if needs_version:
            action.add_argument("version", metavar="VERSION", help="a version, e.g. v0003")
