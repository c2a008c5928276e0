"""The classification training loop: optimizer steps, evaluation, checkpoints, resume.

Behaviour around the loop (progress display, metric files, TensorBoard) comes from
`Callback`s; the loss is any module mapping (logits, targets) to a scalar.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from rlo_core.errors import CheckpointError, NonFiniteLossError, TrainingInterrupted
from rlo_core.train import checkpoint as ckpt
from rlo_core.train.callbacks import Callback
from rlo_core.train.interrupt import GracefulInterrupt
from rlo_core.train.sampling import ResumableSampler, derive_seed, seed_torch

log = logging.getLogger(__name__)


@dataclass
class TrainerState:
    epoch: int = 0  # epochs completed before the current one
    batches_done: int = 0  # micro-batches of the current epoch already trained
    step: int = 0  # optimizer steps over the whole run
    best_acc: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)  # test metrics per epoch


class Trainer:
    def __init__(self, *, model: nn.Module, loss_fn: nn.Module, optimizer, scheduler,
                 train_loader, sampler: ResumableSampler, test_loader, device: torch.device,
                 epochs: int, grad_accum: int = 1, amp_dtype: Optional[torch.dtype] = None,
                 max_steps: Optional[int] = None, seed: int = 0, log_every: int = 10,
                 checkpoint_dir: Optional[Path] = None, callbacks: list[Callback] | None = None,
                 resume_hint: str = "", rank: int = 0, world_size: int = 1):
        self.model, self.loss_fn = model, loss_fn
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_loader, self.sampler, self.test_loader = train_loader, sampler, test_loader
        self.device, self.epochs, self.grad_accum = device, epochs, grad_accum
        self.amp_dtype = amp_dtype
        self.scaler = (torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None)
        self.max_steps, self.seed, self.log_every = max_steps, seed, log_every
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = callbacks or []
        self.resume_hint = resume_hint
        self.rank, self.world_size = rank, world_size
        self.state = TrainerState()

    # -- progress arithmetic used by callbacks ---------------------------------------------

    @property
    def steps_per_epoch(self) -> int:
        micro = math.ceil(self.sampler.per_rank / self.train_loader.batch_size)
        return math.ceil(micro / self.grad_accum)

    @property
    def total_steps(self) -> int:
        total = self.steps_per_epoch * self.epochs
        return min(total, self.max_steps) if self.max_steps else total

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def best_acc(self) -> float:
        return self.state.best_acc

    @property
    def epoch_fraction(self) -> float:
        micro = math.ceil(self.sampler.per_rank / self.train_loader.batch_size)
        return self.state.batches_done / max(micro, 1)

    def _emit(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # -- checkpoints -----------------------------------------------------------------------

    def save(self, name: str) -> None:
        if self.checkpoint_dir is None or self.rank != 0:
            return
        ckpt.save_checkpoint(
            self.checkpoint_dir / f"{name}.pt", model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler, epoch=self.state.epoch,
            batches_done=self.state.batches_done, step=self.state.step,
            best_acc=self.state.best_acc,
            extra={"history": self.state.history, "global_micro_batch": self._global_micro_batch})

    @property
    def _global_micro_batch(self) -> int:
        """Images one micro-batch takes from the epoch's order, summed over all ranks."""
        return self.train_loader.batch_size * self.world_size

    def load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path, map_location=self.device)
        ckpt.unwrap_model(self.model).load_state_dict(ckpt.strip_prefixes(state["model"]))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.state = TrainerState(epoch=state["epoch"],
                                  batches_done=self._batches_done_here(state, path),
                                  step=state["step"], best_acc=state["best_acc"],
                                  history=list(state["extra"].get("history", [])))

    def _batches_done_here(self, state: dict[str, Any], path: Path) -> int:
        """Convert a mid-epoch position saved with another number of processes into
        micro-batches of this run. Rank r reads positions r, r+W, r+2W, ... of the epoch's
        order, so n micro-batches on each of W ranks cover exactly the first n*b*W images."""
        batches_done = state["batches_done"]
        saved = state["extra"].get("global_micro_batch", self._global_micro_batch)
        if batches_done == 0 or saved == self._global_micro_batch:
            return batches_done
        images_done = batches_done * saved
        if images_done % self._global_micro_batch:
            raise CheckpointError(
                f"Checkpoint {path} stopped {images_done} images into epoch "
                f"{state['epoch'] + 1}, which is not a whole number of this run's micro-batches "
                f"of {self._global_micro_batch} images (all processes together). Resume with "
                "the number of processes and --grad-accum of the run that saved it, or from a "
                "checkpoint saved at the end of an epoch.")
        return images_done // self._global_micro_batch

    # -- the loop --------------------------------------------------------------------------

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _train_step(self, batches, interrupt: Optional[GracefulInterrupt] = None
                    ) -> tuple[dict[str, float], bool]:
        """Run one optimizer step over `grad_accum` micro-batches. Returns the step's metrics
        over all ranks and whether any rank requested a stop, so every rank stops together."""
        self.model.train()
        totals = {"loss": 0.0, "ce": 0.0, "correct": 0.0, "count": 0.0, "non_finite": 0.0}
        started = time.perf_counter()
        for index, (images, labels) in enumerate(batches):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            # Dropout and other in-model randomness depend only on (seed, epoch, batch).
            seed_torch(derive_seed(self.seed, self.state.epoch, self.state.batches_done + index,
                                   self.rank, 2), self.device)
            sync = contextlib.nullcontext()
            if self.world_size > 1 and index < len(batches) - 1:
                sync = self.model.no_sync()
            with sync:
                with self._autocast():
                    logits = self.model(images)
                    loss = self.loss_fn(logits, labels)
                scaled = loss / len(batches)
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            value = float(loss.detach())
            if not math.isfinite(value):
                # Checked after the reduction below, so that all ranks raise at the same step
                # instead of one rank leaving the others waiting in the next collective.
                totals["non_finite"] += 1.0
                value = 0.0
            with torch.no_grad():
                batch = labels.numel()
                totals["loss"] += value * batch
                totals["ce"] += float(nn.functional.cross_entropy(logits.float(), labels)) * batch
                totals["correct"] += float((logits.argmax(1) == labels).sum())
                totals["count"] += batch
        totals["stop"] = float(interrupt is not None and interrupt.requested)
        if self.world_size > 1:
            totals = self._sum_over_ranks(totals)
        if totals["non_finite"]:
            raise NonFiniteLossError(
                f"The loss became non-finite (NaN or infinite) at step {self.state.step + 1} "
                f"(epoch {self.state.epoch + 1}). The last good checkpoint is kept in "
                f"{self.checkpoint_dir}. Lower --lr, try --no-amp, or check the data. "
                f"{self.resume_hint}")
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - started
        count = max(totals["count"], 1)
        metrics = {"loss": totals["loss"] / count, "ce": totals["ce"] / count,
                   "acc": totals["correct"] / count, "lr": self.optimizer.param_groups[0]["lr"],
                   "images_per_s": totals["count"] / max(elapsed, 1e-9)}
        return metrics, totals["stop"] > 0

    def _sum_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """All-reduce (sum) a dict of floats; one small collective per optimizer step."""
        tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return dict(zip(values.keys(), tensor.tolist()))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Compute test metrics over the whole test set. In a distributed job each rank scores
        its own shard with rank 0's weights and buffers, and the sums are all-reduced."""
        # The bare module: a DDP forward may run collectives, and ranks hold shards of
        # different sizes when the test set does not divide evenly.
        model = ckpt.unwrap_model(self.model)
        if self.world_size > 1:
            # Without --sync-bn each rank's last batch moved its own BatchNorm statistics;
            # take rank 0's, which are the ones the checkpoint stores.
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)
        model.eval()
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)
        for images, labels in self.test_loader:
            images, labels = images.to(self.device), labels.to(self.device)
            with self._autocast():
                logits = model(images)
            logits = logits.float()
            batch = labels.numel()
            sums[0] += float(self.loss_fn(logits, labels)) * batch
            sums[1] += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            sums[2] += float((logits.argmax(1) == labels).sum())
            sums[3] += batch
        if self.world_size > 1:
            torch.distributed.all_reduce(sums)
        loss, ce, correct, count = sums.tolist()
        count = max(count, 1)
        return {"loss": loss / count, "ce": ce / count, "acc": correct / count}

    def fit(self) -> TrainerState:
        self._emit("on_train_start")
        try:
            with GracefulInterrupt() as interrupt:
                while self.state.epoch < self.epochs and not self._reached_max_steps():
                    self._run_epoch(interrupt)
        finally:
            self._emit("on_train_end")
        return self.state

    def _reached_max_steps(self) -> bool:
        return self.max_steps is not None and self.state.step >= self.max_steps

    def _run_epoch(self, interrupt: GracefulInterrupt) -> None:
        epoch = self.state.epoch
        micro_size = self.train_loader.batch_size
        self.sampler.set_epoch(epoch, start=self.state.batches_done * micro_size)
        self._emit("on_epoch_start", epoch)
        pending: list = []
        for batch in self.train_loader:
            pending.append(batch)
            if len(pending) < self.grad_accum:
                continue
            self._finish_step(pending, interrupt)
            pending = []
            if self._reached_max_steps():
                break
        else:
            if pending:
                self._finish_step(pending, interrupt)
        if self._reached_max_steps() and self.state.batches_done < self._micro_batches_total():
            # A --max-steps run stops mid-epoch: evaluate so it reports real test metrics,
            # and save a checkpoint it can resume from.
            metrics = self.evaluate()
            self.state.history.append({"epoch": epoch + self.epoch_fraction, **metrics})
            self.state.best_acc = max(self.state.best_acc, metrics["acc"])
            self._emit("on_eval_end", metrics)
            self.save("last")
            return
        self._end_epoch()

    def _micro_batches_total(self) -> int:
        return math.ceil(self.sampler.per_rank / self.train_loader.batch_size)

    def _finish_step(self, batches, interrupt: GracefulInterrupt) -> None:
        metrics, stop = self._train_step(batches, interrupt)
        self.state.batches_done += len(batches)
        self.state.step += 1
        self._emit("on_step_end", metrics)
        # A single process also stops for a signal that arrived during the callbacks. Ranks
        # of a distributed job stop only on the flag they agreed on in the step's reduction.
        if stop or (self.world_size == 1 and interrupt.requested):
            self.save("last")
            where = f" Checkpoint saved in {self.checkpoint_dir}." if self.checkpoint_dir else ""
            raise TrainingInterrupted(f"Interrupted at step {self.state.step}.{where} "
                                      f"{self.resume_hint}")

    def _end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()
        metrics = self.evaluate()
        self.state.history.append({"epoch": self.state.epoch + 1, **metrics})
        improved = metrics["acc"] > self.state.best_acc
        self.state.best_acc = max(self.state.best_acc, metrics["acc"])
        self._emit("on_eval_end", metrics)
        self.state.epoch += 1
        self.state.batches_done = 0
        self.save("last")
        if improved:
            self.save("best")
        self._emit("on_epoch_end", self.state.epoch)
