"""Trainer callbacks: metrics and status into the run directory, and progress with tokens/s.

In a terminal, progress is a Rich bar with steps, tokens/s, elapsed time and ETA; otherwise
a log line each time the Trainer logs the loss carries the same figures.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class RunMetricsCallback(TrainerCallback):
    """Write train and validation metrics to metrics.jsonl and progress to status.json.

    `tokens` is the Trainer's count of input tokens over all processes
    (`include_num_input_tokens_seen`), which checkpoints store, so it stays right when a run
    resumes with another process count or batch size.
    """

    def __init__(self, run: Any):
        self.run = run
        self.last_train_loss: Optional[float] = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.run.update(step=state.global_step, total_steps=state.max_steps,
                        total_epochs=args.num_train_epochs)

    def on_step_end(self, args, state, control, **kwargs):
        self.run.update(step=state.global_step, total_steps=state.max_steps, epoch=state.epoch)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        self.last_train_loss = float(logs["loss"])
        values = {"loss": self.last_train_loss, "lr": logs.get("learning_rate"),
                  "tokens": state.num_input_tokens_seen}
        if logs.get("grad_norm") is not None:
            values["grad_norm"] = float(logs["grad_norm"])
        self.run.log_metrics(step=state.global_step, split="train", epoch=state.epoch, **values)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not metrics or "eval_ppl" not in metrics:
            return
        self.run.log_metrics(step=state.global_step, split="val", epoch=state.epoch,
                             loss=metrics["eval_objective"], eval_objective=metrics["eval_objective"],
                             ce=metrics["eval_ce"], ppl=metrics["eval_ppl"],
                             tokens=metrics["eval_tokens"])
        best = self.run.status.get("best_metric")
        if best is None or metrics["eval_ppl"] < best:
            self.run.update(best_metric=metrics["eval_ppl"], best_metric_name="val_ppl")


class GlobalBatchCallback(TrainerCallback):
    """Record the global batch in every checkpoint, so that a resume can check it
    (`rlo_core.lm.checkpoints.check_global_batch`)."""

    def __init__(self, batch: Any):
        self.batch = batch

    def on_save(self, args, state, control, **kwargs):
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from rlo_core.lm.checkpoints import write_global_batch

        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            write_global_batch(folder, self.batch)


class ProgressCallback(TrainerCallback):
    """Progress of optimizer steps with tokens/s and ETA."""

    def __init__(self, tokens_per_step: int, *, terminal: Optional[bool] = None):
        self.tokens_per_step = tokens_per_step
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.progress = None
        self.task = None
        self.start_time = 0.0
        self.start_step = 0
        self.loss: Optional[float] = None

    def rate_and_eta(self, state) -> tuple[float, float]:
        elapsed = max(time.monotonic() - self.start_time, 1e-9)
        done = state.global_step - self.start_step
        tokens_per_s = done * self.tokens_per_step / elapsed
        eta = (state.max_steps - state.global_step) * elapsed / done if done else math.inf
        return tokens_per_s, eta

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = time.monotonic()
        self.start_step = state.global_step
        if not self.terminal:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        from rlo_core.console import stderr_console

        self.progress = Progress(
            TextColumn("[bold]finetune[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=stderr_console(), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("finetune", total=state.max_steps,
                                           completed=state.global_step, rate="- tok/s", loss="-")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            tokens_per_s, _ = self.rate_and_eta(state)
            self.progress.update(self.task, completed=state.global_step,
                                 rate=f"{tokens_per_s:,.0f} tok/s")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            # The Trainer logs the loss every `logging_steps` (= log_every) steps.
            self.loss = float(logs["loss"])
            if self.progress is not None:
                self.progress.update(self.task, loss=f"{self.loss:.4f}")
            else:
                tokens_per_s, eta = self.rate_and_eta(state)
                log.info("step %d/%d, loss %.4f, %.0f tokens/s, ETA %s", state.global_step,
                         state.max_steps, self.loss, tokens_per_s, format_duration(eta))
        if logs and "eval_ppl" in logs:
            message = (f"step {state.global_step}: validation perplexity {logs['eval_ppl']:.2f}, "
                       f"ce {logs['eval_ce']:.4f}, objective {logs['eval_objective']:.4f}")
            if self.progress is not None:
                self.progress.console.log(message)
            else:
                log.info(message)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
