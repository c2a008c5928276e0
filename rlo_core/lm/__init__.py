"""Causal language models: text data, models, perplexity and RLO finetuning.

- `text_data.load_text_splits(name)`: raw text splits (pydoc, wikitext2, ptb, c4, text:, hf:).
- `windows.evaluation_windows` / `calibration_windows`: token windows of the GPTQ protocol.
- `models.load_causal_lm(name_or_path)`: model and tokenizer; presets tiny-opt, tiny-llama.
- `perplexity.fixed_window_perplexity` / `token_perplexity`: perplexity from cross-entropy.

Modules import torch and transformers inside functions where they can, so importing this
package stays cheap.
"""
