"""End-to-end quantization of tiny OPT and Llama models briefly trained on pydoc text."""

import pytest
import torch

from rlo_core.quant.config import QuantizeConfig
from rlo_core.quant.pipeline import run_quantize

TRAIN_STEPS = 150
SEQLEN = 64
EVAL_WINDOWS = 32


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The models are tiny, so thread synchronization costs more than it saves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def train_tiny_model(folder, architecture):
    """Build a tiny model with its own BPE tokenizer and train it briefly on pydoc, so its
    perplexity (about 30 to 70 on pydoc) reacts to quantization error."""
    from rlo_core.lm.models import build_tiny_model, load_causal_lm
    from rlo_core.lm.text_data import load_pydoc
    from rlo_core.lm.windows import tokenize_text

    texts = load_pydoc().train
    build_tiny_model(folder, architecture, texts, vocab_size=512, hidden_size=64, layers=2,
                     heads=4, context=128)
    model, tokenizer = load_causal_lm(str(folder))
    ids = torch.tensor(tokenize_text(tokenizer, "\n\n".join(texts[:1200])))
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(TRAIN_STEPS):
        starts = torch.randint(0, len(ids) - SEQLEN - 1, (16,), generator=generator)
        batch = torch.stack([ids[start:start + SEQLEN] for start in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["opt", "llama2"])
def tiny_model(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield str(train_tiny_model(tmp_path_factory.mktemp(request.param), request.param))


def quantize(model, runs_dir, **options):
    defaults = dict(model=model, dataset="pydoc", nsamples=16, seqlen=SEQLEN,
                    max_eval_windows=EVAL_WINDOWS, runs_dir=str(runs_dir), baseline=False)
    return run_quantize(QuantizeConfig(**{**defaults, **options}))


def test_four_bits_save_and_load(tiny_model, tmp_path):
    path = tmp_path / "q.safetensors"
    saved = quantize(tiny_model, tmp_path, wbits=4, quant="gptq", baseline=True, save=str(path))
    baseline, quantized = (row.perplexity["pydoc"] for row in saved.rows)
    assert quantized <= 1.10 * baseline
    assert saved.checkpoint_bytes <= saved.fp16_bytes / 3

    loaded = quantize(tiny_model, tmp_path, load=str(path), seqlen=None)
    assert loaded.final.perplexity["pydoc"] == quantized
    assert loaded.reproduced is True
    assert loaded.seqlen == SEQLEN


def test_two_bits_incoherence_beats_nearest(tiny_model, tmp_path):
    nearest = quantize(tiny_model, tmp_path, wbits=2, quant="nearest")
    incoherent = quantize(tiny_model, tmp_path, wbits=2, quant="ldlqRG", incoh_processing=True,
                          npasses=2)
    assert incoherent.final.perplexity["pydoc"] < nearest.final.perplexity["pydoc"]
    assert incoherent.final.proxy_loss < nearest.final.proxy_loss


def test_layerwise_evaluation_matches_whole_model(tiny_model):
    from rlo_core.lm.models import load_causal_lm
    from rlo_core.lm.perplexity import fixed_window_perplexity
    from rlo_core.lm.text_data import load_pydoc
    from rlo_core.lm.windows import evaluation_windows
    from rlo_core.quant.evaluate import layerwise_perplexity
    from rlo_core.quant.layers import find_decoder_stack

    model, tokenizer = load_causal_lm(tiny_model)
    model.eval()
    windows = evaluation_windows(load_pydoc(), tokenizer, SEQLEN)[:16]
    whole = fixed_window_perplexity(model, windows, batch_size=1).perplexity
    stack = find_decoder_stack(model)
    cpu = torch.device("cpu")
    assert layerwise_perplexity(model, stack, windows, cpu, cpu) == pytest.approx(whole, rel=1e-6)


def test_decoder_stack_discovery(tiny_model):
    from rlo_core.lm.models import load_causal_lm
    from rlo_core.quant.layers import find_decoder_stack, find_linears

    model, _ = load_causal_lm(tiny_model)
    stack = find_decoder_stack(model)
    assert stack.path in ("model.decoder.layers", "model.layers")
    assert len(stack.layers) == 2
    assert len(find_linears(stack.layers[0])) in (6, 7)  # OPT: q k v out fc1 fc2; Llama: 7
