"""Tiny OPT, Llama 2 and Llama 3 models saved as real folders, loaded, saved and reloaded."""

import logging

import pytest
import torch
from transformers import AutoModelForCausalLM

from rlo_core.errors import ModelError
from rlo_core.lm.models import build_tiny_model, context_length, load_causal_lm, save_causal_lm
from rlo_core.lm.text_data import load_pydoc

SMALL = dict(vocab_size=384, hidden_size=32, layers=2, heads=4, context=128)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    texts = load_pydoc().train[:300]
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny_model(root / arch, arch, texts, **SMALL)
            for arch in ("opt", "llama2", "llama3")}


@pytest.mark.parametrize("arch, class_name", [("opt", "OPTForCausalLM"),
                                              ("llama2", "LlamaForCausalLM"),
                                              ("llama3", "LlamaForCausalLM")])
def test_tiny_folder_loads(tiny_folders, arch, class_name):
    model, _ = load_causal_lm(str(tiny_folders[arch]))
    assert type(model).__name__ == class_name


@pytest.mark.parametrize("arch", ["opt", "llama2", "llama3"])
def test_tiny_folder_holds_safetensors(tiny_folders, arch):
    assert (tiny_folders[arch] / "model.safetensors").is_file()
    assert (tiny_folders[arch] / "tokenizer.json").is_file()


def test_llama3_config_uses_grouped_query_attention(tiny_folders):
    model, _ = load_causal_lm(str(tiny_folders["llama3"]))
    assert model.config.num_key_value_heads == model.config.num_attention_heads // 2
    assert model.config.rope_parameters["rope_theta"] == 500000.0


def test_llama2_config_uses_full_attention(tiny_folders):
    model, _ = load_causal_lm(str(tiny_folders["llama2"]))
    assert model.config.num_key_value_heads == model.config.num_attention_heads


def test_tokenizer_prepends_bos(tiny_folders):
    _, tokenizer = load_causal_lm(str(tiny_folders["opt"]))
    assert tokenizer("def f(): pass").input_ids[0] == tokenizer.bos_token_id


def test_llama_tokenizer_pads_with_eos(tiny_folders, caplog):
    with caplog.at_level(logging.WARNING, logger="rlo_core.lm.models"):
        _, tokenizer = load_causal_lm(str(tiny_folders["llama2"]))
    assert tokenizer.pad_token == tokenizer.eos_token
    assert "no pad token" in caplog.text


def test_context_length_reads_config(tiny_folders):
    model, tokenizer = load_causal_lm(str(tiny_folders["llama3"]))
    assert context_length(model, tokenizer) == SMALL["context"]


def test_missing_folder_names_offline_mode(tmp_path):
    with pytest.raises(ModelError, match="offline mode is on"):
        load_causal_lm(str(tmp_path / "no-such-model"))


def test_missing_hub_id_suggests_local_path():
    with pytest.raises(ModelError, match="local folder"):
        load_causal_lm("nobody-here/no-such-model-rlo-test")


@pytest.mark.parametrize("arch", ["opt", "llama3"])
def test_save_load_round_trip_keeps_logits(tiny_folders, tmp_path, arch):
    model, tokenizer = load_causal_lm(str(tiny_folders[arch]))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    saved = save_causal_lm(model, tokenizer, tmp_path / "saved")
    reloaded = AutoModelForCausalLM.from_pretrained(saved)
    ids = tokenizer("for x in range(3): print(x)", return_tensors="pt").input_ids
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, reloaded(ids).logits, atol=1e-6)


def test_save_replaces_existing_folder(tiny_folders, tmp_path):
    model, tokenizer = load_causal_lm(str(tiny_folders["opt"]))
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    save_causal_lm(model, tokenizer, target)
    assert not (target / "stale.txt").exists()


def test_preset_is_built_into_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RLO_CACHE_DIR", str(tmp_path / "cache"))
    _, tokenizer = load_causal_lm("tiny-llama")
    assert (tmp_path / "cache" / "models" / "tiny-llama-v1" / "model.safetensors").is_file()
    assert len(tokenizer) == 4096
