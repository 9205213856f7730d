"""Geometry on the WGS84 sphere and geohash cells: the one home of both.

A shard is the geohash prefix of an order's pickup point (`shard_of`); upstream producers use the
same function to choose record keys. A zone is a longer prefix used for features and surge.

Every primitive has one implementation, vectorized (numpy arrays of degrees or metres in, arrays
out); the scalar helpers (`distance_m`, `offset_m`) call it on one point. `encode` (one point's
geohash, on request paths where numpy's per-call overhead would be most of the cost) shares the
bit interleaving and repeats `_cell_index`'s float operations on one value; tests hold it equal
to `encode_many` and to the bisection definition, edges included. Geohash cells
are exact at their edges (a point on an edge belongs to the cell above it, as in the bisection
that defines geohashes). Distances are great-circle (haversine) metres; `project_m` and
`unproject_m` are the equirectangular projection around an origin, for metro-scale frames.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_BASE32_BYTES = np.frombuffer(BASE32.encode("ascii"), dtype=np.uint8)
#: Mean Earth radius in metres.
EARTH_RADIUS_M = 6_371_008.8
#: Metres per degree of latitude (and of longitude at the equator) on that sphere.
M_PER_DEGREE = math.pi / 180 * EARTH_RADIUS_M
MAX_PRECISION = 12

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_Cells = TypeVar("_Cells", int, IntArray)


class GeoError(ValueError):
    """A coordinate is outside the valid WGS84 range or a geohash or precision is invalid."""


def check_lat_lon(lat: float, lon: float) -> None:
    """Raise `GeoError` unless `lat` is in [-90, 90] and `lon` in [-180, 180] (finite)."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise GeoError(f"coordinates must be finite, got ({lat}, {lon})")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise GeoError(f"coordinates out of range: ({lat}, {lon})")


def _check_precision(precision: int) -> None:
    if not 1 <= precision <= MAX_PRECISION:
        raise GeoError(f"geohash precision must be within 1..{MAX_PRECISION}, got {precision}")


