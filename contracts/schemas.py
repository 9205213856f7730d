"""The checked-in JSON Schemas: one file per event type and version, `schemas/<type>.v<N>.json`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema

#: Current schema version of every event type.
SCHEMA_VERSION = 1

JsonObject = dict[str, Any]


def _schema_dir() -> Any:
    return resources.files(__package__).joinpath("schemas")


@functools.cache
def schema_names() -> tuple[str, ...]:
    """Every event type with a schema, sorted."""
    names = {
        entry.name.split(".")[0]
        for entry in _schema_dir().iterdir()
        if entry.name.endswith(f".v{SCHEMA_VERSION}.json")
    }
    return tuple(sorted(names))


@functools.cache
def load_schema(event_type: str) -> JsonObject:
    """The JSON Schema of `event_type` (current version); KeyError if there is none."""
    if event_type not in schema_names():
        msg = f"no schema for event type {event_type!r}"
        raise KeyError(msg)
    text = _schema_dir().joinpath(f"{event_type}.v{SCHEMA_VERSION}.json").read_text("utf-8")
    schema: JsonObject = json.loads(text)
    return schema


@functools.cache
def compiled_validator(event_type: str) -> Callable[[Any], Any]:
    """A fast validator for `event_type`; raises `fastjsonschema.JsonSchemaValueException`."""
    validator: Callable[[Any], Any] = fastjsonschema.compile(load_schema(event_type))
    return validator


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema to `directory` (created if needed) for upstream teams; return paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in schema_names():
        path = directory / f"{name}.v{SCHEMA_VERSION}.json"
        path.write_text(json.dumps(load_schema(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
