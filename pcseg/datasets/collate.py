"""Collate samples into ragged batches and seed DataLoader workers."""

from __future__ import annotations

import random

import numpy as np
import torch


def collate_ragged(samples: list[dict]) -> dict:
    """Concatenate per-scan samples along the point axis.

    Each sample holds numpy arrays ``xyz`` (n,3) float32, ``feats`` (n,C) float32, ``labels``
    (n,) int64 train ids and ``index`` (n,) int64 (row in the source scan), plus ``scan`` (int,
    the dataset index) and optionally ``instance`` (n,) int64 instance ids (0 = none). Returns
    torch tensors ``xyz`` (N,3), ``feats`` (N,C), ``labels`` (N,), ``index`` (N,), ``instance``
    (N,) when every sample has it, ``offsets`` (B,) int64 cumulative counts
    (``offsets[-1] == N``) and ``scans`` (B,) int64.
    """
    counts = [len(s["xyz"]) for s in samples]
    batch = {
        key: torch.from_numpy(np.concatenate([s[key] for s in samples], axis=0))
        for key in ("xyz", "feats", "labels", "index")
    }
    if all("instance" in s for s in samples):
        batch["instance"] = torch.from_numpy(np.concatenate([s["instance"] for s in samples], axis=0))
    batch["offsets"] = torch.from_numpy(np.cumsum(counts).astype(np.int64))
    batch["scans"] = torch.tensor([s["scan"] for s in samples], dtype=torch.int64)
    return batch


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive python/numpy seeds from torch's per-worker seed.

    Augmentations do not depend on these (they use per-sample generators), but any third-party
    code calling ``np.random`` in a worker then stays reproducible too.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
