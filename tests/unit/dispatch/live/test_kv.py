"""Typed key-value views, over a dict and over a real RocksDB database."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import cast

import pytest
from rocksdict import Options, Rdict

from dispatch.live.kv import KV


def text_kv(mapping: MutableMapping[bytes, bytes] | Rdict) -> KV[str]:
    """Strings stored as UTF-8 (an `Rdict` is a mapping at run time; its stubs do not say so)."""
    return KV(cast(MutableMapping[bytes, bytes], mapping), str.encode, bytes.decode)


def test_a_missing_key_reads_none() -> None:
    """`get` of a key never written is None and the key is not contained."""
    kv = text_kv({})
    assert kv.get("k") is None and "k" not in kv


def test_put_then_get_returns_the_value_and_overwrites() -> None:
    """The last value put under a key is the one read back."""
    kv = text_kv({})
    kv.put("k", "one")
    kv.put("k", "two")
    assert kv.get("k") == "two" and "k" in kv


def test_values_are_stored_encoded_under_encoded_keys() -> None:
    """The backing mapping holds bytes keys and encoded values (what a table changelogs)."""
    mapping: dict[bytes, bytes] = {}
    KV(mapping, lambda n: str(n * 10).encode(), lambda raw: int(raw) // 10).put("ñ", 4)
    assert mapping == {"ñ".encode(): b"40"}


def test_delete_removes_a_key_and_ignores_a_missing_one() -> None:
    """`delete` removes the key; deleting an absent key is not an error."""
    kv = text_kv({})
    kv.put("k", "v")
    kv.delete("k")
    kv.delete("never")
    assert kv.get("k") is None


def test_items_decodes_every_entry() -> None:
    """`items` yields every key with its decoded value."""
    kv = text_kv({})
    for key in ("a", "b", "c"):
        kv.put(key, key.upper())
    assert sorted(kv.items()) == [("a", "A"), ("b", "B"), ("c", "C")]


def test_items_may_be_iterated_while_writing() -> None:
    """Writing during `items` (as the engine does while re-indexing) does not break iteration."""
    kv = text_kv({})
    kv.put("a", "1")
    kv.put("b", "2")
    for key, _ in kv.items():
        kv.put(key + "x", "new")
        kv.delete(key)
    assert sorted(k for k, _ in kv.items()) == ["ax", "bx"]


@pytest.fixture
def rocks(tmp_path: Path) -> Iterator[Rdict]:
    """A raw-mode RocksDB database."""
    db = Rdict(str(tmp_path / "db"), Options(raw_mode=True))
    yield db
    db.close()


def test_a_rocksdb_backed_view_round_trips_and_lists(rocks: Rdict) -> None:
    """Over a real RocksDB database the view reads, lists and deletes what it wrote."""
    kv = text_kv(rocks)
    kv.put("o1", "open")
    kv.put("o2", "done")
    kv.delete("o2")
    assert kv.get("o1") == "open" and kv.get("o2") is None
    assert list(kv.items()) == [("o1", "open")]


def test_a_rocksdb_backed_view_keeps_its_data_across_reopening(tmp_path: Path) -> None:
    """Values written through the view are there after the database is closed and reopened."""
    path = str(tmp_path / "db")
    db = Rdict(path, Options(raw_mode=True))
    text_kv(db).put("c1", "online")
    db.close()
    db = Rdict(path, Options(raw_mode=True))
    try:
        assert text_kv(db).get("c1") == "online"
    finally:
        db.close()
