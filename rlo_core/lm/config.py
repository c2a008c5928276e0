"""Configuration and result of `rlo finetune` (causal-LM finetuning)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from rlo_core.errors import ConfigError


@dataclass
class FinetuneConfig:
    """Every option of a finetuning run.

    The defaults are the reference OPT setup: facebook/opt-125m on WikiText-2 with the rooted
    loss k=5, m=5, 3 epochs, blocks of 256 tokens, AdamW lr 1e-5 with 500 warmup steps and
    weight decay 0.01, batch 4 with gradient accumulation 2, mixed precision, seed 42.
    """

    model: str = "facebook/opt-125m"
    dataset: str = "wikitext2"
    data_dir: str = "./data"
    loss: str = "rlo"
    k: float = 5.0
    m: float = 5.0
    focal_alpha: float = 0.25
    focal_gamma: float = 3.0
    epochs: float = 3.0
    block_size: int = 256
    lr: float = 1e-5
    warmup_steps: int = 500
    weight_decay: float = 0.01
    batch_size: int = 4
    grad_accum: int = 2
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    seed: int = 42
    max_steps: Optional[int] = None
    eval_steps: Optional[int] = None  # None: evaluate at the end of every epoch
    eval_batch_size: Optional[int] = None  # None: the training batch size
    eval_seqlen: Optional[int] = None  # None: the model's context length
    max_eval_blocks: Optional[int] = None  # None: the whole validation split
    chunk_tokens: int = 512  # tokens per loss chunk; 0 computes the loss in one piece
    log_every: int = 10
    trust_remote_code: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    output: Optional[str] = None  # None: <run>/model (with quantized: <checkpoint>.adapters)
    quantized: Optional[str] = None  # a checkpoint of `rlo quantize --save`: train LoRA adapters on it
    lora_rank: int = 8
    lora_alpha: float = 16.0
    eval_only: bool = False  # with quantized: evaluate the saved adapters instead of training
    merge_adapters: bool = False  # with quantized: also save a model with the adapters merged
    fsdp: bool = False  # shard the model across the processes of a distributed job (GPUs)
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        for name in ("block_size", "batch_size", "grad_accum", "log_every"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
        for name in ("max_steps", "eval_steps", "eval_batch_size", "eval_seqlen", "max_eval_blocks"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got "
                                  f"{value}; leave it out for the default.")
        if self.lora_rank <= 0 or not self.lora_alpha > 0:
            raise ConfigError(f"--lora-rank and --lora-alpha must be > 0, got {self.lora_rank} "
                              f"and {self.lora_alpha}.")
        if self.fsdp and self.quantized:
            raise ConfigError("--fsdp and --quantized cannot be combined: adapters on a "
                              "low-bit model train in one process. Drop --fsdp.")
        if (self.eval_only or self.merge_adapters) and not self.quantized:
            raise ConfigError("--eval-only and --merge-adapters need --quantized CHECKPOINT (a "
                              "file written by 'rlo quantize --save').")
        if not self.epochs > 0:
            raise ConfigError(f"--epochs must be > 0, got {self.epochs}.")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}. The reference uses 1e-5 for OPT.")
        for name in ("k", "m"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name} must be > 0, got {getattr(self, name)}. The reference "
                                  "uses k=5, m=5 for OPT finetuning.")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.chunk_tokens < 0:
            raise ConfigError("--warmup-steps, --weight-decay and --chunk-tokens must be >= 0, got "
                              f"{self.warmup_steps}, {self.weight_decay} and {self.chunk_tokens}.")
        from rlo_core.losses import canonical_loss_name

        try:
            self.loss = canonical_loss_name(self.loss)
        except ValueError as error:
            raise ConfigError(str(error)) from error

    def run_name(self) -> str:
        if self.name:
            return self.name
        model = Path(self.model.rstrip("/")).name or self.model
        dataset = self.dataset.split(":")[0]
        return f"{model}-{dataset}-{self.loss}"


@dataclass
class FinetuneResult:
    run_dir: Path
    model_dir: Path
    steps: int
    train_tokens: int  # tokens processed by optimizer steps, gradient accumulation included
    wall_time_s: float
    initial_val_ppl: float
    final_val_ppl: float
    initial_test_ppl: Optional[float]  # fixed-window protocol on the evaluation split
    final_test_ppl: Optional[float]
    test_protocol: str  # for example "fixed-window, seqlen 512, pydoc-topics-py3.11-mod20"
    final_train_loss: Optional[float] = None
    final_val_ce: Optional[float] = None
    final_val_objective: Optional[float] = None
    metrics: dict = field(default_factory=dict)
