"""`run_quantize`: calibrate, quantize, evaluate, save or load, and record a run directory.

    >>> from rlo_core.quant.pipeline import QuantizeConfig, run_quantize
    >>> result = run_quantize(QuantizeConfig(model="tiny-opt", dataset="pydoc", wbits=2,
    ...                                      quant="ldlqRG", incoh_processing=True))
    >>> result.rows[-1].perplexity
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rlo_core.errors import ConfigError
from rlo_core.quant.config import QuantizeConfig
from rlo_core.quant.report import ResultRow

log = logging.getLogger(__name__)

__all__ = ["QuantizeConfig", "QuantizeResult", "run_quantize"]


@dataclass
class QuantizeResult:
    """Outcome of one run. `rows[0]` is the baseline when it was measured."""

    run_dir: Path
    rows: list[ResultRow]
    datasets: list[str]
    seqlen: int
    proxy_losses: dict[str, float] = field(default_factory=dict)  # per quantized layer
    checkpoint: Optional[Path] = None
    checkpoint_bytes: Optional[int] = None
    fp16_bytes: Optional[int] = None  # the quantized layers' weights in float16
    saved_perplexity: Optional[dict[str, float]] = None  # --load: the values at save time
    reproduced: Optional[bool] = None  # --load: perplexities equal those at save time
    markdown: str = ""

    @property
    def final(self) -> ResultRow:
        return self.rows[-1]


def library_versions() -> dict[str, str]:
    import safetensors
    import torch
    import transformers

    import rlo_core

    return {"rlo": rlo_core.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "safetensors": safetensors.__version__}


def rounding_settings(config: QuantizeConfig):
    from rlo_core.quant.linear import RoundingSettings

    return RoundingSettings(
        method=config.quant, bits=config.wbits, incoherence=config.incoh_processing,
        transform=config.incoh_transform, npasses=config.npasses, percdamp=config.percdamp,
        groupsize=config.groupsize, act_order=config.act_order,
        blocksize=128 if config.lazy_batch else 2**62, unbiased=config.unbiased,
        seed=config.seed)


def run_quantize(config: QuantizeConfig) -> QuantizeResult:
    """Run one quantization (or evaluation of a saved one) and write its run directory."""
    import torch

    from rlo_core.config import to_dict
    from rlo_core.lm.models import context_length, load_causal_lm
    from rlo_core.quant.checkpoint import load_checkpoint
    from rlo_core.quant.layers import find_decoder_stack
    from rlo_core.quant.resources import load_eval_sets, plan_placement, resolve_device
    from rlo_core.runs import Run

    config.validate()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    loaded = load_checkpoint(config.load) if config.load else None
    model_reference = config.model or (loaded.header["model"] if loaded else None)
    if model_reference is None:
        raise ConfigError("No model given. Pass MODEL (a model folder such as a finetune run's "
                          "model/ folder, a Hugging Face cache name or the tiny-opt preset), or "
                          "use --profile quip-2bit.")

    # Everything runs in float32: half-precision layers are slow on the CPU, and one dtype
    # on every device lets --load reproduce the saved perplexity.
    model, tokenizer = load_causal_lm(model_reference, trust_remote_code=config.trust_remote_code,
                                      dtype=torch.float32)
    model.eval()
    model.config.use_cache = False
    if config.seqlen is not None:
        seqlen = config.seqlen
    elif loaded is not None:
        seqlen = int(loaded.header["seqlen"])
    else:
        seqlen = context_length(model, tokenizer)
    eval_specs = config.eval_datasets or [config.dataset]
    eval_sets = load_eval_sets(eval_specs, tokenizer, seqlen, config.data_dir,
                               config.max_eval_windows)
    stack = find_decoder_stack(model)
    placement = plan_placement(model, device, config.nsamples, seqlen)

    run_config = {**to_dict(config), "model": model_reference, "seqlen": seqlen}
    run = Run.create("quantize", config.name or config.default_name(), run_config,
                     runs_dir=Path(config.runs_dir) if config.runs_dir else None)
    from rlo_core.quant.stages import Stages

    with run:
        stages = Stages(config, run, model, tokenizer, stack, device, placement, eval_sets, seqlen,
                        model_reference)
        result = stages.execute(loaded)
        result.run_dir = run.dir
        stages.write_results(result, library_versions())
    return result


def describe_settings(config: QuantizeConfig, seqlen: int, model: str) -> dict[str, Any]:
    """Return the settings a result depends on, for results.json and checkpoint headers."""
    return {"model": model, "dataset": config.dataset, "seqlen": seqlen,
            "nsamples": config.nsamples, "seed": config.seed, "percdamp": config.percdamp,
            "method": config.quant, "wbits": config.wbits,
            "incoh_processing": config.incoh_processing,
            "transform": config.incoh_transform if config.incoh_processing else None,
            "npasses": config.npasses, "groupsize": config.groupsize,
            "act_order": config.act_order, "unbiased": config.unbiased,
            "lazy_batch": config.lazy_batch}
