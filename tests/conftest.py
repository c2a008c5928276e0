"""Shared test set-up: no network access, no writes outside tmp_path."""

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