# ---------------------------------------------------------------------- geohash
def encode(lat: float, lon: float, precision: int) -> str:
    """Geohash of one point: the cell `encode_many` gives it, computed without arrays.

    Raises `GeoError` as `encode_many` does.

    >>> encode(57.64911, 10.40744, 11)
    'u4pruydqqvj'
    """
    _check_precision(precision)
    check_lat_lon(lat, lon)
    n_bits = 5 * precision
    lat_i = _cell_of(lat, -90.0, 180.0, n_bits // 2)
    lon_i = _cell_of(lon, -180.0, 360.0, (n_bits + 1) // 2)
    return int_to_geohash(_interleave(lon_i, lat_i, n_bits, 0), precision)


def shard_of(lat: float, lon: float, precision: int = 4) -> str:
    """The shard (geohash prefix) a point belongs to; the record key of shard-keyed topics.

    >>> shard_of(40.7580, -73.9855)
    'dr5r'
    """
    return encode(lat, lon, precision)


def encode_many(lat: npt.ArrayLike, lon: npt.ArrayLike, precision: int) -> npt.NDArray[np.str_]:
    """Geohashes of many points at once (arrays of degrees in, array of strings out)."""
    codes = encode_ints(lat, lon, precision)
    shifts = np.arange(precision - 1, -1, -1, dtype=np.int64) * 5
    digits = (codes.reshape(-1)[:, None] >> shifts[None, :]) & 31
    chars = _BASE32_BYTES[digits.astype(np.intp)]
    flat = np.ascontiguousarray(chars).view(f"S{precision}").ravel()
    return flat.astype(f"U{precision}").reshape(codes.shape)


def encode_ints(lat: npt.ArrayLike, lon: npt.ArrayLike, precision: int) -> IntArray:
    """Geohashes of many points as integers (5 × precision bits); the cells of `encode_many`.

    The integer of a cell at precision p is the base-32 value of its string, so
    `encode_ints(...) >> 5 * (p - q)` gives the parent at precision q.

    Raises:
        GeoError: for a precision outside 1..12, arrays of different shapes, or a coordinate
            that is not finite or out of range.
    """
    _check_precision(precision)
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    if lat_a.shape != lon_a.shape:
        raise GeoError("lat and lon must have the same shape")
    finite = np.isfinite(lat_a) & np.isfinite(lon_a)
    if not finite.all() or (np.abs(lat_a) > 90).any() or (np.abs(lon_a) > 180).any():
        raise GeoError("coordinates out of range")
    n_bits = 5 * precision
    lat_i = _cell_index(lat_a, -90.0, 180.0, n_bits // 2)
    lon_i = _cell_index(lon_a, -180.0, 360.0, (n_bits + 1) // 2)
    return _interleave(lon_i, lat_i, n_bits, np.zeros(lat_a.shape, dtype=np.int64))


def _interleave(lon_i: _Cells, lat_i: _Cells, n_bits: int, out: _Cells) -> _Cells:
    """The `n_bits`-bit code of cells (ints or int arrays): longitude first, alternating."""
    lon_bits, lat_bits = (n_bits + 1) // 2, n_bits // 2
    for i in range(n_bits):
        src, bits = (lon_i, lon_bits) if i % 2 == 0 else (lat_i, lat_bits)
        out = (out << 1) | ((src >> (bits - 1 - i // 2)) & 1)
    return out


def _cell_index(v: FloatArray, lo: float, span: float, bits: int) -> IntArray:
    """Index of the 2**bits-cell interval holding v, exact at cell edges (edges belong above)."""
    n = 1 << bits
    width = span / n
    idx = np.clip(np.floor((v - lo) / width).astype(np.int64), 0, n - 1)
    # Rounding in (v - lo) can land a value next to an edge in the wrong cell: fix by comparing
    # with the exact (dyadic) edges, as the bisection encoder does.
    idx = np.where((idx > 0) & (v < lo + idx * width), idx - 1, idx)
    return np.where((idx < n - 1) & (v >= lo + (idx + 1) * width), idx + 1, idx)


def _cell_of(v: float, lo: float, span: float, bits: int) -> int:
    """`_cell_index` of one value, in the same float operations."""
    n = 1 << bits
    width = span / n
    idx = min(max(math.floor((v - lo) / width), 0), n - 1)
    if idx > 0 and v < lo + idx * width:
        idx -= 1
    if idx < n - 1 and v >= lo + (idx + 1) * width:
        idx += 1
    return idx


def geohash_to_int(cell: str) -> int:
    """The integer form (as `encode_ints` gives it) of a geohash string.

    >>> geohash_to_int("dr5r") >> 5 == geohash_to_int("dr5")
    True
    """
    value = 0
    for ch in cell:
        idx = BASE32.find(ch)
        if idx < 0:
            raise GeoError(f"not a geohash: {cell!r}")
        value = (value << 5) | idx
    return value


def int_to_geohash(value: int, precision: int) -> str:
    """The geohash string of an integer cell from `encode_ints`.

    >>> int_to_geohash(geohash_to_int("dr5r"), 4)
    'dr5r'
    """
    return "".join(BASE32[(value >> (5 * i)) & 31] for i in range(precision - 1, -1, -1))


def decode_center(geohash: str) -> tuple[float, float]:
    """Centre (lat, lon) of a geohash cell.

    >>> [round(x, 3) for x in decode_center("u4pruydqqvj")]
    [57.649, 10.407]
    """
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for ch in geohash:
        value = BASE32.index(ch)
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2


# ---------------------------------------------------------------------- distances and frames
def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in metres between point arrays (degrees), element-wise."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (degrees): `haversine_m` of one pair.

    >>> round(distance_m(40.0, -74.0, 40.0, -74.0))
    0
    >>> 111_000 < distance_m(0.0, 0.0, 1.0, 0.0) < 111_400
    True
    """
    return float(haversine_m(lat1, lon1, lat2, lon2))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from the first point to the second, in [0, 360).

    >>> bearing_deg(0.0, 0.0, 1.0, 0.0), bearing_deg(0.0, 0.0, 0.0, 1.0)
    (0.0, 90.0)
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlmb = math.radians(lon2 - lon1)
    x = math.sin(dlmb) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dlmb)
    return math.degrees(math.atan2(x, y)) % 360.0


def project_m(
    lat: npt.ArrayLike, lon: npt.ArrayLike, origin_lat: float, origin_lon: float
) -> tuple[FloatArray, FloatArray]:
    """Equirectangular projection to metres (x east, y north) around an origin; metro scale."""
    k = M_PER_DEGREE
    x = (np.asarray(lon, dtype=np.float64) - origin_lon) * k * math.cos(math.radians(origin_lat))
    y = (np.asarray(lat, dtype=np.float64) - origin_lat) * k
    return x, y


def unproject_m(
    x_m: npt.ArrayLike, y_m: npt.ArrayLike, origin_lat: float, origin_lon: float
) -> tuple[FloatArray, FloatArray]:
    """Inverse of `project_m`: metres around an origin back to (lat, lon) degrees."""
    k = M_PER_DEGREE
    lat = np.asarray(y_m, dtype=np.float64) / k + origin_lat
    lon = np.asarray(x_m, dtype=np.float64) / (k * math.cos(math.radians(origin_lat))) + origin_lon
    return lat, lon


def offset_m(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m` east and `north_m` north of (lat, lon): `unproject_m` of one point.

    >>> [round(x, 6) for x in offset_m(0.0, 0.0, 0.0, M_PER_DEGREE)]
    [1.0, 0.0]
    """
    new_lat, new_lon = unproject_m(east_m, north_m, lat, lon)
    return float(new_lat), float(new_lon)
