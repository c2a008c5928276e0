"""Convergence reproduction: one net, data set and schedule, trained with each loss over seeds.

Every (loss, seed) pair is a full `rlo train` run, kept under `<run>/runs/`. The summary gives
per loss the mean and spread of the final test accuracy and of the first epoch whose test
accuracy reaches `target_acc`. The plot shows test accuracy and test cross-entropy against
epoch, with the mean over seeds as a line and their range as a band.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from rlo_core.errors import ConfigError
from rlo_core.reproduce import report
from rlo_core.train.config import TrainConfig

log = logging.getLogger(__name__)

LOSS_COLORS = {"ce": "tab:blue", "focal": "tab:orange", "rlo": "tab:green",
               "rlo-convex": "tab:red"}


@dataclass
class ConvergenceConfig:
    """Options of `rlo reproduce convergence`. Training options mean what they do in `rlo train`."""

    dataset: str = "digits"
    net: str = "res18"
    losses: list[str] = field(default_factory=lambda: ["ce", "focal", "rlo", "rlo-convex"])
    seeds: int = 5
    first_seed: int = 0
    epochs: int = 20
    batch_size: int = 128
    lr: Optional[float] = None  # None: the net family's default
    optimizer: str = "adam"
    image_size: Optional[int] = None  # None: the data set's native size
    patch: int = 4  # ViT patch size in pixels
    dim_head: int = 512  # transformer embedding width
    aug: bool = True
    k: float = 3.0
    m: float = 3.0
    focal_alpha: float = 0.25
    focal_gamma: float = 3.0
    target_acc: float = 0.9
    data_dir: str = "./data"
    device: str = "auto"
    workers: Optional[int] = None
    max_steps: Optional[int] = None
    keep_checkpoints: bool = False
    output: Optional[str] = None  # also copy the tables and PNG here (for example docs/reproduce)
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        if self.seeds <= 0:
            raise ConfigError(f"--seeds must be a positive integer, got {self.seeds}.")
        if not self.losses:
            raise ConfigError("--losses is empty: give at least one of ce, focal, rlo, rlo-convex.")
        if len(set(self.losses)) != len(self.losses):
            raise ConfigError(f"--losses lists a loss twice: {', '.join(self.losses)}.")
        if not 0.0 < self.target_acc <= 1.0:
            raise ConfigError(f"--target-acc is a fraction between 0 and 1, got {self.target_acc}.")
        for loss in self.losses:
            self.train_config(loss, self.first_seed, runs_dir=".").validate()

    def train_config(self, loss: str, seed: int, *, runs_dir: str) -> TrainConfig:
        """Return the `rlo train` configuration of one (loss, seed) run."""
        return replace(
            TrainConfig(), dataset=self.dataset, net=self.net, loss=loss, k=self.k, m=self.m,
            focal_alpha=self.focal_alpha, focal_gamma=self.focal_gamma, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
            image_size=self.image_size, patch=self.patch, dim_head=self.dim_head, aug=self.aug,
            seed=seed, data_dir=self.data_dir,
            device=self.device, workers=self.workers, max_steps=self.max_steps,
            name=f"{loss}-seed{seed}", runs_dir=runs_dir)

    def default_name(self) -> str:
        return f"{self.dataset.split(':')[0]}-{self.net}-{self.seeds}seeds".lower()


@dataclass
class LossSummary:
    loss: str
    final_acc: report.Spread
    best_acc: report.Spread
    final_ce: report.Spread
    epochs_to_target: report.Spread  # over the seeds that reached the target
    reached_target: int
    histories: list[list[dict[str, float]]]  # per seed, the test metrics of every epoch

    def as_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "final_acc": self.final_acc.as_dict(),
                "best_acc": self.best_acc.as_dict(), "final_ce": self.final_ce.as_dict(),
                "epochs_to_target": self.epochs_to_target.as_dict(),
                "reached_target": self.reached_target, "histories": self.histories}


@dataclass
class ConvergenceResult:
    run_dir: Path
    summaries: list[LossSummary]
    markdown: str
    plot: Path
    copied: list[Path] = field(default_factory=list)


def epochs_to_target(history: list[dict[str, float]], target: float) -> Optional[int]:
    """Return the first epoch (1-based) whose test accuracy is at least `target`, or None."""
    for record in history:
        if record["acc"] >= target:
            return int(record["epoch"])
    return None


def summarize(loss: str, histories: list[list[dict[str, float]]], target: float) -> LossSummary:
    finals = [history[-1] if history else {} for history in histories]
    reached = [epochs_to_target(history, target) for history in histories]
    return LossSummary(
        loss=loss,
        final_acc=report.spread(record.get("acc") for record in finals),
        best_acc=report.spread(max((r["acc"] for r in h), default=None) for h in histories),
        final_ce=report.spread(record.get("ce") for record in finals),
        epochs_to_target=report.spread(reached),
        reached_target=sum(epoch is not None for epoch in reached),
        histories=histories)


def markdown_summary(config: ConvergenceConfig, summaries: list[LossSummary]) -> str:
    target = f"{config.target_acc:.0%}"
    columns = ["loss", "final test acc (mean ± std)", "min", "max", "best test acc",
               "final test CE", f"epochs to {target} (mean ± std)", "seeds reaching target"]
    rows = []
    for summary in summaries:
        rows.append([
            summary.loss, summary.final_acc.format(),
            report.format_number(summary.final_acc.min, 4),
            report.format_number(summary.final_acc.max, 4), summary.best_acc.format(),
            summary.final_ce.format(), summary.epochs_to_target.format(1),
            f"{summary.reached_target}/{len(summary.histories)}"])
    seeds = f"{config.first_seed}..{config.first_seed + config.seeds - 1}"
    settings = (f"{config.net} on {config.dataset}, {config.epochs} epochs, batch "
                f"{config.batch_size}, optimizer {config.optimizer}, lr "
                f"{config.lr if config.lr is not None else 'net default'} with cosine decay, "
                f"image size {config.image_size or 'native'}, augmentation "
                f"{'on' if config.aug else 'off'}, seeds {seeds}, rlo k={config.k:g} "
                f"m={config.m:g}, rlo-convex k={config.k:g}, focal alpha={config.focal_alpha:g} "
                f"gamma={config.focal_gamma:g}.")
    return (f"## Convergence: {config.dataset}, {config.net}\n\n{settings}\n\n"
            "Standard deviations are sample standard deviations over seeds. Epochs to target "
            "count only the seeds that reached the target.\n\n"
            + report.markdown_table(columns, rows))


def plot_curves(config: ConvergenceConfig, summaries: list[LossSummary], path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    figure, (acc_axes, ce_axes) = report.new_figure(2)
    for summary in summaries:
        color = LOSS_COLORS.get(summary.loss, None) or f"C{summaries.index(summary)}"
        xs = list(range(1, config.epochs + 1))
        report.draw_band(acc_axes, xs, [[r["acc"] for r in h] for h in summary.histories],
                         label=summary.loss, color=color)
        report.draw_band(ce_axes, xs, [[r["ce"] for r in h] for h in summary.histories],
                         label=summary.loss, color=color)
    acc_axes.axhline(config.target_acc, color="grey", linestyle=":", linewidth=1)
    acc_axes.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy")
    ce_axes.set(xlabel="epoch", ylabel="test cross-entropy", title="Test cross-entropy",
                yscale="log")
    for axes in (acc_axes, ce_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"{config.net} on {config.dataset}: mean over {config.seeds} seeds, "
                    "band from min to max")
    return report.save_figure(figure, path)


def run_convergence(config: ConvergenceConfig) -> ConvergenceResult:
    """Train every (loss, seed) pair and write convergence.json, convergence.md and .png."""
    from rlo_core.config.schema import to_dict
    from rlo_core.runs import Run
    from rlo_core.train.pipeline import run_train

    config.validate()
    run = Run.create("reproduce", f"convergence-{config.name or config.default_name()}",
                     {"reproduction": "convergence", **to_dict(config)},
                     runs_dir=Path(config.runs_dir) if config.runs_dir else None)
    total = len(config.losses) * config.seeds
    with run:
        run.update(step=0, total_steps=total)
        histories: dict[str, list[list[dict[str, float]]]] = {loss: [] for loss in config.losses}
        done = 0
        for seed in range(config.first_seed, config.first_seed + config.seeds):
            # Seeds outer, losses inner: an interrupted reproduction still compares losses.
            for loss in config.losses:
                log.info("Convergence run %d/%d: loss %s, seed %d", done + 1, total, loss, seed)
                result = run_train(config.train_config(loss, seed, runs_dir=str(run.dir / "runs")))
                histories[loss].append(result.history)
                if not config.keep_checkpoints and result.run_dir is not None:
                    shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)
                done += 1
                last = result.history[-1] if result.history else {}
                run.log_metrics(step=done, split="test", epoch=result.epochs_done, loss_name=loss,
                                seed=seed, acc=last.get("acc"), ce=last.get("ce"))
                run.update(step=done)
        summaries = [summarize(loss, histories[loss], config.target_acc)
                     for loss in config.losses]
        markdown = markdown_summary(config, summaries)
        plot = plot_curves(config, summaries, run.dir / "convergence.png")
        document = {"reproduction": "convergence", "config": to_dict(config),
                    "summaries": [summary.as_dict() for summary in summaries]}
        json_path, markdown_path = report.write_outputs(run.dir, "convergence", document, markdown)
        copied = report.copy_outputs([json_path, markdown_path, plot], config.output)
    return ConvergenceResult(run_dir=run.dir, summaries=summaries, markdown=markdown, plot=plot,
                             copied=copied)
