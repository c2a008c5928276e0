"""Perplexity protocols: fixed windows on a wiki.test.raw fixture, token-level with padding."""

import math

import pytest
import torch
import torch.nn.functional as F

from rlo_core.errors import DataError
from rlo_core.lm.blocks import pad_batch
from rlo_core.lm.models import build_tiny_model, load_causal_lm
from rlo_core.lm.perplexity import fixed_window_perplexity, token_perplexity
from rlo_core.lm.text_data import load_pydoc, load_text_splits
from rlo_core.lm.windows import calibration_windows, evaluation_windows, random_document_windows

SEQLEN = 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppl-models")
    texts = load_pydoc().train[:300]
    models = {}
    for arch in ("opt", "llama2"):
        folder = build_tiny_model(root / arch, arch, texts, vocab_size=384, hidden_size=32,
                                  layers=2, heads=4, context=128)
        models[arch] = load_causal_lm(str(folder))
    return models


@pytest.fixture
def wikitext(tmp_path):
    folder = tmp_path / "wikitext2"
    folder.mkdir()
    article = "\n".join(["", " = Rooted losses = ", "",
                         " The rooted logistic objective weighs every sample by a root of its "
                         "probability , and it was tested on images and text . "] * 4)
    for name in ("wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"):
        (folder / name).write_text(article + "\n")
    return load_text_splits("wikitext2", data_dir=tmp_path)


def test_windows_tokenize_the_joined_split_once(tiny, wikitext):
    _, tokenizer = tiny["opt"]
    ids = tokenizer("\n\n".join(wikitext.test)).input_ids
    windows = evaluation_windows(wikitext, tokenizer, SEQLEN)
    assert windows.flatten().tolist() == ids[: len(ids) // SEQLEN * SEQLEN]


def test_windows_drop_the_tail(tiny, wikitext):
    _, tokenizer = tiny["opt"]
    ids = tokenizer("\n\n".join(wikitext.test)).input_ids
    assert evaluation_windows(wikitext, tokenizer, SEQLEN).shape[0] == len(ids) // SEQLEN


def test_bos_appears_only_in_the_first_window(tiny, wikitext):
    _, tokenizer = tiny["llama2"]
    windows = evaluation_windows(wikitext, tokenizer, SEQLEN)
    assert int((windows == tokenizer.bos_token_id).sum()) == 1


def test_fixed_window_ppl_is_exp_of_mean_window_loss(tiny, wikitext):
    model, tokenizer = tiny["opt"]
    windows = evaluation_windows(wikitext, tokenizer, SEQLEN)
    model.eval()
    with torch.no_grad():
        means = [F.cross_entropy(model(w[None]).logits[0, :-1], w[1:]).item() for w in windows]
    expected = math.exp(sum(means) / len(means))
    assert fixed_window_perplexity(model, windows).perplexity == pytest.approx(expected, rel=1e-6)


def test_fixed_window_batching_does_not_change_ppl(tiny, wikitext):
    model, tokenizer = tiny["opt"]
    windows = evaluation_windows(wikitext, tokenizer, SEQLEN)
    alone = fixed_window_perplexity(model, windows, batch_size=1).perplexity
    assert fixed_window_perplexity(model, windows, batch_size=4).perplexity == pytest.approx(alone, rel=1e-5)


def test_too_short_split_raises(tiny, wikitext):
    _, tokenizer = tiny["opt"]
    with pytest.raises(DataError, match="fewer than one window"):
        evaluation_windows(wikitext, tokenizer, 100_000)


SHORT = "import os"
LONG = "The with statement wraps the execution of a block with methods defined by a context manager."


@pytest.mark.parametrize("arch", ["opt", "llama2"])
def test_token_ppl_ignores_padding(tiny, arch):
    model, tokenizer = tiny[arch]
    short_ids = tokenizer(SHORT).input_ids
    long_ids = tokenizer(LONG).input_ids
    alone = token_perplexity(model, [pad_batch([short_ids], tokenizer.pad_token_id)])
    padded = pad_batch([short_ids, long_ids], tokenizer.pad_token_id)
    only_short = {key: value[:1] for key, value in padded.items()}
    assert token_perplexity(model, [only_short]).perplexity == pytest.approx(alone.perplexity, rel=1e-5)


@pytest.mark.parametrize("arch", ["opt", "llama2"])
def test_token_ppl_batched_equals_separate_totals(tiny, arch):
    model, tokenizer = tiny[arch]
    sequences = [tokenizer(SHORT).input_ids, tokenizer(LONG).input_ids]
    separate = [token_perplexity(model, [pad_batch([seq], tokenizer.pad_token_id)]) for seq in sequences]
    total_nll = sum(result.mean_nll * result.tokens for result in separate)
    tokens = sum(result.tokens for result in separate)
    batched = token_perplexity(model, [pad_batch(sequences, tokenizer.pad_token_id)])
    assert batched.perplexity == pytest.approx(math.exp(total_nll / tokens), rel=1e-5)


def test_token_ppl_counts_predicted_tokens(tiny):
    model, tokenizer = tiny["opt"]
    sequences = [tokenizer(SHORT).input_ids, tokenizer(LONG).input_ids]
    result = token_perplexity(model, [pad_batch(sequences, tokenizer.pad_token_id)])
    assert result.tokens == sum(len(seq) - 1 for seq in sequences)


def test_random_document_windows_are_seeded(tiny):
    _, tokenizer = tiny["opt"]
    documents = [f"document {i} " + "word " * (10 + 7 * i) for i in range(20)]
    first = random_document_windows(documents, tokenizer, 16, count=5, seed=0)
    second = random_document_windows(documents, tokenizer, 16, count=5, seed=0)
    assert torch.equal(first, second)


def test_random_document_windows_need_long_documents(tiny):
    _, tokenizer = tiny["opt"]
    with pytest.raises(DataError, match="No document"):
        random_document_windows(["short", "tiny"], tokenizer, 64, count=2)


def test_calibration_windows_have_requested_shape(tiny, wikitext):
    _, tokenizer = tiny["opt"]
    assert tuple(calibration_windows(wikitext, tokenizer, SEQLEN, count=6).shape) == (6, SEQLEN)
