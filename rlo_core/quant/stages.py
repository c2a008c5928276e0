"""The stages of a quantization run inside its run directory: baseline, quantize or load,
evaluate, save, and write the results table."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from rlo_core import atomic
from rlo_core.errors import CheckpointError
from rlo_core.quant.report import ResultRow, markdown_table

log = logging.getLogger(__name__)


class Stages:
    """Shared state of one run; `execute` returns the result, `write_results` stores it."""

    def __init__(self, config, run, model, tokenizer, stack, device, placement, eval_sets,
                 seqlen: int, model_reference: str):
        self.config = config
        self.run = run
        self.model = model
        self.tokenizer = tokenizer
        self.stack = stack
        self.device = device
        self.placement = placement
        self.eval_sets = eval_sets
        self.seqlen = seqlen
        self.model_reference = model_reference
        self.step = 0
        self.loaded_settings: dict[str, Any] | None = None  # --load: the settings at save time

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        from rlo_core.quant.evaluate import model_perplexity

        results = {}
        for eval_set in self.eval_sets:
            started = time.monotonic()
            results[eval_set.name] = model_perplexity(
                self.model, eval_set.windows, self.device, batch_size=self.config.eval_batch_size,
                stack=self.stack, layerwise=self.placement.layerwise_eval,
                store_device=self.placement.store_device)
            log.info("Perplexity on %s (%s, %d windows of %d): %.4f (%.1f s)", eval_set.name,
                     eval_set.variant, eval_set.windows.shape[0], self.seqlen,
                     results[eval_set.name], time.monotonic() - started)
        self.model.to("cpu")
        return results

    def record_row(self, row: ResultRow) -> None:
        variants = {eval_set.name: eval_set.variant for eval_set in self.eval_sets}
        for name, value in row.perplexity.items():
            self.run.log_metrics(step=self.step, split="eval", method=row.method, wbits=row.wbits,
                                 dataset=name, variant=variants[name], transform=row.transform,
                                 source=row.source, ppl=value, proxy_loss=row.proxy_loss,
                                 time_s=row.seconds, seqlen=self.seqlen)
        first = next(iter(row.perplexity.values()), None)
        if first is not None:
            self.run.update(best_metric=first, best_metric_name="ppl")
        self.step += 1

    # -- stages ---------------------------------------------------------------------------

    def execute(self, loaded) -> Any:
        from rlo_core.quant.pipeline import QuantizeResult

        result = QuantizeResult(run_dir=self.run.dir, rows=[],
                                datasets=[s.name for s in self.eval_sets], seqlen=self.seqlen)
        if self.config.baseline or (self.config.wbits == 16 and loaded is None):
            bits = torch.finfo(next(self.model.parameters()).dtype).bits
            row = ResultRow("none", bits, "-", "baseline", self.evaluate())
            result.rows.append(row)
            self.record_row(row)
        if loaded is not None:
            self.load(loaded, result)
        elif self.config.wbits < 16:
            self.quantize(result)
        return result

    def quantize(self, result) -> None:
        from rlo_core.lm.text_data import load_text_splits
        from rlo_core.lm.windows import calibration_windows
        from rlo_core.quant.checkpoint import fp16_bytes
        from rlo_core.quant.pipeline import rounding_settings
        from rlo_core.quant.sequential import quantize_decoder

        config = self.config
        splits = load_text_splits(config.dataset, data_dir=config.data_dir)
        windows = calibration_windows(splits, self.tokenizer, self.seqlen, config.nsamples,
                                      config.seed)
        log.info("Calibration: %d windows of %d tokens from the train split of %s (%s), seed %d.",
                 windows.shape[0], self.seqlen, config.dataset, splits.variant, config.seed)
        quantization = quantize_decoder(
            self.model, self.stack, windows, rounding_settings(config), device=self.device,
            store_device=self.placement.store_device,
            on_layer=lambda done, total: self.run.update(step=done, total_steps=total))
        self.model.to("cpu")
        transform = config.incoh_transform if config.incoh_processing else "-"
        row = ResultRow(config.quant, config.wbits, transform, "quantized", self.evaluate(),
                        quantization.proxy_loss, quantization.seconds)
        result.rows.append(row)
        result.proxy_losses = quantization.proxy_losses
        result.fp16_bytes = fp16_bytes(quantization.records)
        self.record_row(row)
        if config.save:
            self.save(quantization, row, result)

    def checkpoint_header(self, quantization, row: ResultRow) -> dict[str, Any]:
        from rlo_core.quant.checkpoint import base_fingerprint
        from rlo_core.quant.pipeline import describe_settings, library_versions

        names = {record.name for record in quantization.records}
        return {"model": self.model_reference,
                "model_fingerprint": base_fingerprint(self.model, names), "seqlen": self.seqlen,
                "settings": describe_settings(self.config, self.seqlen, self.model_reference),
                "perplexity": row.perplexity, "proxy_loss": row.proxy_loss,
                "quantize_seconds": row.seconds,
                "eval": [eval_set.describe() for eval_set in self.eval_sets],
                "reconstruct_device": self.device.type, "versions": library_versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def save(self, quantization, row: ResultRow, result) -> None:
        from rlo_core.quant.checkpoint import save_checkpoint

        path = Path(self.config.save)
        header = self.checkpoint_header(quantization, row)
        size = save_checkpoint(path, quantization.records, header)
        result.checkpoint, result.checkpoint_bytes = path, size
        log.info("Saved %s: %d bytes, %.3f of the %d bytes these weights take in float16.",
                 path, size, size / result.fp16_bytes, result.fp16_bytes)

    def load(self, loaded, result) -> None:
        from rlo_core.quant.checkpoint import apply_records, base_fingerprint, fp16_bytes

        header = loaded.header
        names = {record.name for record in loaded.records}
        if base_fingerprint(self.model, names) != header.get("model_fingerprint"):
            raise CheckpointError(
                f"The weights of {self.model_reference} that are not quantized (embeddings, "
                f"norms, biases, head) differ from those of {header.get('model')} used when "
                f"{self.config.load} was saved. Pass that base model as MODEL.")
        if header.get("reconstruct_device") != self.device.type:
            log.warning("%s was saved on %s and is loaded on %s: perplexities may differ from "
                        "the saved ones in the last digits.", self.config.load,
                        header.get("reconstruct_device"), self.device.type)
        apply_records(self.model, loaded.records, self.device)
        settings = header.get("settings", {})
        self.loaded_settings = settings
        transform = settings.get("transform") or "-"
        row = ResultRow(settings.get("method", "?"), int(settings.get("wbits", 0)), transform,
                        "loaded", self.evaluate(), header.get("proxy_loss"))
        result.rows.append(row)
        result.fp16_bytes = fp16_bytes(loaded.records)
        result.checkpoint = Path(self.config.load)
        result.checkpoint_bytes = Path(self.config.load).stat().st_size
        saved = header.get("perplexity") or {}
        result.saved_perplexity = saved
        # Compare only data sets evaluated on the same windows as at save time.
        saved_windows = {entry["name"]: (entry["variant"], entry["windows"], entry["seqlen"])
                         for entry in header.get("eval", [])}
        shared = [s.name for s in self.eval_sets if s.name in saved and
                  saved_windows.get(s.name) == (s.variant, s.windows.shape[0], self.seqlen)]
        if shared:
            result.reproduced = all(row.perplexity[name] == saved[name] for name in shared)
            log.info("Perplexity %s the value measured at save time.",
                     "equals" if result.reproduced else "differs from")
        self.record_row(row)
        self.evaluate_adapters(loaded, row, result)

    def evaluate_adapters(self, loaded, row, result) -> None:
        """Evaluate again with the LoRA adapters, norms and biases that `rlo finetune
        --quantized` saved beside the checkpoint, when that folder exists."""
        from rlo_core.lm.quantized_adapters import default_adapter_dir, load_adapters
        from rlo_core.lm.quantized_model import QuantizedBase, file_sha256

        folder = default_adapter_dir(self.config.load)
        if not folder.is_dir():
            return
        checkpoint = Path(self.config.load)
        base = QuantizedBase(self.model, loaded.records, loaded.header, checkpoint,
                             file_sha256(checkpoint), self.model_reference)
        # peft wraps the quantized linear layers of self.model in place, so the same model
        # object (and its decoder stack) now carries the adapters.
        load_adapters(folder, base)
        log.info("Evaluating with the adapters in %s", folder)
        adapted = ResultRow(row.method, row.wbits, row.transform, "loaded+adapters",
                            self.evaluate(), row.proxy_loss)
        result.rows.append(adapted)
        self.record_row(adapted)

    # -- output ---------------------------------------------------------------------------

    def write_results(self, result, versions: dict[str, str]) -> None:
        from rlo_core.quant.pipeline import describe_settings

        result.markdown = markdown_table(result.rows, result.datasets)
        settings = self.loaded_settings or describe_settings(self.config, self.seqlen,
                                                             self.model_reference)
        document: dict[str, Any] = {
            "settings": settings, "loaded_from": self.config.load,
            "device": str(self.device), "eval": [s.describe() for s in self.eval_sets],
            "rows": [row.as_dict() for row in result.rows],
            "proxy_loss_per_layer": result.proxy_losses,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "checkpoint_bytes": result.checkpoint_bytes, "fp16_bytes": result.fp16_bytes,
            "saved_perplexity": result.saved_perplexity, "reproduced": result.reproduced,
            "versions": versions,
        }
        atomic.write_json(self.run.dir / "results.json", document)
        variants = ", ".join(f"{s.name}: {s.variant}, {s.windows.shape[0]} windows"
                             for s in self.eval_sets)
        notes = [f"Model {self.model_reference}, seqlen {self.seqlen}, evaluation {variants}."]
        if result.checkpoint_bytes and result.fp16_bytes:
            notes.append(f"Checkpoint {result.checkpoint}: {result.checkpoint_bytes} bytes, "
                         f"{result.checkpoint_bytes / result.fp16_bytes:.3f} x the float16 size "
                         "of the quantized weights.")
        text = "# Quantization results\n\n" + result.markdown + "\n" + "\n".join(notes) + "\n"
        atomic.write_text(self.run.dir / "results.md", text)

