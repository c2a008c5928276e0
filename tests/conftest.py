"""Shared test set-up: no network access, no writes outside tmp_path, and the tiny language
model and text corpus of the finetuning tests."""

import os

import pytest

# Nothing in the suite may reach a model hub; set before transformers/datasets are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point user profiles and runs at a temporary folder for every test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("RLO_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    yield


# -- finetuning fixtures: a tiny OPT model and a pydoc text corpus --------------------------

@pytest.fixture(scope="module")
def tiny_opt(tmp_path_factory):
    from rlo_core.lm.models import build_tiny_model
    from rlo_core.lm.text_data import load_pydoc

    folder = tmp_path_factory.mktemp("finetune-model") / "tiny-opt"
    return build_tiny_model(folder, "opt", load_pydoc().train[:300], vocab_size=384,
                            hidden_size=32, layers=2, heads=4, context=128)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """About 60,000 characters of pydoc paragraphs, split by text:PATH into 90/5/5."""
    from rlo_core.lm.text_data import load_pydoc

    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(load_pydoc().train[:400]))
    return path
