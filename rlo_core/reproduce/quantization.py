"""Quantization reproduction: finetune one starting model with each loss, quantize each result.

Steps, all in run directories under `<run>/runs/`:

1. With `pretrain_steps > 0`, first train the starting model with cross-entropy, so a randomly
   initialized preset such as tiny-opt becomes a trained model. Both finetunes start from it.
2. Finetune the starting model once per loss (ce and rlo by default) with the same options.
3. Quantize every finetuned model at each bit width with the same method and calibration
   windows, and measure the perplexity (exp of the mean token cross-entropy) of the full
   precision model and of each quantized one on the evaluation split.

Degradation is quantized perplexity minus full-precision perplexity, and their ratio.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rlo_core.errors import ConfigError
from rlo_core.reproduce import report

log = logging.getLogger(__name__)

LOSS_COLORS = {"ce": "tab:blue", "rlo": "tab:green", "focal": "tab:orange",
               "rlo-convex": "tab:red"}


@dataclass
class QuantizationConfig:
    """Options of `rlo reproduce quantization`. Finetuning defaults are those of `rlo finetune`
    (the reference OPT setup), except one epoch. Quantization defaults to LDLQ with incoherence
    processing."""

    model: str = "facebook/opt-125m"
    dataset: str = "wikitext2"
    data_dir: str = "./data"
    losses: list[str] = field(default_factory=lambda: ["ce", "rlo"])
    k: float = 5.0
    m: float = 5.0
    pretrain_steps: int = 0
    pretrain_lr: float = 1e-3
    epochs: float = 1.0
    max_steps: Optional[int] = None
    lr: float = 1e-5
    warmup_steps: int = 500
    block_size: int = 256
    batch_size: int = 4
    grad_accum: int = 2
    seed: int = 42
    bits: list[int] = field(default_factory=lambda: [4, 3, 2])
    quant: str = "ldlq"
    incoh_processing: bool = True
    nsamples: int = 128
    seqlen: Optional[int] = None  # None: the model's context length
    max_eval_windows: Optional[int] = None
    max_eval_blocks: Optional[int] = None  # validation blocks evaluated during finetuning
    # Bit widths at which each quantized model is also finetuned in quantized space, with LoRA
    # adapters on the frozen low-bit weights and the same loss. An empty list skips this.
    adapter_bits: list[int] = field(default_factory=lambda: [3, 2])
    adapter_steps: int = 100
    adapter_lr: float = 1e-4
    device: str = "auto"
    output: Optional[str] = None  # also copy the tables and PNG here (for example docs/reproduce)
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        if not self.losses or len(set(self.losses)) != len(self.losses):
            raise ConfigError(f"--losses must name distinct losses, got {self.losses}.")
        if not self.bits or any(bits not in (2, 3, 4) for bits in self.bits):
            raise ConfigError(f"--bits takes 2, 3 and/or 4, got {self.bits}.")
        if self.pretrain_steps < 0:
            raise ConfigError(f"--pretrain-steps must be 0 or more, got {self.pretrain_steps}.")
        if any(bits not in self.bits for bits in self.adapter_bits):
            raise ConfigError(f"--adapter-bits {self.adapter_bits} must be among --bits "
                              f"{self.bits}.")
        if self.adapter_steps <= 0 or not self.adapter_lr > 0:
            raise ConfigError(f"--adapter-steps ({self.adapter_steps}) and --adapter-lr "
                              f"({self.adapter_lr}) must be > 0.")
        if not self.pretrain_lr > 0:
            raise ConfigError(f"--pretrain-lr must be > 0, got {self.pretrain_lr}.")
        for loss in self.losses:
            self.finetune_config(loss, runs_dir=".").validate()
        self.quantize_config(".", 2, baseline=True, runs_dir=".").validate()

    def finetune_config(self, loss: str, *, runs_dir: str, model: Optional[str] = None):
        from rlo_core.lm.config import FinetuneConfig

        return FinetuneConfig(
            model=model or self.model, dataset=self.dataset, data_dir=self.data_dir, loss=loss,
            k=self.k, m=self.m, epochs=self.epochs, max_steps=self.max_steps, lr=self.lr,
            warmup_steps=self.warmup_steps, block_size=self.block_size,
            batch_size=self.batch_size, grad_accum=self.grad_accum, seed=self.seed,
            eval_seqlen=self.seqlen, max_eval_blocks=self.max_eval_blocks,
            device=self.device, name=f"finetune-{loss}", runs_dir=runs_dir)

    def pretrain_config(self, *, runs_dir: str):
        from dataclasses import replace

        return replace(self.finetune_config("ce", runs_dir=runs_dir), max_steps=self.pretrain_steps,
                       lr=self.pretrain_lr, warmup_steps=0, name="pretrain-ce")

    def adapter_config(self, loss: str, checkpoint: Path, model: str, *, runs_dir: str):
        from dataclasses import replace

        tuned = self.finetune_config(loss, runs_dir=runs_dir, model=model)
        return replace(tuned, quantized=str(checkpoint),
                       epochs=1.0, max_steps=self.adapter_steps, lr=self.adapter_lr,
                       warmup_steps=0, eval_seqlen=None, name=f"adapters-{loss}")

    def quantize_config(self, model: str, bits: int, *, baseline: bool, runs_dir: str):
        from rlo_core.quant.config import QuantizeConfig

        return QuantizeConfig(
            model=model, dataset=self.dataset, data_dir=self.data_dir, wbits=bits,
            quant=self.quant, incoh_processing=self.incoh_processing, nsamples=self.nsamples,
            seqlen=self.seqlen, max_eval_windows=self.max_eval_windows, baseline=baseline,
            seed=self.seed, device=self.device, runs_dir=runs_dir)

    def default_name(self) -> str:
        model = Path(self.model.rstrip("/")).name or self.model
        incoherence = "-incoh" if self.incoh_processing else ""
        return f"{model}-{self.dataset.split(':')[0]}-{self.quant}{incoherence}".lower()


@dataclass
class QuantRow:
    loss: str
    bits: Optional[int]  # None: full precision
    perplexity: float
    degradation: Optional[float] = None  # perplexity minus the full-precision perplexity
    ratio: Optional[float] = None  # perplexity over the full-precision perplexity
    proxy_loss: Optional[float] = None
    seconds: Optional[float] = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class AdapterRow:
    """Quantized-space finetuning of one quantized model: perplexity before and after."""

    loss: str
    bits: int
    quantized_ppl: float
    finetuned_ppl: float
    full_precision_ppl: Optional[float]
    recovered_fraction: Optional[float]  # of the perplexity lost to quantization

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class QuantizationResult:
    run_dir: Path
    rows: list[QuantRow]
    start_ppl: Optional[float]  # the starting model (after any pretraining), before finetuning
    markdown: str
    plot: Path
    copied: list[Path] = field(default_factory=list)
    adapter_rows: list[AdapterRow] = field(default_factory=list)


def adapter_markdown(config: QuantizationConfig, rows: list[AdapterRow]) -> str:
    if not rows:
        return ""
    columns = ["finetuning loss", "bits", "quantized ppl", "after adapter finetuning",
               "full precision", "share of the loss recovered"]
    table = [[row.loss, str(row.bits), report.format_number(row.quantized_ppl, 2),
              report.format_number(row.finetuned_ppl, 2),
              report.format_number(row.full_precision_ppl, 2),
              report.format_number(row.recovered_fraction, 3)] for row in rows]
    return (f"\n\n### Finetuning in quantized space\n\nLoRA adapters (plus norms and biases) "
            f"trained on the frozen quantized weights with the same loss for "
            f"{config.adapter_steps} steps at lr {config.adapter_lr:g}; perplexity with the "
            "fixed-window protocol at the checkpoint's calibration length, before and after.\n\n"
            + report.markdown_table(columns, table))


def markdown_summary(config: QuantizationConfig, rows: list[QuantRow], start_ppl: Optional[float],
                     protocol: str) -> str:
    columns = ["finetuning loss", "bits", "perplexity", "degradation", "ratio to full precision",
               "proxy loss", "quantization time (s)"]
    table = [[row.loss, "full" if row.bits is None else str(row.bits),
              report.format_number(row.perplexity, 2), report.format_number(row.degradation, 2),
              report.format_number(row.ratio, 3), report.format_number(row.proxy_loss, 4),
              report.format_number(row.seconds, 1)] for row in rows]
    method = f"{config.quant}{' with incoherence processing' if config.incoh_processing else ''}"
    steps = f"{config.max_steps} steps" if config.max_steps else f"{config.epochs:g} epochs"
    pretrain = (f"The starting model {config.model} was first trained with ce for "
                f"{config.pretrain_steps} steps at lr {config.pretrain_lr:g}. "
                if config.pretrain_steps else f"Starting model: {config.model}. ")
    start = (f"Perplexity of the starting model: {report.format_number(start_ppl, 2)}. "
             if start_ppl is not None else "")
    return (f"## Quantization: {config.model} on {config.dataset}\n\n{pretrain}{start}"
            f"Finetuning: {steps}, lr {config.lr:g}, warmup {config.warmup_steps}, block "
            f"{config.block_size}, batch {config.batch_size} x {config.grad_accum}, seed "
            f"{config.seed}, rlo k={config.k:g} m={config.m:g}. Quantization: {method}, "
            f"{config.nsamples} calibration windows. Perplexity: {protocol}.\n\n"
            + report.markdown_table(columns, table))


def plot_rows(config: QuantizationConfig, rows: list[QuantRow], path: Path) -> Path:
    """Plot perplexity and its ratio to full precision against bit width, one line per loss."""
    from matplotlib.ticker import ScalarFormatter

    figure, (ppl_axes, ratio_axes) = report.new_figure(2)
    bits = sorted(config.bits, reverse=True)
    labels = ["full", *[str(b) for b in bits]]
    for index, loss in enumerate(config.losses):
        by_bits = {row.bits: row for row in rows if row.loss == loss}
        values = [by_bits[b].perplexity if b in by_bits else math.nan for b in [None, *bits]]
        ratios = [1.0, *[by_bits[b].ratio if b in by_bits and by_bits[b].ratio else math.nan
                         for b in bits]]
        color = LOSS_COLORS.get(loss, f"C{index}")
        ppl_axes.plot(range(len(labels)), values, marker="o", color=color, label=loss)
        ratio_axes.plot(range(len(labels)), ratios, marker="o", color=color, label=loss)
    ppl_axes.set(xlabel="weight bits", ylabel="test perplexity", title="Perplexity")
    ratio_axes.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ratio_axes.set(xlabel="weight bits", ylabel="perplexity / full-precision perplexity",
                   title="Degradation from full precision")
    for axes in (ppl_axes, ratio_axes):
        axes.set_xticks(range(len(labels)), labels)
        axes.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        axes.grid(alpha=0.3)
        axes.legend(title="finetuning loss")
    method = f"{config.quant}{' + incoherence processing' if config.incoh_processing else ''}"
    figure.suptitle(f"{config.model} on {config.dataset}, {method}")
    return report.save_figure(figure, path)


def run_quantization(config: QuantizationConfig) -> QuantizationResult:
    """Finetune with each loss, quantize at each bit width, write results and the plot."""
    from rlo_core.config.schema import to_dict
    from rlo_core.lm.finetune import run_finetune
    from rlo_core.quant.pipeline import run_quantize
    from rlo_core.runs import Run

    config.validate()
    run = Run.create("reproduce", f"quantization-{config.name or config.default_name()}",
                     {"reproduction": "quantization", **to_dict(config)},
                     runs_dir=Path(config.runs_dir) if config.runs_dir else None)
    runs_dir = str(run.dir / "runs")
    rows: list[QuantRow] = []
    start_ppl: Optional[float] = None
    protocol = ""
    adapter_rows: list[AdapterRow] = []
    total = (len(config.losses) * (1 + len(config.bits) + len(config.adapter_bits))
             + (1 if config.pretrain_steps else 0))
    with run:
        done = 0
        run.update(step=done, total_steps=total)
        start_model = config.model
        if config.pretrain_steps:
            log.info("Training the starting model with ce for %d steps", config.pretrain_steps)
            pretrained = run_finetune(config.pretrain_config(runs_dir=runs_dir), terminal=False)
            start_model = str(pretrained.model_dir)
            done += 1
            run.update(step=done)
        for loss in config.losses:
            log.info("Finetuning %s with %s", start_model, loss)
            tuned = run_finetune(config.finetune_config(loss, runs_dir=runs_dir, model=start_model),
                                 terminal=False)
            if start_ppl is None:
                start_ppl = tuned.initial_test_ppl
            done += 1
            run.update(step=done)
            full_ppl: Optional[float] = None
            for index, bits in enumerate(config.bits):
                log.info("Quantizing the %s model to %d bits", loss, bits)
                quantize_config = config.quantize_config(
                    str(tuned.model_dir), bits, baseline=index == 0, runs_dir=runs_dir)
                checkpoint = run.dir / f"{loss}-w{bits}.safetensors"
                if bits in config.adapter_bits:
                    quantize_config.save = str(checkpoint)
                quantized = run_quantize(quantize_config)
                dataset = quantized.datasets[0]
                protocol = f"fixed windows of {quantized.seqlen} tokens on the {dataset} test split"
                if index == 0:
                    full_ppl = quantized.rows[0].perplexity[dataset]
                    rows.append(QuantRow(loss=loss, bits=None, perplexity=full_ppl))
                final = quantized.final
                ppl = final.perplexity[dataset]
                rows.append(QuantRow(
                    loss=loss, bits=bits, perplexity=ppl, degradation=ppl - full_ppl,
                    ratio=ppl / full_ppl, proxy_loss=final.proxy_loss, seconds=final.seconds))
                run.log_metrics(step=done, split="test", loss_name=loss, bits=bits, ppl=ppl,
                                fp_ppl=full_ppl)
                done += 1
                run.update(step=done)
                if bits in config.adapter_bits:
                    log.info("Finetuning the %d-bit %s model in quantized space", bits, loss)
                    adapted = run_finetune(config.adapter_config(
                        loss, checkpoint, str(tuned.model_dir), runs_dir=runs_dir),
                        terminal=False)
                    adapter_rows.append(AdapterRow(
                        loss=loss, bits=bits, quantized_ppl=adapted.initial_test_ppl,
                        finetuned_ppl=adapted.final_test_ppl,
                        full_precision_ppl=adapted.full_precision_test_ppl,
                        recovered_fraction=adapted.recovered_fraction))
                    run.log_metrics(step=done, split="test", loss_name=loss, bits=bits,
                                    adapter_ppl=adapted.final_test_ppl,
                                    quantized_ppl=adapted.initial_test_ppl)
                    done += 1
                    run.update(step=done)
        markdown = (markdown_summary(config, rows, start_ppl, protocol)
                    + adapter_markdown(config, adapter_rows))
        plot = plot_rows(config, rows, run.dir / "quantization.png")
        document = {"reproduction": "quantization", "config": to_dict(config),
                    "start_ppl": start_ppl, "protocol": protocol,
                    "rows": [row.as_dict() for row in rows],
                    "adapter_rows": [row.as_dict() for row in adapter_rows]}
        json_path, markdown_path = report.write_outputs(run.dir, "quantization", document, markdown)
        copied = report.copy_outputs([json_path, markdown_path, plot], config.output)
    return QuantizationResult(run_dir=run.dir, rows=rows, start_ppl=start_ppl, markdown=markdown,
                              plot=plot, copied=copied, adapter_rows=adapter_rows)
