"""`rlo quantize` on the command line, and evaluation on a WikiText-2 raw fixture."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from rlo_cli.app import app

WIKI_ARTICLE = """ = Valkyria Chronicles = 

 The game began development in 2010 , carrying over a large portion of the work done on its predecessor . 
 It was also adapted into manga and an original video animation series . 

 = = Gameplay = = 

 As with previous titles , the game is a tactical role @-@ playing game where players take control of a military unit . 
 Troops are selected from a pool of characters , each with their own strengths and weaknesses . 
"""


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The model is tiny, so thread synchronization costs more than it saves."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def untrained_opt(tmp_path_factory):
    from rlo_core.lm.models import build_tiny_model
    from rlo_core.lm.text_data import load_pydoc

    folder = tmp_path_factory.mktemp("opt")
    build_tiny_model(folder, "opt", load_pydoc().train, vocab_size=512, hidden_size=64,
                     layers=2, heads=4, context=128)
    return str(folder)


@pytest.fixture
def wikitext_dir(tmp_path):
    """WikiText-2 raw layout: wiki.{train,valid,test}.raw with ' = Title = ' headings."""
    folder = tmp_path / "data" / "wikitext2"
    folder.mkdir(parents=True)
    for split, copies in (("train", 6), ("valid", 2), ("test", 3)):
        (folder / f"wiki.{split}.raw").write_text(" \n" + WIKI_ARTICLE * copies, encoding="utf-8")
    return folder


def invoke(*args):
    return CliRunner().invoke(app, ["quantize", *args])


def test_cli_save_then_load(untrained_opt, tmp_path):
    common = ["--seqlen", "64", "--nsamples", "8", "--max-eval-windows", "12",
              "--runs-dir", str(tmp_path / "runs")]
    path = tmp_path / "q.safetensors"
    saved = invoke(untrained_opt, "pydoc", "--wbits", "2", "--quant", "ldlqRG",
                   "--incoh-processing", "--incoh-transform", "kronecker", "--npasses", "1",
                   "--save", str(path), *common)
    assert saved.exit_code == 0, saved.output
    assert "ldlqRG" in saved.output
    assert "Saved" in saved.output

    loaded = invoke(untrained_opt, "pydoc", "--load", str(path), "--no-baseline", *common)
    assert loaded.exit_code == 0, loaded.output
    assert "equals the value measured at save time" in loaded.output


def test_run_directory_records_results(untrained_opt, tmp_path):
    from rlo_core.quant.config import QuantizeConfig
    from rlo_core.quant.pipeline import run_quantize
    from rlo_core.runs import read_jsonl

    config = QuantizeConfig(model=untrained_opt, dataset="pydoc", wbits=3, quant="ldlq",
                            nsamples=8, seqlen=64, max_eval_windows=8, runs_dir=str(tmp_path))
    result = run_quantize(config)
    rows = [r for r in read_jsonl(result.run_dir / "metrics.jsonl") if r.get("split") == "eval"]
    assert [(r["method"], r["wbits"], r["dataset"]) for r in rows] == [
        ("none", 32, "pydoc"), ("ldlq", 3, "pydoc")]
    assert all(math.isfinite(r["ppl"]) for r in rows)
    assert (result.run_dir / "results.md").read_text().count("| ldlq | 3 | - |") == 1
    assert json.loads((result.run_dir / "results.json").read_text())["settings"]["seqlen"] == 64


def test_cli_rejects_invalid_bits(untrained_opt):
    result = invoke(untrained_opt, "pydoc", "--wbits", "5")
    assert result.exit_code == 2
    assert "--wbits must be 2, 3, 4 or 16" in result.output


def test_cli_missing_checkpoint(untrained_opt, tmp_path):
    result = invoke(untrained_opt, "pydoc", "--load", str(tmp_path / "absent.safetensors"))
    assert result.exit_code == 2
    assert "was not found" in result.output


def test_profile_holds_reference_command():
    result = CliRunner().invoke(app, ["quantize", "--profile", "quip-2bit", "--print-config"])
    assert result.exit_code == 0, result.output
    for line in ("model: facebook/opt-125m", "wbits: 2", "quant: ldlqRG", "incoh_processing: true"):
        assert line in result.output


def test_wikitext_fixture_evaluation(untrained_opt, wikitext_dir, tmp_path):
    from rlo_core.lm.models import load_tokenizer
    from rlo_core.lm.windows import tokenize_text

    result = invoke(untrained_opt, "pydoc", "--wbits", "16", "--eval", "wikitext2",
                    "--data-dir", str(wikitext_dir.parent), "--seqlen", "32",
                    "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "ppl wikitext2" in result.output

    run_dir = next((tmp_path / "runs").iterdir())
    evaluation = json.loads((run_dir / "results.json").read_text())["eval"][0]
    lines = (wikitext_dir / "wiki.test.raw").read_text(encoding="utf-8").splitlines(keepends=True)
    text = "\n\n".join(line if line.strip() else "" for line in lines)
    tokens = tokenize_text(load_tokenizer(untrained_opt), text)
    assert evaluation["variant"] == "wikitext-2-raw-v1"
    assert evaluation["windows"] == len(tokens) // 32
