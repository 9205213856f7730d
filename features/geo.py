"""Geometry on the WGS84 sphere: haversine distance, bearing and geohash cells.

Scalar functions serve single events; the `_np` variants take numpy arrays and are used on the
vectorized dispatch path.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: Mean Earth radius in metres.
EARTH_RADIUS_M = 6_371_008.8

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"

FloatArray = npt.NDArray[np.float64]


class GeoError(ValueError):
    """A coordinate is outside the valid WGS84 range or a precision is invalid."""


def check_lat_lon(lat: float, lon: float) -> None:
    """Raise `GeoError` unless `lat` is in [-90, 90] and `lon` in [-180, 180] (finite)."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise GeoError(f"coordinates must be finite, got ({lat}, {lon})")
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise GeoError(f"coordinates out of range: ({lat}, {lon})")


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees.

    Example:
        >>> round(haversine_m(40.0, -74.0, 40.0, -74.0))
        0
        >>> 111_000 < haversine_m(0.0, 0.0, 1.0, 0.0) < 111_400
        True
    """
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def haversine_m_np(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Vectorized `haversine_m`: element-wise distances in metres for arrays of degrees."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    h = np.sin((p2 - p1) * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl * 0.5) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0))))


def geohash_encode(lat: float, lon: float, precision: int = 6) -> str:
    """Geohash of a point with `precision` characters (1..12).

    Example:
        >>> geohash_encode(57.64911, 10.40744, 11)
        'u4pruydqqvj'
    """
    check_lat_lon(lat, lon)
    if not 1 <= precision <= 12:
        raise GeoError(f"geohash precision must be in 1..12, got {precision}")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    chars: list[str] = []
    bit = 0
    ch = 0
    even = True
    while len(chars) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                ch = (ch << 1) | 1
                lon_lo = mid
            else:
                ch <<= 1
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                ch = (ch << 1) | 1
                lat_lo = mid
            else:
                ch <<= 1
                lat_hi = mid
        even = not even
        bit += 1
        if bit == 5:
            chars.append(_BASE32[ch])
            bit = 0
            ch = 0
    return "".join(chars)


def geohash_parent(cell: str, precision: int) -> str:
    """The enclosing cell of `cell` at a coarser `precision` (a prefix)."""
    if not 1 <= precision <= len(cell):
        raise GeoError(f"cannot take a {precision}-char parent of {cell!r}")
    return cell[:precision]


def geohash_int_np(
    lat: npt.ArrayLike, lon: npt.ArrayLike, precision: int = 6
) -> npt.NDArray[np.int64]:
    """Vectorized geohash as integers (5 × precision bits); same cells as `geohash_encode`.

    The integer of a cell at precision p is the base-32 value of its string, so
    `geohash_int_np(...) >> 5 * (p - q)` gives the parent at precision q.
    """
    if not 1 <= precision <= 12:
        raise GeoError(f"geohash precision must be in 1..12, got {precision}")
    nbits = 5 * precision
    lon_bits = (nbits + 1) // 2
    lat_bits = nbits // 2
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    lat_i = _cell_index(la, -90.0, 180.0, lat_bits)
    lon_i = _cell_index(lo, -180.0, 360.0, lon_bits)
    out = np.zeros(la.shape, dtype=np.int64)
    # Interleave: bit 0 (most significant) is longitude, then latitude, alternating.
    for i in range(nbits):
        src, bits = (lon_i, lon_bits) if i % 2 == 0 else (lat_i, lat_bits)
        b = (src >> (bits - 1 - i // 2)) & 1
        out = (out << 1) | b
    return out


def geohash_to_int(cell: str) -> int:
    """The integer form (as produced by `geohash_int_np`) of a geohash string."""
    value = 0
    for ch in cell:
        idx = _BASE32.find(ch)
        if idx < 0:
            raise GeoError(f"not a geohash: {cell!r}")
        value = (value << 5) | idx
    return value


def _cell_index(
    v: npt.NDArray[np.float64], lo: float, span: float, bits: int
) -> npt.NDArray[np.int64]:
    """Index of the 2**bits-cell interval holding v, exact at cell edges (edges belong above)."""
    n = 1 << bits
    width = span / n
    idx = np.clip(np.floor((v - lo) / width).astype(np.int64), 0, n - 1)
    # Rounding in (v - lo) can land a value next to an edge in the wrong cell: fix by comparing
    # with the exact (dyadic) edges, as the bisection encoder does.
    idx = np.where((idx > 0) & (v < lo + idx * width), idx - 1, idx)
    idx = np.where((idx < n - 1) & (v >= lo + (idx + 1) * width), idx + 1, idx)
    return idx


def geohash_int_to_str(value: int, precision: int) -> str:
    """The geohash string of an integer cell from `geohash_int_np`."""
    chars = []
    for i in range(precision - 1, -1, -1):
        chars.append(_BASE32[(value >> (5 * i)) & 31])
    return "".join(chars)
