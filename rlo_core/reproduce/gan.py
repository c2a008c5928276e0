"""GAN reproduction: `rlo gan` with each loss on the same data and seeds, FID against kimg.

Every (loss, seed) pair is a full `rlo gan` run under `<run>/runs/`. FID is read back from each
run's metrics.jsonl (the `eval` records), so the table shows exactly what the runs logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from rlo_core.errors import ConfigError
from rlo_core.reproduce import report

log = logging.getLogger(__name__)

LOSS_COLORS = {"ce": "tab:blue", "rlo": "tab:green"}
GAN_LOSSES = ("ce", "rlo")


@dataclass
class GanReproductionConfig:
    """Options of `rlo reproduce gan`; the others of `rlo gan` keep their defaults."""

    dataset: str = "digits"
    losses: list[str] = field(default_factory=lambda: ["ce", "rlo"])
    seeds: int = 1
    first_seed: int = 0
    k: float = 2.0
    kimg: float = 500.0
    tick: float = 4.0
    snap: int = 10
    batch: int = 32
    resolution: int = 32
    arch: str = "dcgan"
    z_dim: int = 128
    w_dim: int = 128
    channel_base: int = 4096
    channel_max: int = 256
    fid_samples: int = 2000
    fid_inception: Optional[str] = None
    fid_classifier_steps: int = 200
    device: str = "auto"
    output: Optional[str] = None  # also copy the tables and PNG here (for example docs/reproduce)
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        if not self.losses or len(set(self.losses)) != len(self.losses):
            raise ConfigError(f"--losses must name distinct losses (ce, rlo), got {self.losses}.")
        unknown = [loss for loss in self.losses if loss not in GAN_LOSSES]
        if unknown:
            raise ConfigError(f"Unknown GAN loss {', '.join(unknown)} in --losses: use "
                              f"{' and/or '.join(GAN_LOSSES)}.")
        if self.seeds <= 0:
            raise ConfigError(f"--seeds must be a positive integer, got {self.seeds}.")
        if self.fid_samples <= 0:
            raise ConfigError(f"--fid-samples must be > 0 for this reproduction, which compares "
                              f"FID, got {self.fid_samples}.")
        for loss in self.losses:
            self.gan_config(loss, self.first_seed, runs_dir=".").validate()

    def gan_config(self, loss: str, seed: int, *, runs_dir: str):
        from rlo_core.gan.config import GanConfig

        return replace(GanConfig(), dataset=self.dataset, loss=loss, k=self.k, kimg=self.kimg,
                       tick=self.tick, snap=self.snap, batch=self.batch,
                       resolution=self.resolution, arch=self.arch, z_dim=self.z_dim,
                       w_dim=self.w_dim, channel_base=self.channel_base,
                       channel_max=self.channel_max, fid_samples=self.fid_samples,
                       fid_inception=self.fid_inception,
                       fid_classifier_steps=self.fid_classifier_steps, device=self.device,
                       seed=seed, name=f"{loss}-seed{seed}", runs_dir=runs_dir)

    def default_name(self) -> str:
        return f"{self.dataset.split(':')[0]}-{self.resolution}px-{self.arch}".lower()


@dataclass
class GanRun:
    loss: str
    seed: int
    run_dir: Path
    fid_kind: Optional[str]
    curve: list[tuple[float, float]]  # (kimg, FID) pairs in logged order
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "seed": self.seed, "run_dir": str(self.run_dir),
                "fid_kind": self.fid_kind, "curve": [list(p) for p in self.curve],
                "seconds": self.seconds}


@dataclass
class GanReproductionResult:
    run_dir: Path
    runs: list[GanRun]
    markdown: str
    plot: Path
    copied: list[Path] = field(default_factory=list)


def fid_curve(run_dir: Path) -> list[tuple[float, float]]:
    from rlo_core.runs import read_jsonl

    return [(float(r["kimg"]), float(r["fid"])) for r in read_jsonl(run_dir / "metrics.jsonl")
            if r.get("split") == "eval" and "fid" in r and "kimg" in r]


def markdown_summary(config: GanReproductionConfig, runs: list[GanRun]) -> str:
    kimgs = sorted({round(kimg, 3) for run in runs for kimg, _ in run.curve})
    columns = ["loss", "seed", *[f"FID @ {kimg:g} kimg" for kimg in kimgs], "best FID",
               "time (s)"]
    rows = []
    for run in runs:
        by_kimg = {round(kimg, 3): fid for kimg, fid in run.curve}
        best = min((fid for _, fid in run.curve), default=None)
        rows.append([run.loss, str(run.seed),
                     *[report.format_number(by_kimg.get(kimg), 2) for kimg in kimgs],
                     report.format_number(best, 2), f"{run.seconds:.0f}"])
    kinds = {run.fid_kind for run in runs}
    kind = ("Inception FID" if kinds == {"inception"} else
            "feature-space FID (a classifier trained on the real images of this data set; "
            "comparable between these runs, not with published Inception FID)")
    settings = (f"{config.arch} at {config.resolution} px on {config.dataset}, {config.kimg:g} "
                f"kimg, batch {config.batch}, a snapshot every {config.snap} ticks of "
                f"{config.tick:g} kimg, rlo k={config.k:g}, {config.fid_samples} generated "
                f"images per FID; the other options are the `rlo gan` defaults.")
    return (f"## GAN: {config.dataset}, {config.arch}\n\n{settings} Metric: {kind}.\n\n"
            + report.markdown_table(columns, rows))


def plot_curves(config: GanReproductionConfig, runs: list[GanRun], path: Path) -> Path:
    from matplotlib.ticker import ScalarFormatter

    figure, (axes,) = report.new_figure(1, width=6.5)
    for index, loss in enumerate(config.losses):
        curves = [run.curve for run in runs if run.loss == loss]
        if not curves:
            continue
        xs = [kimg for kimg, _ in max(curves, key=len)]
        color = LOSS_COLORS.get(loss, f"C{index}")
        report.draw_band(axes, xs, [[fid for _, fid in curve] for curve in curves],
                         label=f"{loss}{f' k={config.k:g}' if loss == 'rlo' else ''}",
                         color=color, marker="o")
    axes.set(xlabel="kimg (thousands of real images shown)", ylabel="FID",
             title=f"{config.arch} on {config.dataset}, {config.resolution} px")
    axes.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    axes.grid(alpha=0.3)
    if config.seeds > 1:
        axes.legend(title=f"loss (mean of {config.seeds} seeds, band from min to max)")
    else:
        axes.legend(title="loss (1 seed)")
    return report.save_figure(figure, path)


def run_gan_reproduction(config: GanReproductionConfig) -> GanReproductionResult:
    """Train a GAN per (loss, seed) pair and write gan.json, gan.md and gan.png."""
    from rlo_core.config.schema import to_dict
    from rlo_core.gan.pipeline import run_gan
    from rlo_core.runs import Run

    config.validate()
    run = Run.create("reproduce", f"gan-{config.name or config.default_name()}",
                     {"reproduction": "gan", **to_dict(config)},
                     runs_dir=Path(config.runs_dir) if config.runs_dir else None)
    runs: list[GanRun] = []
    total = len(config.losses) * config.seeds
    with run:
        run.update(step=0, total_steps=total)
        for seed in range(config.first_seed, config.first_seed + config.seeds):
            for loss in config.losses:
                log.info("GAN run %d/%d: loss %s, seed %d", len(runs) + 1, total, loss, seed)
                result = run_gan(config.gan_config(loss, seed, runs_dir=str(run.dir / "runs")))
                runs.append(GanRun(loss=loss, seed=seed, run_dir=result.run_dir,
                                   fid_kind=result.fid_kind, curve=fid_curve(result.run_dir),
                                   seconds=result.seconds))
                run.log_metrics(step=len(runs), split="eval", loss_name=loss, seed=seed,
                                kimg=result.kimg, fid=result.final_fid)
                run.update(step=len(runs))
        markdown = markdown_summary(config, runs)
        plot = plot_curves(config, runs, run.dir / "gan.png")
        document = {"reproduction": "gan", "config": to_dict(config),
                    "runs": [item.as_dict() for item in runs]}
        json_path, markdown_path = report.write_outputs(run.dir, "gan", document, markdown)
        copied = report.copy_outputs([json_path, markdown_path, plot], config.output)
    return GanReproductionResult(run_dir=run.dir, runs=runs, markdown=markdown, plot=plot,
                                 copied=copied)
