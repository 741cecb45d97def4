"""Input validation and dispatch shared by the ops in ``pcseg.ops``.

Every public op checks its arguments here (dtype, shape, NaN, sizes, offsets) before anything is
dispatched, so a bad input raises :class:`pcseg.errors.PcsegValueError` naming the argument instead
of a C++ error. ``use_extension(op, tensor)`` decides whether the compiled kernel can run for that
tensor's device; otherwise the op's pure-PyTorch reference runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from pcseg.errors import PcsegValueError

FLOAT_DTYPES = (torch.float32, torch.float64)


def use_extension(op_name: str, tensor: torch.Tensor) -> bool:
    """True when ``torch.ops.pcseg.<op_name>`` exists and has a kernel for ``tensor``'s device."""
    from pcseg._ext import extension_loaded, has_compiled_kernel

    if not extension_loaded():
        return False
    from pcseg.ops._registration import ensure_registered

    ensure_registered()
    return has_compiled_kernel(op_name, tensor.device.type)


def check_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise PcsegValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_points(name: str, points, batched_ok: bool = True, allow_empty: bool = False, finite: bool = True) -> torch.Tensor:
    """``points`` must be float32/float64 (N,3), or (B,N,3) when ``batched_ok``, non-empty, and
    finite (unless ``finite=False``: then the caller checks that, see :func:`check_finite`)."""
    check_tensor(name, points)
    if points.dtype not in FLOAT_DTYPES:
        raise PcsegValueError(f"{name} must be float32 or float64, got {points.dtype}")
    shapes = "(N, 3) or (B, N, 3)" if batched_ok else "(N, 3)"
    if points.dim() not in ((2, 3) if batched_ok else (2,)) or points.shape[-1] != 3:
        raise PcsegValueError(f"{name} must have shape {shapes}, got {tuple(points.shape)}")
    if points.shape[-2] == 0 and not allow_empty:
        raise PcsegValueError(f"{name} is empty (no points)")
    return check_finite(name, points) if finite else points


def check_finite(name: str, points: torch.Tensor) -> torch.Tensor:
    """``points`` must hold no NaN or infinite value."""
    # One sum catches NaN/inf cheaply (it propagates); only then check element-wise, since a sum of
    # huge finite values can overflow too.
    if points.numel() and not bool(torch.isfinite(points.sum())) and not bool(torch.isfinite(points).all()):
        raise PcsegValueError(f"{name} contains NaN or infinite coordinates")
    return points


def check_features(name: str, features, dims: tuple[int, ...]) -> torch.Tensor:
    check_tensor(name, features)
    if not features.is_floating_point():
        raise PcsegValueError(f"{name} must be a floating-point tensor, got {features.dtype}")
    if features.dim() not in dims:
        raise PcsegValueError(f"{name} must have {' or '.join(str(d) for d in dims)} dimensions, got shape {tuple(features.shape)}")
    return features


def check_index(name: str, idx, dims: tuple[int, ...]) -> torch.Tensor:
    check_tensor(name, idx)
    if idx.dtype not in (torch.int64, torch.int32):
        raise PcsegValueError(f"{name} must be an int64 (or int32) index tensor, got {idx.dtype}")
    if idx.dim() not in dims:
        raise PcsegValueError(f"{name} must have {' or '.join(str(d) for d in dims)} dimensions, got shape {tuple(idx.shape)}")
    return idx.long()


def check_offsets(name: str, offsets, total: int, device: torch.device, allow_empty_clouds: bool = True) -> torch.Tensor:
    """Ragged offsets: int64 (B,), non-decreasing cumulative counts with ``offsets[-1] == total``."""
    check_tensor(name, offsets)
    if offsets.dtype not in (torch.int64, torch.int32) or offsets.dim() != 1:
        raise PcsegValueError(f"{name} must be an int64 (B,) tensor of cumulative counts, got {offsets.dtype} {tuple(offsets.shape)}")
    if offsets.numel() == 0:
        raise PcsegValueError(f"{name} is empty: a batch needs at least one cloud")
    offsets = offsets.to(device=device, dtype=torch.int64)
    host = offsets.cpu()
    if int(host[0]) < 0 or bool((host[1:] < host[:-1]).any()):
        raise PcsegValueError(f"{name} must be non-decreasing cumulative counts, got {host.tolist()[:8]}")
    if int(host[-1]) != total:
        raise PcsegValueError(f"{name}[-1] is {int(host[-1])} but there are {total} points: offsets do not add up")
    if not allow_empty_clouds:
        counts = torch.diff(host, prepend=host.new_zeros(1))
        if bool((counts == 0).any()):
            raise PcsegValueError(f"{name} describes an empty cloud (cloud {int((counts == 0).nonzero()[0])})")
    return offsets.contiguous()


def check_positive(name: str, value, integer: bool = False):
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PcsegValueError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not value > 0 or value != value:
        raise PcsegValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_vector3(name: str, value, positive: bool) -> list[float]:
    """A scalar or 3 values (sequence or tensor) -> list of 3 floats."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().reshape(-1).tolist()
    elif isinstance(value, (np.ndarray, np.generic)):  # numpy arrays and scalars (np.float32(0.05))
        value = value.tolist()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if not isinstance(value, (list, tuple, Sequence)) or len(value) != 3:  # list/tuple first: the ABC check is slow
        raise PcsegValueError(f"{name} must be a number or 3 numbers, got {value!r}")
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise PcsegValueError(f"{name} must be a number or 3 numbers, got {value!r}") from None
    for v in out:
        if not math.isfinite(v):
            raise PcsegValueError(f"{name} must be finite, got {value!r}")
        if positive and not v > 0:
            raise PcsegValueError(f"{name} must be > 0, got {value!r}")
    return out


def single_offsets(n: int, device: torch.device) -> torch.Tensor:
    # torch.full, not torch.tensor([n]): on a GPU the latter is a host-to-device copy that waits.
    return torch.full((1,), n, dtype=torch.int64, device=device)


def batch_offsets(num_batches: int, per_batch: int, device: torch.device) -> torch.Tensor:
    return torch.arange(1, num_batches + 1, dtype=torch.int64, device=device) * per_batch


def batch_index(offsets: torch.Tensor, total: int) -> torch.Tensor:
    """(N,) int64 cloud index of every point from ragged offsets."""
    counts = torch.diff(offsets, prepend=offsets.new_zeros(1))
    return torch.repeat_interleave(torch.arange(offsets.numel(), device=offsets.device), counts, output_size=total)
