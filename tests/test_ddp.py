"""DDP on the CPU: two gloo processes with b scans each end with the same weights as one
process with 2b scans per step (same global batches, same augmentations)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from pcseg.engine.checkpoint import load_checkpoint
from pcseg.engine.trainer import Trainer
from test_engine_support import toy_config, write_toy_kitti


def _config(root, out, batch_size):
    config = toy_config(root, out, epochs=2, batch_size=batch_size, lr=0.01, scheduler="cosine", grad_clip=5.0)
    config["dataset"]["val_split"] = None
    config["dataset"]["num_points"] = 200
    config["dataset"]["augment"].update(rotate_z=True, flip=True, jitter=0.01)
    return config


def _worker(rank, world, port, root, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    try:
        Trainer(_config(root, out, batch_size=2), log=lambda *a: None).fit()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_single_process(tmp_path):
    root = write_toy_kitti(tmp_path / "data", sequences=("00",), scans=8, n=400)
    single = Trainer(_config(root, tmp_path / "single", batch_size=4), log=lambda *a: None)
    single.fit()
    mp.start_processes(_worker, args=(2, _free_port(), root, tmp_path / "ddp"), nprocs=2, join=True,
                       start_method="spawn")
    ddp = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ddp["step"] == single.step == 4 and ddp["world_size"] == 2
    for name, expected in single.model.state_dict().items():
        got = ddp["model"][name]
        # all-reduce sums in another order than one process does: equal to float rounding
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6), (name, (got - expected).abs().max())
    # and the runs did move the weights (the comparison is not trivially true)
    start = Trainer(_config(root, tmp_path / "fresh", batch_size=4), log=lambda *a: None).model.state_dict()
    assert any(not torch.allclose(start[k], v) for k, v in single.model.state_dict().items())
