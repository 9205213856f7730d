import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.pings import PingColumns
from contracts.positions import PositionBatchError, decode_position_batch, encode_position_batch

ids = st.text(alphabet="abcdefghij0123456789_-", min_size=1, max_size=20)


@given(
    st.lists(
        st.tuples(ids, st.floats(-90, 90), st.floats(-180, 180), st.integers(0, 10**9)),
        max_size=60,
    )
)
def test_binary_batch_round_trips(rows: list[tuple[str, float, float, int]]) -> None:
    """Encoding then decoding gives back the shard, ids, coordinates and times exactly."""
    n = len(rows)
    columns = PingColumns(
        courier_id=np.array([r[0] for r in rows], dtype=object).reshape(n),
        lat=np.array([r[1] for r in rows], dtype=np.float64),
        lon=np.array([r[2] for r in rows], dtype=np.float64),
        ts_ms=np.array([1_700_000_000_000 + r[3] for r in rows], dtype=np.int64),
        speed_mps=np.full(n, 4.5),
        heading_deg=np.full(n, np.nan),
        accuracy_m=np.full(n, 8.0),
    )
    batch = decode_position_batch(encode_position_batch("dr5r", "e1", 1, columns))
    decoded = batch.fixes
    assert (batch.shard, batch.left) == ("dr5r", False)
    assert decoded.courier_id.tolist() == columns.courier_id.tolist()
    np.testing.assert_array_equal(decoded.lat, columns.lat)
    np.testing.assert_array_equal(decoded.lon, columns.lon)
    np.testing.assert_array_equal(decoded.ts_ms, columns.ts_ms)
    np.testing.assert_array_equal(decoded.speed_mps, columns.speed_mps)
    assert np.isnan(decoded.heading_deg).all()


def test_bytes_without_the_magic_are_rejected() -> None:
    """Anything but a position batch raises PositionBatchError."""
    with pytest.raises(PositionBatchError, match="magic"):
        decode_position_batch(b'{"json": true}')


def test_trailing_bytes_are_rejected() -> None:
    """A batch with extra bytes after its columns is rejected, not silently truncated."""
    columns = PingColumns(
        np.array(["c1"], dtype=object),
        np.array([1.0]),
        np.array([2.0]),
        np.array([5]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([0.0]),
    )
    with pytest.raises(PositionBatchError, match="trailing"):
        decode_position_batch(encode_position_batch("s", "e", 1, columns) + b"x")


@pytest.mark.parametrize(("lat", "lon"), [(123.0, 2.0), (1.0, -181.0), (float("nan"), 2.0)])
def test_coordinates_off_the_globe_are_rejected(lat: float, lon: float) -> None:
    """A batch whose coordinates are off the globe or not numbers raises PositionBatchError."""
    columns = PingColumns(
        np.array(["c1"], dtype=object),
        np.array([lat]),
        np.array([lon]),
        np.array([5]),
        np.array([0.0]),
        np.array([0.0]),
        np.array([0.0]),
    )
    with pytest.raises(PositionBatchError, match="off the globe"):
        decode_position_batch(encode_position_batch("s", "e", 1, columns))


def test_a_tombstones_coordinates_are_not_checked() -> None:
    """A tombstone batch decodes whatever its coordinates (they are NaN and never read)."""
    nan = np.array([np.nan])
    columns = PingColumns(np.array(["c1"], dtype=object), nan, nan, np.array([5]), nan, nan, nan)
    batch = decode_position_batch(encode_position_batch("s", "e", 1, columns, left=True))
    assert (batch.left, batch.fixes.courier_id.tolist(), batch.fixes.ts_ms.tolist()) == (
        True,
        ["c1"],
        [5],
    )
