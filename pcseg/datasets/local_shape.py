"""Local surface shape of airborne points: how rough and how level the surface around a point is.

Roofs and ground are smooth planes, canopy is rough, walls are vertical. Both measures come from
the covariance of the neighbourhood of each point and use only differences of coordinates, so
they do not depend on where a tile lies. To be the same at any point density (2 to 100+ points
per m^2, and training tiles thinned to one point per 0.8 m voxel), points are first reduced to
the centroids of ``voxel``-metre voxels; each centroid's neighbourhood is its ``k`` nearest
centroids within ``radius`` metres.
"""

from __future__ import annotations

import numpy as np

SHAPE_VOXEL = 1.0
SHAPE_RADIUS = 2.0
SHAPE_NEIGHBOURS = 24
ROUGHNESS_CAP = 1.0   # metres; also the value of points with fewer than 3 neighbours


def local_shape(xyz: np.ndarray, voxel: float = SHAPE_VOXEL, radius: float = SHAPE_RADIUS,
                k: int = SHAPE_NEIGHBOURS):
    """(roughness, normal_z), float32 (N,) each.

    ``roughness``: the standard deviation (metres, at most ``ROUGHNESS_CAP``) of the
    neighbourhood across its best-fitting plane (square root of the smallest covariance
    eigenvalue): about 0 on roofs, ground and walls, large in canopy. ``normal_z``: the absolute
    vertical component of that plane's unit normal: 1 on level surfaces, 0 on walls; 0.5 where a
    point has fewer than 3 neighbouring centroids (wires, isolated returns).

    ``xyz`` float (N, 3) metres, z up.
    """
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz, dtype=np.float64)
    n = len(xyz)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    local = xyz - xyz.min(axis=0)
    keys = np.floor(local / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    centroids = np.zeros((len(counts), 3))
    np.add.at(centroids, inverse, local)
    centroids /= counts[:, None]
    m = len(centroids)
    kk = min(k, m)
    dist, idx = cKDTree(centroids).query(centroids, k=kk, distance_upper_bound=radius)
    dist, idx = dist.reshape(m, kk), idx.reshape(m, kk)
    valid = np.isfinite(dist)
    count = valid.sum(axis=1)
    neigh = centroids[np.where(valid, idx, 0)]                       # (m, kk, 3)
    weight = valid[..., None].astype(np.float64)
    mean = (neigh * weight).sum(axis=1) / np.maximum(count, 1)[:, None]
    diff = (neigh - mean[:, None, :]) * weight
    cov = np.einsum("mki,mkj->mij", diff, diff) / np.maximum(count, 1)[:, None, None]
    values, vectors = np.linalg.eigh(cov)                            # ascending eigenvalues
    rough = np.sqrt(np.clip(values[:, 0], 0, None)).clip(0, ROUGHNESS_CAP)
    normal_z = np.abs(vectors[:, 2, 0])
    few = count < 3
    rough[few], normal_z[few] = ROUGHNESS_CAP, 0.5
    return rough[inverse].astype(np.float32), normal_z[inverse].astype(np.float32)
