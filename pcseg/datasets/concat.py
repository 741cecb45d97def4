"""Several scan datasets seen as one training split, each part repeated a number of times.

The outdoor model trains on a handful of real scans mixed with many generated ones: the real
part is repeated so that it keeps its weight in every epoch, and each repeat draws its own
augmentation (the repeat number is folded into the sample generator's seed), so repeats are not
copies of one sample.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from pcseg.errors import PcsegValueError


class ConcatScans(Dataset):
    """The scans of ``parts`` one after another; part ``p`` appears ``repeats[p]`` times.

    Args:
        parts: :class:`~pcseg.datasets.base.ScanDataset` objects with the same label map and
            feature list.
        repeats: how many times each part's scans appear per epoch (default 1 each).

    Indexing accepts ``index`` or ``(epoch, index)`` like a ScanDataset.
    """

    def __init__(self, parts, repeats=None):
        self.parts = list(parts)
        self.repeats = [1] * len(self.parts) if repeats is None else [int(r) for r in repeats]
        if len(self.repeats) != len(self.parts) or min(self.repeats, default=1) < 1:
            raise PcsegValueError(f"ConcatScans: need one repeat count >= 1 per part, got {repeats!r}")
        first = self.parts[0]
        self.label_map = first.label_map
        self.features = first.features
        self.in_channels = first.in_channels
        # (part, repeat, local index) of every global index
        self._table = [(p, r, i) for p, part in enumerate(self.parts)
                       for r in range(self.repeats[p]) for i in range(len(part))]

    def __len__(self) -> int:
        return len(self._table)

    def describe(self, index: int) -> str:
        part, _, local = self._table[int(index)]
        return self.parts[part].describe(local)

    def check_features(self) -> None:
        """Refuse up front (ConfigError naming the scan) when a part's scans lack a feature."""
        for part in self.parts:
            if hasattr(part, "check_features"):
                part.check_features()

    def label_histogram(self, max_scans: int = 64) -> np.ndarray:
        """int64 label counts of the parts, each weighted by its repeat count."""
        return sum(part.label_histogram(max_scans) * rep for part, rep in zip(self.parts, self.repeats))

    def __getitem__(self, key) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        part, repeat, local = self._table[int(index)]
        # a distinct (epoch, repeat) pair per draw keeps each repeat's augmentation its own
        sample = self.parts[part][(int(epoch) * max(self.repeats) + repeat, local)]
        sample["scan"] = int(index)
        return sample
