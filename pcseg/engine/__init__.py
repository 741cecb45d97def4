"""Training engine: configs, builders, losses, trainer loop, checkpoints, distributed helpers
and :class:`~pcseg.engine.segmenter.Segmenter`. Submodules are imported where used."""
