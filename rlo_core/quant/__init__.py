"""Post-training quantization of decoder language models to 2, 3 or 4 bits (GPTQ and QuIP).

- `pipeline.run_quantize(QuantizeConfig(...))`: calibrate, quantize layer by layer, evaluate
  perplexity, save or load bit-packed checkpoints, and record a run directory.
- `methods.quantize_matrix`: nearest, GPTQ/OPTQ, LDLQ and LDLQ-RG rounding of one matrix.
- `linear.quantize_linear`: one layer, with optional incoherence processing.
- `checkpoint`: the safetensors format with a versioned JSON header.

Importing this package does not import torch; the modules above do.
"""
