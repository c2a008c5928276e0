"""The training loop of quantized finetuning: `RLOTrainer` on a peft model, without checkpoints."""

from __future__ import annotations

import logging
from typing import Any, Optional

from rlo_core.errors import NonFiniteLossError, RloError

log = logging.getLogger(__name__)


def train_adapters(config: Any, prepared: Any, run: Any, peft_model: Any, criterion: Any,
                   autocast: Any, *, terminal: Optional[bool] = None
                   ) -> tuple[int, dict[str, float], Optional[float]]:
    """Train the trainable parameters of `peft_model`.

    Returns the optimizer steps, the final validation metrics (eval_objective, eval_ce,
    eval_ppl) and the last logged training loss. The Trainer saves no checkpoints: a peft
    model's `save_pretrained` would drop the trained norms and biases, so the caller saves
    everything once at the end.
    """
    import torch
    from transformers import PrinterCallback, default_data_collator
    from transformers.trainer_utils import SaveStrategy

    from rlo_core.lm.callbacks import ProgressCallback, RunMetricsCallback
    from rlo_core.lm.finetune import last_evaluation, training_arguments
    from rlo_core.lm.quantized_model import count_parameters
    from rlo_core.lm.trainer import RLOTrainer

    tokens_per_step = config.batch_size * config.grad_accum * config.block_size
    metrics_callback = RunMetricsCallback(run)
    progress = ProgressCallback(tokens_per_step, terminal=terminal)
    arguments = training_arguments(config, run, prepared.device, prepared.precision)
    arguments.save_strategy = SaveStrategy.NO
    trainer = RLOTrainer(
        model=peft_model, args=arguments, data_collator=default_data_collator,
        train_dataset=prepared.train, eval_dataset=prepared.validation,
        processing_class=prepared.tokenizer, callbacks=[metrics_callback, progress],
        criterion=criterion, chunk_tokens=config.chunk_tokens, eval_autocast=autocast)
    trainer.remove_callback(PrinterCallback)
    trainable, total = count_parameters(peft_model)
    log.info("Training %d of %d parameters (LoRA rank %d, norms, biases) with %s on %d blocks "
             "of %d tokens.", trainable, total, config.lora_rank, config.loss,
             len(prepared.train), config.block_size)
    try:
        trainer.train()
    except NonFiniteLossError as error:
        raise NonFiniteLossError(f"{error} No adapters were saved.") from None
    except torch.cuda.OutOfMemoryError as error:
        raise RloError(
            f"CUDA ran out of memory with --batch-size {config.batch_size} and --block-size "
            f"{config.block_size} ({str(error).splitlines()[0]}). Use a smaller --batch-size "
            "with a larger --grad-accum, or a smaller --block-size.") from None
    finally:
        progress.close()
    final = last_evaluation(trainer) or trainer.evaluate()
    return trainer.state.global_step, final, metrics_callback.last_train_loss
