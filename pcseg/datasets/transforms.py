"""Augmentations for training scans. Every function takes an explicit ``numpy.random.Generator``
so a sample's augmentation depends only on (seed, epoch, index): worker count and resuming do
not change what the model sees.
"""

from __future__ import annotations

import numpy as np


def rotate_z(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate float32 (N,3) points about the z axis by a uniform angle in [0, 2 pi)."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    return xyz @ rot.T


def random_tilt(xyz: np.ndarray, max_degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate points about a random horizontal axis through the origin by an angle uniform in
    [-max_degrees, max_degrees]: roads slope and sensors are mounted slightly tilted, so the
    ground of a real scan is rarely the exact plane z = -h of a generated one."""
    heading = rng.uniform(0.0, 2.0 * np.pi)
    angle = np.radians(rng.uniform(-max_degrees, max_degrees))
    axis = np.array([np.cos(heading), np.sin(heading), 0.0])
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    rot = np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)  # Rodrigues
    return xyz @ rot.T.astype(np.float32)


def random_scale(xyz: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """Scale points isotropically by a factor uniform in [low, high]."""
    return xyz * np.float32(rng.uniform(low, high))


def random_flip(xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror x and y, each with probability 0.5 (z, the up axis, is never flipped)."""
    out = xyz.copy()
    if rng.random() < 0.5:
        out[:, 0] = -out[:, 0]
    if rng.random() < 0.5:
        out[:, 1] = -out[:, 1]
    return out


def jitter(xyz: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of std ``sigma`` metres (clipped at 3 sigma) to every coordinate."""
    noise = np.clip(rng.normal(0.0, sigma, size=xyz.shape), -3 * sigma, 3 * sigma)
    return (xyz + noise).astype(np.float32)


def color_jitter(rgb: np.ndarray, strength: float, drop: float, rng: np.random.Generator) -> np.ndarray:
    """float32 (N, 3) colours in [0, 1] after a random per-channel gain and offset (std ``strength``)
    and contrast change; with probability ``drop`` every colour becomes mid-grey 0.5 instead
    (colour dropout: the model learns to do without colour, see :data:`NO_COLOR`)."""
    if drop > 0 and rng.random() < drop:
        return np.full(rgb.shape, NO_COLOR, dtype=np.float32)
    if strength <= 0:
        return rgb.astype(np.float32)
    gain = np.exp(rng.normal(0.0, strength, 3))
    contrast = np.exp(rng.normal(0.0, strength))
    mean = rgb.mean(axis=0, keepdims=True)
    out = (rgb - mean) * contrast + mean * gain + rng.normal(0.0, strength * 0.3, 3)
    out = out + rng.normal(0.0, strength * 0.1, rgb.shape)  # per-point colour noise
    return np.clip(out, 0.0, 1.0).astype(np.float32)


NO_COLOR = 0.5  # the colour feature of every point of a colour-free cloud for colour-dropout models


def dropout_index(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """int64 indices of the points kept after dropping ``fraction`` of ``n`` at random (>= 1 kept)."""
    keep = max(1, int(round(n * (1.0 - fraction))))
    return np.sort(rng.choice(n, size=keep, replace=False)).astype(np.int64)


def inclination_bands(xyz: np.ndarray, bands: int, lo: float, hi: float) -> np.ndarray:
    """int64 (N,) band number 0..bands-1 of each point's inclination angle in [lo, hi] radians."""
    pitch = np.arctan2(xyz[:, 2], np.linalg.norm(xyz[:, :2], axis=1))
    edges = np.linspace(lo, hi, bands + 1)[1:-1]
    return np.searchsorted(edges, pitch).astype(np.int64)


def laser_mix(xyz_a: np.ndarray, xyz_b: np.ndarray, bands: int, rng: np.random.Generator):
    """LaserMix-like mixing of two LiDAR scans (sensor at the origin).

    The inclination range common to both scans is cut into ``bands`` bands; even bands come from
    one scan and odd bands from the other (which scan starts is random).

    Returns (keep_a, keep_b): int64 indices of the points taken from scan a and from scan b.
    """
    pitch = lambda p: np.arctan2(p[:, 2], np.linalg.norm(p[:, :2], axis=1))  # noqa: E731
    pa, pb = pitch(xyz_a), pitch(xyz_b)
    lo = float(min(pa.min(), pb.min())) if len(pa) and len(pb) else -1.0
    hi = float(max(pa.max(), pb.max())) + 1e-6 if len(pa) and len(pb) else 1.0
    band_a = inclination_bands(xyz_a, bands, lo, hi)
    band_b = inclination_bands(xyz_b, bands, lo, hi)
    parity = int(rng.integers(0, 2))
    keep_a = np.flatnonzero(band_a % 2 == parity)
    keep_b = np.flatnonzero(band_b % 2 != parity)
    return keep_a.astype(np.int64), keep_b.astype(np.int64)


def voxel_subsample(xyz: np.ndarray, voxel_size: float, rng: np.random.Generator) -> np.ndarray:
    """int64 sorted indices keeping one random point per occupied voxel of edge ``voxel_size`` m."""
    keys = np.floor(xyz / voxel_size).astype(np.int64)
    keys -= keys.min(axis=0)
    order = rng.permutation(len(xyz))
    _, first = np.unique(keys[order], axis=0, return_index=True)
    return np.sort(order[first]).astype(np.int64)


def sample_points(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """int64 indices of exactly ``count`` points out of ``n`` (with repeats only when n < count)."""
    if n >= count:
        return np.sort(rng.choice(n, size=count, replace=False)).astype(np.int64)
    extra = rng.choice(n, size=count - n, replace=True)
    return np.concatenate([np.arange(n), extra]).astype(np.int64)


def block_crop(xyz: np.ndarray, block_size: float, rng: np.random.Generator) -> np.ndarray:
    """int64 indices of the points inside a ``block_size`` x ``block_size`` m square (in x, y,
    all heights) centred on a random point of the cloud."""
    center = xyz[rng.integers(0, len(xyz)), :2]
    inside = np.all(np.abs(xyz[:, :2] - center) <= block_size / 2, axis=1)
    return np.flatnonzero(inside).astype(np.int64)


def azimuth(xyz: np.ndarray) -> np.ndarray:
    """float64 (N,) azimuth of each point about the sensor (the origin), in [0, 2 pi)."""
    return np.mod(np.arctan2(xyz[:, 1].astype(np.float64), xyz[:, 0]), 2.0 * np.pi)


def polar_mix(xyz_a, labels_a, xyz_b, labels_b, paste_classes, rng: np.random.Generator, copies: int = 3):
    """PolarMix-like mixing of two LiDAR scans (sensor at the origin, z up).

    Scene level: the points of scan a in a random azimuth sector of half a turn are replaced by
    the points of scan b in that sector. Instance level: the points of b whose label is in
    ``paste_classes`` are added ``copies`` times, rotated about z by equally spaced angles (the
    first copy where it was), so rare objects appear at new bearings at their real ranges.

    Returns (keep_a, sector_b, paste_b, angles): int64 indices into a and b, and one rotation
    angle (radians) per row of ``paste_b``.
    """
    start = rng.uniform(0.0, 2.0 * np.pi)
    in_sector = lambda p: np.mod(azimuth(p) - start, 2.0 * np.pi) < np.pi  # noqa: E731
    keep_a = np.flatnonzero(~in_sector(xyz_a))
    sector_b = np.flatnonzero(in_sector(xyz_b))
    things = np.flatnonzero(np.isin(labels_b, np.asarray(list(paste_classes), dtype=np.int64)))
    offset = rng.uniform(0.0, 2.0 * np.pi)
    angles = [0.0] + [offset + 2.0 * np.pi * k / copies for k in range(1, copies)] if copies > 0 else []
    paste_b = np.concatenate([things] * len(angles)) if len(angles) else np.zeros(0, np.int64)
    per_row = np.repeat(np.asarray(angles, dtype=np.float64), len(things))
    return keep_a.astype(np.int64), sector_b.astype(np.int64), paste_b.astype(np.int64), per_row


def rotate_rows_z(xyz: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """float32 (N,3): each point rotated about z by its own angle (radians, (N,))."""
    c, s = np.cos(angles), np.sin(angles)
    out = np.empty_like(xyz, dtype=np.float32)
    out[:, 0] = c * xyz[:, 0] - s * xyz[:, 1]
    out[:, 1] = s * xyz[:, 0] + c * xyz[:, 1]
    out[:, 2] = xyz[:, 2]
    return out
