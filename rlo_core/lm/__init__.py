"""Causal language models: text data, models, perplexity and RLO finetuning.

- `text_data.load_text_splits(name)`: raw text splits (pydoc, wikitext2, ptb, c4, text:, hf:).
- `windows.evaluation_windows` / `calibration_windows`: token windows of the GPTQ protocol.
- `models.load_causal_lm(name_or_path)`: model and tokenizer; presets tiny-opt, tiny-llama.
- `perplexity.fixed_window_perplexity` / `token_perplexity`: perplexity from cross-entropy.
- `loss.causal_lm_loss`: any rlo_core loss with causal shift, masking and token chunks.
- `finetune.run_finetune(FinetuneConfig)`: the `rlo finetune` pipeline on `trainer.RLOTrainer`.

Submodules are not imported here, so importing this package stays cheap.
"""
