"""Trainer callbacks: hooks that change what happens around the loop without forking it."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


class Callback:
    """Base class; the trainer calls each hook with itself as the first argument."""

    def on_train_start(self, trainer) -> None: ...

    def on_epoch_start(self, trainer, epoch: int) -> None: ...

    def on_step_end(self, trainer, metrics: dict[str, float]) -> None: ...

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None: ...

    def on_epoch_end(self, trainer, epoch: int) -> None: ...

    def on_train_end(self, trainer) -> None: ...


class ProgressCallback(Callback):
    """Show a Rich progress bar (loss, accuracy, images/s, ETA) in a terminal. When the output
    is a file or a pipe, log a plain line every `log_every` steps instead."""

    def __init__(self, log_every: int = 10, force_plain: bool | None = None):
        self.log_every = log_every
        self.plain = (not sys.stderr.isatty()) if force_plain is None else force_plain
        self._progress: Any = None
        self._task = None
        self._last_log = 0.0

    def on_train_start(self, trainer) -> None:
        if self.plain:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        from rlo_core.console import stderr_console

        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.3f}"),
            TextColumn("{task.fields[rate]:.0f} img/s"), TimeElapsedColumn(),
            TimeRemainingColumn(), console=stderr_console(), transient=False)
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=trainer.total_steps, completed=trainer.step,
            epoch=trainer.epoch + 1, loss=float("nan"), acc=float("nan"), rate=0.0)

    def on_step_end(self, trainer, metrics: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=trainer.step, epoch=trainer.epoch + 1,
                                  loss=metrics["loss"], acc=metrics["acc"],
                                  rate=metrics.get("images_per_s", 0.0))
        elif trainer.step % self.log_every == 0 or trainer.step == trainer.total_steps:
            log.info("epoch %d step %d/%d loss %.4f acc %.3f %.0f img/s", trainer.epoch + 1,
                     trainer.step, trainer.total_steps, metrics["loss"], metrics["acc"],
                     metrics.get("images_per_s", 0.0))

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        message = (f"epoch {trainer.epoch + 1}/{trainer.epochs}: test acc {metrics['acc']:.4f}, "
                   f"test ce {metrics['ce']:.4f}, test loss {metrics['loss']:.4f}")
        if self._progress is not None:
            self._progress.console.print(message, highlight=False)
        else:
            log.info(message)

    def on_train_end(self, trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class RunCallback(Callback):
    """Write metrics and status to the run directory."""

    def __init__(self, run):
        self.run = run
        self._window: list[dict[str, float]] = []
        self._started = time.time()

    def on_train_start(self, trainer) -> None:
        self.run.update(total_steps=trainer.total_steps, total_epochs=trainer.epochs,
                        step=trainer.step, epoch=trainer.epoch)

    def on_step_end(self, trainer, metrics: dict[str, float]) -> None:
        self._window.append(metrics)
        self.run.update(step=trainer.step, epoch=trainer.epoch)
        if trainer.step % trainer.log_every == 0 or trainer.step == trainer.total_steps:
            averaged = {key: sum(m[key] for m in self._window) / len(self._window)
                        for key in ("loss", "ce", "acc")}
            self.run.log_metrics(step=trainer.step, split="train",
                                 epoch=trainer.epoch + trainer.epoch_fraction, **averaged,
                                 lr=metrics["lr"], images_per_s=metrics.get("images_per_s"))
            self._window.clear()

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        self.run.log_metrics(step=trainer.step, split="test", epoch=trainer.epoch + 1, **metrics)
        self.run.update(best_metric=trainer.best_acc, best_metric_name="test acc")
