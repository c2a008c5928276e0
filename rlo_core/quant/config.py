"""Configuration of `rlo quantize` (post-training quantization with perplexity evaluation).

This module imports no torch, so the command line can build its options from it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from rlo_core.errors import ConfigError

BITS = (2, 3, 4, 16)


@dataclass
class QuantizeConfig:
    """Every option of a quantization run.

    Calibration and evaluation follow the GPTQ/QuIP protocol: `nsamples` random windows of
    `seqlen` tokens (default: the model's context length) from the train split of `dataset`,
    and fixed-window perplexity on the data sets in `eval_datasets` (default: `dataset`).
    """

    model: Optional[str] = None
    dataset: str = "wikitext2"
    data_dir: str = "./data"
    wbits: int = 4
    quant: Literal["nearest", "gptq", "ldlq", "ldlqRG"] = "gptq"
    incoh_processing: bool = False
    incoh_transform: Literal["hadamard", "kronecker"] = "hadamard"
    npasses: int = 0
    nsamples: int = 128
    seqlen: Optional[int] = None
    percdamp: float = 0.01
    groupsize: Optional[int] = None
    act_order: bool = False
    lazy_batch: bool = True
    unbiased: bool = False
    seed: int = 0
    save: Optional[str] = None
    load: Optional[str] = None
    eval_datasets: list[str] = field(default_factory=list)
    eval_batch_size: int = 4
    max_eval_windows: Optional[int] = None
    baseline: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    trust_remote_code: bool = False
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        if self.wbits not in BITS:
            raise ConfigError(f"--wbits must be 2, 3, 4 or 16 (16 evaluates the model without "
                              f"quantizing it), got {self.wbits}.")
        for name in ("nsamples", "eval_batch_size"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, "
                                  f"got {value}.")
        for name in ("seqlen", "groupsize", "max_eval_windows"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got "
                                  f"{value}; leave it out for the default.")
        if self.seqlen is not None and self.seqlen < 2:
            raise ConfigError(f"--seqlen must be at least 2 tokens, got {self.seqlen}.")
        if self.npasses < 0:
            raise ConfigError(f"--npasses must be 0 or more, got {self.npasses}.")
        if not 0 <= self.percdamp < 10:
            raise ConfigError(f"--percdamp must be between 0 and 10 (a fraction of the mean "
                              f"Hessian diagonal; 0.01 is usual), got {self.percdamp}.")
        if self.unbiased and self.quant == "ldlqRG" and self.npasses > 0:
            raise ConfigError("--unbiased cannot be combined with --quant ldlqRG and --npasses "
                              f"{self.npasses}: the greedy passes round to nearest, so the "
                              "result would not be unbiased. Use --npasses 0 or --quant ldlq.")
        if self.incoh_processing and self.groupsize:
            raise ConfigError("--groupsize cannot be combined with --incoh-processing, which "
                              "quantizes each matrix with one symmetric scale. Drop one of them.")
        if self.save and self.load:
            raise ConfigError("--save and --load cannot be used together: --load evaluates a "
                              "saved checkpoint, --save writes a new one.")
        if self.save and self.wbits == 16:
            raise ConfigError("--save needs --wbits 2, 3 or 4: at 16 bits nothing is quantized.")

    def default_name(self) -> str:
        if self.load:
            from pathlib import Path

            return f"load-{Path(self.load).stem}"
        model = (self.model or "model").rstrip("/").split("/")[-1]
        if self.wbits == 16:
            return f"{model}-fp"
        incoherence = "-incoh" if self.incoh_processing else ""
        return f"{model}-{self.quant}-w{self.wbits}{incoherence}"
