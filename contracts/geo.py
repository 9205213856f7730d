"""Geohash encoding (scalar and vectorized) and local planar projection.

A shard is the geohash prefix of an order's pickup point (`shard_of`); upstream producers use the
same function to choose record keys. A zone is a longer prefix used for features.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_BASE32_BYTES = np.frombuffer(BASE32.encode("ascii"), dtype=np.uint8)
EARTH_RADIUS_M = 6_371_008.8
MAX_PRECISION = 12


def _check_precision(precision: int) -> None:
    if not 1 <= precision <= MAX_PRECISION:
        msg = f"geohash precision must be within 1..{MAX_PRECISION}, got {precision}"
        raise ValueError(msg)


def encode(lat: float, lon: float, precision: int) -> str:
    """Geohash of one point.

    >>> encode(57.64911, 10.40744, 11)
    'u4pruydqqvj'
    """
    return str(encode_many(np.array([lat]), np.array([lon]), precision)[0])


def shard_of(lat: float, lon: float, precision: int = 4) -> str:
    """The shard (geohash prefix) a point belongs to; the record key of shard-keyed topics.

    >>> shard_of(40.7580, -73.9855)
    'dr5r'
    """
    return encode(lat, lon, precision)


def encode_many(lat: npt.ArrayLike, lon: npt.ArrayLike, precision: int) -> npt.NDArray[np.str_]:
    """Geohashes of many points at once (arrays of degrees in, array of strings out)."""
    _check_precision(precision)
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    if lat_a.shape != lon_a.shape:
        msg = "lat and lon must have the same shape"
        raise ValueError(msg)
    if np.any(~np.isfinite(lat_a)) or np.any(np.abs(lat_a) > 90) or np.any(np.abs(lon_a) > 180):
        msg = "coordinates out of range"
        raise ValueError(msg)
    n_bits = precision * 5
    lon_bits = (n_bits + 1) // 2
    lat_bits = n_bits // 2
    lat_q = _quantize(lat_a, -90.0, 90.0, lat_bits)
    lon_q = _quantize(lon_a, -180.0, 180.0, lon_bits)
    code = _interleave(lon_q, lat_q, lon_bits, lat_bits)
    shifts = np.arange(precision - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    digits = (code[:, None] >> shifts[None, :]) & np.uint64(31)
    chars = _BASE32_BYTES[digits.astype(np.intp)]
    flat = np.ascontiguousarray(chars).view(f"S{precision}").ravel()
    return flat.astype(f"U{precision}").reshape(lat_a.shape)


def _quantize(
    values: npt.NDArray[np.float64], low: float, high: float, bits: int
) -> npt.NDArray[np.uint64]:
    cells = 1 << bits
    scaled = np.floor((values.ravel() - low) / (high - low) * cells)
    return np.clip(scaled, 0, cells - 1).astype(np.uint64)


def _interleave(
    even: npt.NDArray[np.uint64], odd: npt.NDArray[np.uint64], even_bits: int, odd_bits: int
) -> npt.NDArray[np.uint64]:
    """Interleave bits, most significant first, starting with `even` (longitude)."""
    code = np.zeros(even.shape, dtype=np.uint64)
    total = even_bits + odd_bits
    for i in range(total):
        if i % 2 == 0:
            bit = (even >> np.uint64(even_bits - 1 - i // 2)) & np.uint64(1)
        else:
            bit = (odd >> np.uint64(odd_bits - 1 - i // 2)) & np.uint64(1)
        code |= bit << np.uint64(total - 1 - i)
    return code


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


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in metres between point arrays (degrees)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def project_m(
    lat: npt.ArrayLike, lon: npt.ArrayLike, origin_lat: float, origin_lon: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Equirectangular projection to metres (x east, y north) around an origin; metro scale."""
    k = math.pi / 180 * EARTH_RADIUS_M
    x = (np.asarray(lon, dtype=np.float64) - origin_lon) * k * math.cos(math.radians(origin_lat))
    y = (np.asarray(lat, dtype=np.float64) - origin_lat) * k
    return x, y


def unproject_m(
    x_m: npt.ArrayLike, y_m: npt.ArrayLike, origin_lat: float, origin_lon: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Inverse of `project_m`: metres around an origin back to (lat, lon) degrees."""
    k = math.pi / 180 * EARTH_RADIUS_M
    lat = np.asarray(y_m, dtype=np.float64) / k + origin_lat
    lon = np.asarray(x_m, dtype=np.float64) / (k * math.cos(math.radians(origin_lat))) + origin_lon
    return lat, lon
