"""The training loop: epochs of ragged batches, evaluation, checkpoints, logs, DDP.

Usage::

    config = load_config("configs/synthetic_minkunet.yaml", ["train.epochs=2"])
    Trainer(config).fit(resume=False)

Reproducibility: the data order is a function of (seed, epoch), a sample's augmentation of
(seed, epoch, index), DataLoaders use their own generators, and checkpoints keep every global RNG
state, so ``fit(resume=True)`` from a mid-epoch ``last.pt`` continues bit-exactly on the CPU.
"""

from __future__ import annotations

import csv
import math
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pcseg.engine import distributed as dist
from pcseg.engine.builders import (build_dataset, build_label_map, build_losses, build_model, build_optimizer,
                                   build_scheduler)
from pcseg.engine.checkpoint import (RESUME_KEYS, label_map_spec, load_checkpoint, rng_states, save_checkpoint,
                                     set_rng_states)
from pcseg.engine.interrupt import TrainingInterrupted, ignore_in_workers
from pcseg.engine.losses import masked_targets, offset_l1_sum
from pcseg.engine.panoptic import is_panoptic
from pcseg.errors import CheckpointError, ConfigError
from pcseg.memory import keep_freed_memory
from pcseg.threads import ThreadChooser


class RaggedForward(torch.nn.Module):
    """Routes ``forward`` to ``model.forward_ragged`` (or ``forward_panoptic`` with
    ``panoptic=True``) so DDP's hooks see every call."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, xyz, feats, offsets, panoptic: bool = False):
        if panoptic:
            return self.model.forward_panoptic(xyz, feats, offsets)
        return self.model.forward_ragged(xyz, feats, offsets)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device is cuda but no CUDA device is available")
        return torch.device("cuda", dist.local_rank() % torch.cuda.device_count())
    return torch.device("cpu")


class Trainer:
    """Train ``config``'s model on its dataset.

    Args:
        config: a validated config (:func:`pcseg.engine.config.load_config`).
        model: optional pre-built model (else built from ``config['model']``).
        train_set, val_set: optional datasets (else built from ``config['dataset']``).
        log: callable for one-line messages (rank 0 only).
    """

    def __init__(self, config, *, model=None, train_set=None, val_set=None, label_map=None, log=print):
        self.config = config
        tcfg = config["train"]
        self.tcfg = tcfg
        self.device = pick_device(tcfg["device"])
        # train.threads: a count, or null/auto = re-chosen every few seconds from the free cores
        self.threads = ThreadChooser(tcfg["threads"], every=5.0, name="train.threads")
        self.threads.apply()
        # glibc keeps the step's freed memory mapped: no page faults re-mapping it every step
        self.keeps_memory = keep_freed_memory(tcfg["keep_memory"])
        self.rank, self.world = dist.init_distributed(self.device.type)
        self.log = log if self.rank == 0 else (lambda *a, **k: None)
        seed_everything(tcfg["seed"])
        self.label_map = label_map or build_label_map(config["dataset"])
        # the model first: a mistake in its arguments is reported before datasets are scanned
        # (neither touches the other's RNG, so the order changes no result)
        from pcseg.datasets.features import feature_width

        in_channels = train_set.in_channels if train_set is not None else feature_width(config["dataset"]["features"])
        self.model = model if model is not None else build_model(
            config["model"], self.label_map.num_classes, in_channels, self.label_map.name)
        self.train_set = train_set if train_set is not None else build_dataset(config, "train", self.label_map)
        if val_set is None and config["dataset"]["val_split"] is not None:
            val_set = build_dataset(config, "val", self.label_map)
        self.val_set = val_set
        for dataset in (self.train_set, self.val_set):  # before any work: nothing written yet
            if hasattr(dataset, "check_features"):
                dataset.check_features()
        if getattr(self.model, "num_classes", self.label_map.num_classes) != self.label_map.num_classes:
            raise ConfigError(f"model has {self.model.num_classes} classes but label map "
                              f"{self.label_map.name} has {self.label_map.num_classes}")
        if tcfg["init_from"] and model is None:
            self._init_weights(tcfg["init_from"])
        self.model.to(self.device)
        wrapped = RaggedForward(self.model)
        if self.world > 1:
            if tcfg["sync_bn"]:
                wrapped = torch.nn.SyncBatchNorm.convert_sync_batchnorm(wrapped)
            ids = [self.device.index] if self.device.type == "cuda" else None
            wrapped = torch.nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)
        self.forward = wrapped

        self.steps_per_epoch = self._rank_batches(self.train_set)
        if self.steps_per_epoch < 1:
            raise ConfigError(f"train.batch_size={tcfg['batch_size']} x {self.world} process(es) exceeds the "
                              f"{len(self.train_set)} training scans: no full batch")
        self.optimizer = build_optimizer(tcfg, self.model.parameters())
        self.scheduler = build_scheduler(tcfg, self.optimizer, tcfg["epochs"] * self.steps_per_epoch)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        ignore = list(self.label_map.ignore_index)
        self.ignore = ignore
        self.losses = build_losses(tcfg, self.label_map.num_classes, ignore, self.train_set, self.device)
        self.panoptic = is_panoptic(self.model) and tcfg["offset_weight"] > 0
        if not self.losses and not self.panoptic:
            raise ConfigError("train.loss: every loss has weight 0 (and the model has no instance head to train)")
        self.out_dir = Path(tcfg["out_dir"])
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        self.best_miou = -1.0
        self.last_metrics: dict = {}
        self._tb = None

    # ------------------------------------------------------------------ set-up helpers
    def _init_weights(self, path) -> None:
        """Start from the model weights of an earlier stage's checkpoint (``train.init_from``)."""
        payload = load_checkpoint(path, map_location="cpu")
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            raise ConfigError(f"train.init_from {path}: its weights do not fit this config's model "
                              f"({str(exc).splitlines()[0]})") from None

    def _rank_batches(self, dataset) -> int:
        per_rank = math.ceil(len(dataset) / self.world)
        return per_rank // self.tcfg["batch_size"]

    def _amp_dtype(self):
        amp = self.tcfg["amp"]
        if amp == "auto":
            amp = "bf16" if self.device.type == "cuda" else "off"
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]

    def _loader(self, dataset, batch_size, shuffle, epoch, start=0, training=True):
        from pcseg.datasets import EpochSampler, collate_ragged

        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=self.tcfg["seed"], rank=self.rank,
                               world_size=self.world, pad=training)
        sampler.set_epoch(epoch, start)
        workers = int(self.config["dataset"]["num_workers"])
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_ragged,
                          drop_last=training, num_workers=workers, worker_init_fn=_init_worker,
                          generator=torch.Generator().manual_seed(self.tcfg["seed"] + epoch),
                          persistent_workers=False)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "config": self.config,
            "label_map": label_map_spec(self.label_map),
            "class_names": list(self.label_map.class_names),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "rng": rng_states(),
            "epoch": self.epoch,
            "step": self.step,
            "step_in_epoch": self.step_in_epoch,
            "best_miou": self.best_miou,
            "metrics": self.last_metrics,
            "world_size": self.world,
        }

    def save(self, name: str) -> Path | None:
        """Write ``<out_dir>/<name>.pt`` on rank 0 (atomic); other ranks wait."""
        path = None
        if self.rank == 0:
            path = save_checkpoint(self.out_dir / f"{name}.pt", self.state())
        dist.barrier()
        return path

    def load_state(self, path) -> None:
        payload = load_checkpoint(path, map_location=self.device)
        if payload["config"]["model"] != self.config["model"]:
            raise CheckpointError(f"checkpoint {path}: its model section {payload['config']['model']} differs from "
                                  f"the config's {self.config['model']}; cannot resume")
        missing = [key for key in RESUME_KEYS if key not in payload]
        if missing:
            raise CheckpointError(f"checkpoint {path}: no training state ({', '.join(missing)} missing; a checkpoint "
                                  "made by export_for_inference segments but cannot be resumed)")
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {path}: weights do not fit the model ({str(exc).splitlines()[0]})") from None
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload["scheduler"] is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        set_rng_states(payload["rng"])
        self.epoch, self.step = payload["epoch"], payload["step"]
        self.step_in_epoch = payload["step_in_epoch"]
        self.best_miou = payload["best_miou"]
        self.last_metrics = payload.get("metrics") or {}

    # ------------------------------------------------------------------ logging
    def _csv(self, row: dict) -> None:
        if self.rank != 0:
            return
        path = self.out_dir / "log.csv"
        fields = ["epoch", "step", "train_loss", "lr", "scans_per_s", "val_miou", "val_accuracy", "val_pq", "time"]
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _scalar(self, tag, value, step) -> None:
        if self.rank != 0 or not self.tcfg["tensorboard"]:
            return
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.tcfg = {**self.tcfg, "tensorboard": False}
                self.log("tensorboard is not installed: logging to log.csv only")
                return
            self._tb = SummaryWriter(str(self.out_dir / "tensorboard"))
        self._tb.add_scalar(tag, value, step)

    # ------------------------------------------------------------------ training
    def train_step(self, batch) -> float:
        """One optimizer step on a ragged batch; returns the (global-batch) loss value."""
        self.threads.apply()
        xyz = batch["xyz"].to(self.device)
        feats = batch["feats"].to(self.device)
        offsets = batch["offsets"].to(self.device)
        targets = masked_targets(batch["labels"].to(self.device), self.ignore, self.label_map.num_classes)
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            out = self.forward(xyz, feats, offsets, self.panoptic)
        logits = (out[0] if self.panoptic else out).float()
        terms = [(w, *term(logits, targets, offsets)) for w, term in self.losses]
        if self.panoptic:  # instance centres from the (augmented) points of each scan's ground-truth instances
            if "instance" not in batch:
                raise ConfigError("a panoptic model is trained but the dataset gives no instance ids")
            terms.append((self.tcfg["offset_weight"], *offset_l1_sum(
                out[1], xyz, targets, batch["instance"].to(self.device), offsets, self.model.things)))
        # normalise by the global batch: DDP averages gradients over processes, so multiply by world
        norms = dist.all_reduce_sum(torch.stack([torch.as_tensor(n).float().to(self.device) for _, _, n in terms]))
        loss = sum(w * s / n.clamp_min(1e-12) for (w, s, _), n in zip(terms, norms)) * self.world
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.tcfg["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        value = dist.all_reduce_sum(loss.detach().clone()) / self.world
        return float(value)

    def fit(self, resume: bool = False, stop=None) -> dict:
        """Train for ``train.epochs`` epochs (or until ``train.max_steps``); returns last metrics.

        ``stop``: a :class:`pcseg.engine.interrupt.GracefulStop`; once it is requested (SIGINT or
        SIGTERM) training writes ``last.pt`` at the next step boundary and raises
        :class:`pcseg.engine.interrupt.TrainingInterrupted`.
        """
        tcfg = self.tcfg
        self._stop = stop
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.out_dir.glob(".*.tmp.pt"):  # left by a process killed while saving
                stale.unlink(missing_ok=True)
        if resume:
            last = self.out_dir / "last.pt"
            if not last.is_file():
                raise CheckpointError(f"--resume: no checkpoint at {last} (train.out_dir)")
            self.load_state(last)
            self.log(f"resumed from {last}: epoch {self.epoch}, step {self.step}")
        elif (self.out_dir / "last.pt").exists():
            raise CheckpointError(f"{self.out_dir / 'last.pt'} exists: pass --resume to continue it, or choose "
                                  f"another train.out_dir (nothing was overwritten)")
        if self.rank == 0:
            from pcseg.engine.config import dump_config

            _write_text_atomic(self.out_dir / "config.yaml", dump_config(self.config))
        batch_size = tcfg["batch_size"]
        max_steps = tcfg["max_steps"]
        try:
            while self.epoch < tcfg["epochs"]:
                if max_steps is not None and self.step >= max_steps:
                    break
                self._stop_if_requested()
                stopped = self._train_epoch(batch_size, max_steps)
                if stopped:
                    self.save("last")
                    self.log(f"stopped at step {self.step} (train.max_steps); wrote {self.out_dir / 'last.pt'}")
                    break
        finally:
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        return self.last_metrics

    def _train_epoch(self, batch_size, max_steps) -> bool:
        """Run the rest of the current epoch. Returns True when stopped mid-epoch by max_steps."""
        from tqdm import tqdm

        epoch = self.epoch
        loader = self._loader(self.train_set, batch_size, True, epoch, start=self.step_in_epoch * batch_size)
        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{self.tcfg['epochs']}",
                   disable=self.rank != 0 or not self.tcfg["progress"], leave=False, dynamic_ncols=True)
        losses, started, scans = [], time.perf_counter(), 0
        for batch in bar:
            loss = self.train_step(batch)
            self.step += 1
            self.step_in_epoch += 1
            losses.append(loss)
            scans += len(batch["offsets"]) * self.world
            rate = scans / max(time.perf_counter() - started, 1e-9)
            lr = self.optimizer.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", scans_s=f"{rate:.2f}")
            self._scalar("train/loss", loss, self.step)
            self._scalar("train/lr", lr, self.step)
            every = self.tcfg["checkpoint_every_steps"]
            if every and self.step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
                self.save("last")
            if max_steps is not None and self.step >= max_steps and self.step_in_epoch < self.steps_per_epoch:
                bar.close()
                return True
            if self.step_in_epoch < self.steps_per_epoch:  # at an epoch's end, fit checks after its save
                self._stop_if_requested(bar)
        bar.close()
        elapsed = time.perf_counter() - started
        row = {"epoch": epoch + 1, "step": self.step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "lr": self.optimizer.param_groups[0]["lr"], "scans_per_s": scans / max(elapsed, 1e-9),
               "time": round(elapsed, 2)}
        self.epoch += 1
        self.step_in_epoch = 0
        is_best = False
        if self.val_set is not None and (self.epoch % self.tcfg["eval_every"] == 0 or self.epoch == self.tcfg["epochs"]):
            cm = self.evaluate()
            miou = float(cm.miou())
            self.last_metrics = {"epoch": self.epoch, "step": self.step, "miou": miou,
                                 "accuracy": float(cm.accuracy()), "iou": [float(v) for v in cm.iou()]}
            if self.panoptic and self.world == 1:  # PQ needs whole scans' segments: one process only
                from pcseg.engine.panoptic import evaluate_panoptic

                pq = evaluate_panoptic(self.model, self.val_set, self.label_map, self.device, amp_dtype=self.amp_dtype)
                summary = pq.summary()
                self.last_metrics.update({k: summary[k] for k in ("pq", "sq", "rq", "pq_things", "pq_stuff")})
                row.update(val_pq=summary["pq"])
                self._scalar("val/pq", summary["pq"], self.step)
            row.update(val_miou=miou, val_accuracy=float(cm.accuracy()))
            self._scalar("val/miou", miou, self.step)
            is_best = miou > self.best_miou
            if is_best:
                self.best_miou = miou
        self.log(f"epoch {self.epoch}: loss {row['train_loss']:.4f}, {row['scans_per_s']:.2f} scans/s"
                 + (f", val mIoU {row['val_miou'] * 100:.1f}%" if "val_miou" in row else "")
                 + (f", val PQ {row['val_pq'] * 100:.1f}%" if "val_pq" in row else ""))
        self._csv(row)
        self.save("last")
        if is_best:
            self.save("best")
        return False

    def _stop_if_requested(self, bar=None) -> None:
        """Save ``last`` and raise TrainingInterrupted when a stop was requested (on any rank)."""
        stop = getattr(self, "_stop", None)
        if stop is None:
            return
        flag = stop.requested
        if self.world > 1:  # every rank must stop at the same step, or the save's barrier hangs
            flag = bool(dist.all_reduce_sum(torch.tensor(float(flag), device=self.device)) > 0)
        if not flag:
            return
        if bar is not None:
            bar.close()
        self.save("last")
        raise TrainingInterrupted(stop.signum or signal.SIGTERM, self.out_dir / "last.pt", self.epoch, self.step)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, dataset=None):
        """Confusion matrix of the model on ``dataset`` (default: the validation split),
        summed over processes."""
        return evaluate_model(self.model, dataset if dataset is not None else self.val_set, self.label_map,
                              self.device, self.tcfg["val_batch_size"], rank=self.rank, world=self.world,
                              amp_dtype=self.amp_dtype, progress=self.tcfg["progress"] and self.rank == 0,
                              num_points=self.config["dataset"]["num_points"],
                              block_size=self.config["dataset"]["block_size"], threads=self.threads)


