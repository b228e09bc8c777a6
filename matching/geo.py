"""Distances on the earth and the travel-time model.

Scalar callers go through the same numpy functions as the vectorised candidate search, so a
pair that sits exactly on the radius gets the same minute count on both paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matching.types import Location

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TravelModel:
    """Door-to-door minutes from straight-line distance.

    Defaults describe an e-bike or bicycle in town (12 km/h) on streets about 30% longer than
    the straight line: the 15-minute service circle is then about 2.3 km across the map.
    """

    speed_kmh: float = 12.0
    detour_factor: float = 1.3

    def __post_init__(self) -> None:
        if self.speed_kmh <= 0 or self.detour_factor < 1.0:
            raise ValueError("speed must be positive and the detour factor at least 1")

    def minutes(self, km: FloatArray) -> IntArray:
        """Whole minutes, rounded up (a 2.1-minute trip blocks 3 minutes of a schedule)."""
        raw = np.asarray(km, dtype=np.float64) * (self.detour_factor * 60.0 / self.speed_kmh)
        # A hair below the integer is float noise, not a shorter trip.
        return np.ceil(raw - 1e-9).astype(np.int64)

    def reach_km(self, minutes: int) -> float:
        """The largest straight-line distance whose travel time is at most `minutes`."""
        return minutes * self.speed_kmh / (60.0 * self.detour_factor)


def haversine_km(
    lat1: FloatArray | float, lon1: FloatArray | float, lat2: FloatArray, lon2: FloatArray
) -> FloatArray:
    """Great-circle distance in km; arguments in degrees, broadcast like numpy."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2.0) ** 2
    km: FloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return km


def distance_km(a: Location, b: Location) -> float:
    return float(haversine_km(a.lat, a.lon, np.array([b.lat]), np.array([b.lon]))[0])


def unit_vectors(lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Points on the unit sphere: straight-line (chord) order there is great-circle order."""
    phi = np.radians(lat)
    lmb = np.radians(lon)
    cos_phi = np.cos(phi)
    return np.column_stack((cos_phi * np.cos(lmb), cos_phi * np.sin(lmb), np.sin(phi)))


def chord_for_km(km: float) -> float:
    """Chord length on the unit sphere for a great-circle distance, for k-d tree bounds."""
    return 2.0 * float(np.sin(min(km / EARTH_RADIUS_KM, np.pi) / 2.0))
