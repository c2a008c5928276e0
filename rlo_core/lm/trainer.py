"""A `transformers.Trainer` that trains with any `rlo_core.losses` loss and evaluates honestly.

Training goes through the Trainer's own loop with `compute_loss_func` set to `CausalLMLoss`
(chunked, causal shift, -100 ignored). Evaluation is overridden so one forward pass yields
both the training objective and plain cross-entropy: the logged perplexity is
exp(CE per predicted token), never exp(objective). Under a distributed job each rank
evaluates its share of the blocks and the sums are added over ranks.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn
from transformers import Trainer

from rlo_core.lm.loss import DEFAULT_CHUNK_TOKENS, CausalLMLoss, objective_and_ce
from rlo_core.lm.perplexity import causal_labels, model_device
from rlo_core.lm.sharding import ShardedBlocks, all_reduce_sums, rank_and_world


@dataclass
class EvalResult:
    objective: float  # training objective per predicted token
    ce: float  # cross-entropy per predicted token (nats)
    ppl: float  # exp(ce)
    tokens: int  # predicted tokens


def sum_batches(model: nn.Module, batches, criterion: nn.Module, *,
                chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                autocast: Callable[[], Any] = contextlib.nullcontext) -> tuple[float, float, int]:
    """Sum the objective and cross-entropy over batches, and count the predicted tokens."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    objective = ce = 0.0
    count = 0
    try:
        with torch.no_grad():
            for batch in batches:
                input_ids = batch["input_ids"].to(device)
                mask = batch.get("attention_mask")
                mask = mask.to(device) if mask is not None else None
                labels = causal_labels(input_ids, mask, batch.get("labels"))
                with autocast():
                    logits = model(input_ids=input_ids, attention_mask=mask).logits
                batch_objective, batch_ce, batch_count = objective_and_ce(
                    logits, labels.to(device), criterion, chunk_tokens or logits.shape[1])
                objective += batch_objective
                ce += batch_ce
                count += batch_count
    finally:
        model.train(was_training)
    return objective, ce, count


def eval_result(objective: float, ce: float, count: int) -> EvalResult:
    if count == 0:
        raise ValueError("The evaluation data has no predicted tokens.")
    return EvalResult(objective / count, ce / count, math.exp(ce / count), int(count))


def evaluate_batches(model: nn.Module, batches, criterion: nn.Module, *,
                     chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                     autocast: Callable[[], Any] = contextlib.nullcontext) -> EvalResult:
    """Objective and cross-entropy per predicted token over batches, padding excluded."""
    return eval_result(*sum_batches(model, batches, criterion, chunk_tokens=chunk_tokens,
                                    autocast=autocast))


def tied_parameter_names(model: nn.Module) -> set[str]:
    """Return the names of parameters that share their tensor with an earlier parameter."""
    first_name: dict[int, str] = {}
    tied: set[str] = set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first_name:
            tied.add(name)
        else:
            first_name[id(parameter)] = name
    return tied


class RLOTrainer(Trainer):
    """Trainer with a causal-LM `criterion` and an evaluation that reports objective, CE and ppl.

    `evaluate()` returns and logs eval_objective, eval_ce, eval_ppl and eval_tokens (plus
    eval_loss, equal to eval_objective, for code that expects the Trainer's key).
    """

    def __init__(self, *args: Any, criterion: nn.Module, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                 eval_autocast: Optional[Callable[[], Any]] = None, **kwargs: Any):
        super().__init__(*args, compute_loss_func=CausalLMLoss(criterion, chunk_tokens or None),
                         **kwargs)
        self.criterion = criterion
        self.chunk_tokens = chunk_tokens
        self.eval_autocast = eval_autocast or contextlib.nullcontext

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        """Drop tied parameters from the checkpoint's missing keys before the Trainer warns.

        A tied `lm_head.weight` is not saved in the checkpoint, but it shares its tensor with
        the input embedding, which is loaded, so the Trainer's warning about it is spurious.
        """
        tied = tied_parameter_names(self.model)
        missing = [key for key in load_result.missing_keys if key not in tied]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def evaluation_model(self) -> nn.Module:
        """Return the model for evaluation forwards: the plain model, or under FSDP the sharded
        one, because its forward gathers the weights. Before training starts, the sharded
        model is prepared here, as the Trainer's own evaluation loop does."""
        if not self.is_fsdp_enabled:
            return self.model
        # NOTE: the FSDP path has not run here (accelerate shards only across GPUs).
        if self.model_wrapped is self.model and not self.accelerator._models:
            self.model = self.model_wrapped = self.accelerator.prepare(self.model)
        return self.model_wrapped

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        rank, world = rank_and_world()
        loader = torch.utils.data.DataLoader(
            ShardedBlocks(dataset, rank, world), batch_size=self.args.per_device_eval_batch_size,
            shuffle=False, collate_fn=self.data_collator)
        model = self.evaluation_model()
        sums = sum_batches(model, loader, self.criterion, chunk_tokens=self.chunk_tokens,
                           autocast=self.eval_autocast)
        result = eval_result(*all_reduce_sums(sums, model_device(model)))
        metrics = {
            f"{metric_key_prefix}_objective": result.objective,
            f"{metric_key_prefix}_loss": result.objective,
            f"{metric_key_prefix}_ce": result.ce,
            f"{metric_key_prefix}_ppl": result.ppl,
            f"{metric_key_prefix}_tokens": result.tokens,
        }
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
