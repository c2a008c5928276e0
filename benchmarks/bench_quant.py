"""Benchmark the rounding methods of `rlo quantize` on an OPT-125m-shaped model on the CPU.

The model has the OPTConfig defaults (hidden 768, FFN 3072, 12 heads) with random weights,
limited to `--layers` decoder layers. Hessians come from `--windows` windows of `--seqlen`
random token ids through the unquantized model, so every method quantizes the same matrices
against the same Hessians. Reported per method and bit width: the proxy loss
tr((W - Q) H (W - Q)^T) summed over all linear layers, and the wall time of quantizing them
(Hessian collection excluded).

    python benchmarks/bench_quant.py --layers 2 --bits 2 3 4 --output bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

METHODS = [  # (label, method, incoherence processing, greedy passes)
    ("nearest", "nearest", False, 0),
    ("gptq", "gptq", False, 0),
    ("ldlq", "ldlq", False, 0),
    ("ldlqRG (2 passes)", "ldlqRG", False, 2),
    ("ldlq + incoherence", "ldlq", True, 0),
    ("ldlqRG + incoherence (QuIP)", "ldlqRG", True, 2),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2, help="decoder layers to build (OPT-125m has 12)")
    parser.add_argument("--windows", type=int, default=8, help="calibration windows")
    parser.add_argument("--seqlen", type=int, default=512, help="tokens per calibration window")
    parser.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    parser.add_argument("--output", help="also write the results to this JSON file")
    return parser.parse_args()


def collect_hessians(layers: int, windows: int, seqlen: int):
    """Return [(name, weight, H)] for every linear layer of a random OPT-125m-shaped model."""
    from transformers import OPTConfig, OPTForCausalLM

    from rlo_core.quant.capture import capture_first_inputs, run_layer
    from rlo_core.quant.layers import find_decoder_stack, find_linears, move_outside_layers
    from rlo_core.quant.sequential import collect_hessians as layer_hessians

    torch.manual_seed(0)
    config = OPTConfig(num_hidden_layers=layers)
    model = OPTForCausalLM(config).eval()
    tokens = torch.randint(4, config.vocab_size, (windows, seqlen),
                           generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    stack = find_decoder_stack(model)
    move_outside_layers(model, stack, cpu)
    inputs = capture_first_inputs(model, stack, tokens, cpu, cpu)
    problems = []
    for index, layer in enumerate(stack.layers):
        linears = find_linears(layer)
        for name, accumulator in layer_hessians(layer, linears, inputs, cpu).items():
            full_name = stack.layer_name(index, name)
            problems.append((full_name, linears[name].weight.detach().clone(),
                             accumulator.mean(full_name)))
        run_layer(layer, inputs, cpu)
    return problems


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from rlo_core.quant.linear import RoundingSettings, quantize_linear

    started = time.monotonic()
    problems = collect_hessians(args.layers, args.windows, args.seqlen)
    print(f"Hessians of {len(problems)} linear layers in {time.monotonic() - started:.1f} s "
          f"({args.layers} layers, {args.windows} windows of {args.seqlen} tokens, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()})")

    rows = []
    for bits in args.bits:
        for label, method, incoherence, npasses in METHODS:
            settings = RoundingSettings(method=method, bits=bits, incoherence=incoherence,
                                        npasses=npasses)
            began = time.monotonic()
            loss = sum(quantize_linear(name, weight, hessian, settings).proxy_loss
                       for name, weight, hessian in problems)
            seconds = time.monotonic() - began
            rows.append({"method": label, "bits": bits, "proxy_loss": loss, "seconds": seconds})
            print(f"| {label} | {bits} | {loss:.4g} | {seconds:.1f} |", flush=True)

    print("\n| method | bits | proxy loss | time (s) |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['method']} | {row['bits']} | {row['proxy_loss']:.4g} | {row['seconds']:.1f} |")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "threads": torch.get_num_threads(), "rows": rows},
                      handle, indent=2)


if __name__ == "__main__":
    main()
