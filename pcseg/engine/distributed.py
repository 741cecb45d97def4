"""torch.distributed helpers: set-up from torchrun's environment, rank queries, reductions.

Single-process runs never touch torch.distributed; every helper then answers as rank 0 of 1.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device_type: str) -> tuple[int, int]:
    """Join the process group described by torchrun's env (``WORLD_SIZE``, ``RANK``, ...).

    Uses NCCL for ``device_type == "cuda"`` and gloo otherwise. Returns (rank, world_size);
    (0, 1) without a multi-process environment.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes (in place, returned); a no-op for one process."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))
