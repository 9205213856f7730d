"""`values.schema.json`: every value is described, and a misspelt one fails the render."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.unit.charts.rendering import CHART, render


def schema() -> dict[str, Any]:
    """The chart's values schema."""
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text("utf-8"))
    return loaded


def default_values() -> dict[str, Any]:
    """The chart's values.yaml."""
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
    return loaded


def nested_objects(values: dict[str, Any], node: dict[str, Any], path: str = "") -> list[str]:
    """Paths of every object of `values` whose schema does not list all of its keys."""
    missing = [f"{path}{k}" for k in values if k not in node.get("properties", {})]
    for key, value in values.items():
        child = node.get("properties", {}).get(key, {})
        if isinstance(value, dict) and child.get("additionalProperties") is False:
            missing += nested_objects(value, child, f"{path}{key}.")
    return missing


def test_the_schema_describes_every_top_level_value() -> None:
    """Each top-level key of values.yaml has a schema."""
    assert sorted(set(default_values()) - set(schema()["properties"])) == []


def test_the_schema_describes_every_key_of_every_closed_object() -> None:
    """Where the schema refuses unknown keys, it lists every key values.yaml has."""
    assert nested_objects(default_values(), schema()) == []


def test_the_top_level_refuses_unknown_keys() -> None:
    """The schema is closed at the top level."""
    assert schema()["additionalProperties"] is False


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCont": 3},
        {"worker": {"tickIntervalSec": 1.0}},
        {"serviceMonitor": {"enable": True}},
        {"persistence": {"sise": "20Gi"}},
    ],
    ids=["top-level", "worker", "serviceMonitor", "persistence"],
)
def test_a_misspelt_value_fails_the_render(values: dict[str, Any]) -> None:
    """A misspelt key is refused at render time instead of being silently ignored."""
    with pytest.raises(helm.HelmError):
        render(values)
