"""Mirror the trainer's metrics into TensorBoard event files (`--tensorboard`)."""

from __future__ import annotations

from pathlib import Path

from rlo_core.runs.tensorboard import TensorBoardWriter
from rlo_core.train.callbacks import Callback


class TensorBoardCallback(Callback):
    def __init__(self, log_dir: Path):
        self.writer = TensorBoardWriter(log_dir, enabled=True)

    def on_step_end(self, trainer, metrics: dict[str, float]) -> None:
        if trainer.step % trainer.log_every == 0:
            self.writer.log(trainer.step, "train", metrics)

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        self.writer.log(trainer.step, "test", metrics)

    def on_train_end(self, trainer) -> None:
        self.writer.close()
