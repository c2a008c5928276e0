"""One-command reproductions of the RLO claims, each writing JSON, Markdown and a PNG.

- `convergence.run_convergence`: test accuracy and CE against epoch per loss over seeds.
- `quantization.run_quantization`: perplexity after low-bit quantization of models finetuned
  with ce and with rlo.
- `gan.run_gan_reproduction`: FID against kimg of `rlo gan` with ce and with rlo.

Submodules are not imported here, so importing this package stays cheap.
"""
