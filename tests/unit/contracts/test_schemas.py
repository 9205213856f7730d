import json
import typing
from pathlib import Path

import jsonschema
import pytest

from contracts.records import RECORD_TYPES
from contracts.schemas import SCHEMA_VERSION, export_schemas, load_schema, schema_names


@pytest.mark.parametrize("name", schema_names())
def test_every_schema_is_a_valid_draft7_schema(name: str) -> None:
    """Each checked-in schema is itself valid JSON Schema (draft 7)."""
    jsonschema.Draft7Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("name", schema_names())
def test_every_schema_pins_its_type_and_version(name: str) -> None:
    """Each schema requires the envelope fields and fixes `type` and `v` to itself."""
    schema = load_schema(name)
    assert {"event_id", "type", "v", "ts_ms"} <= set(schema["required"])
    assert schema["properties"]["type"] == {"const": name}
    assert schema["properties"]["v"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("name", schema_names())
def test_typed_record_has_exactly_the_schema_fields(name: str) -> None:
    """The typed record of an event type has the schema's properties, required where required."""
    record = RECORD_TYPES[name]
    schema = load_schema(name)
    hints = typing.get_type_hints(record)
    assert set(hints) == set(schema["properties"])
    assert set(record.__required_keys__) == set(schema["required"])  # type: ignore[attr-defined]


def test_export_writes_one_file_per_schema(tmp_path: Path) -> None:
    """`export_schemas` writes every schema, byte-for-byte loadable, into the directory."""
    written = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        f"{n}.v{SCHEMA_VERSION}.json" for n in schema_names()
    )
    for path in written:
        assert json.loads(path.read_text()) == load_schema(path.name.split(".")[0])


def test_unknown_event_type_has_no_schema() -> None:
    """Asking for a schema that does not exist is a KeyError naming it."""
    with pytest.raises(KeyError, match="no_such_event"):
        load_schema("no_such_event")