@torch.no_grad()
def evaluate_model(model, dataset, label_map, device, batch_size=1, rank=0, world=1, amp_dtype=None, progress=False,
                   num_points=None, block_size=None, threads=None):
    """Run ``model`` over ``dataset`` (no augmentation) and return a
    :class:`pcseg.metrics.ConfusionMatrix` all-reduced over processes. ``num_points`` /
    ``block_size``: the training sampling of a point model (see :mod:`pcseg.engine.inference`).
    ``threads``: CPU threads, a count or None/"auto" (re-chosen per batch), or a
    :class:`pcseg.threads.ThreadChooser`; torch's setting is restored afterwards."""
    from pcseg.engine.inference import predict_labels
    from tqdm import tqdm

    from pcseg.datasets import EpochSampler, collate_ragged
    from pcseg.metrics import ConfusionMatrix

    sampler = EpochSampler(len(dataset), shuffle=False, rank=rank, world_size=world, pad=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_ragged)
    cm = ConfusionMatrix(label_map.num_classes, ignore_index=label_map.ignore_index,
                         class_names=label_map.class_names)
    was_training = model.training
    model.eval()
    chooser = threads if isinstance(threads, ThreadChooser) else ThreadChooser(threads)
    before = torch.get_num_threads()
    for batch in tqdm(loader, desc="eval", disable=not progress, leave=False, dynamic_ncols=True):
        if device.type == "cpu":
            chooser.apply()
        pred = predict_labels(model, batch["xyz"].to(device), batch["feats"].to(device), batch["offsets"].to(device),
                              label_map.ignore_index, num_points, block_size, amp_dtype).cpu()
        labels = batch["labels"]
        keep = labels >= 0
        cm.update(pred[keep], labels[keep])
    model.train(was_training)
    torch.set_num_threads(before)
    if world > 1:
        cm.all_reduce()
    return cm


def _init_worker(worker_id: int) -> None:
    """DataLoader workers leave SIGINT/SIGTERM to the main process, then seed as usual."""
    from pcseg.datasets import seed_worker

    ignore_in_workers()
    seed_worker(worker_id)


def _write_text_atomic(path: Path, text: str) -> None:
    from pcseg.atomic import atomic_write_bytes

    atomic_write_bytes(path, text.encode())
