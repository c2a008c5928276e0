"""`rlo reproduce`: summary statistics, and each reproduction end to end with tiny settings."""

import json
import math

import pytest
import typer
from typer.testing import CliRunner

from rlo_cli.commands import reproduce as reproduce_command
from rlo_core.errors import ConfigError
from rlo_core.reproduce.convergence import ConvergenceConfig, epochs_to_target, run_convergence
from rlo_core.reproduce.gan import GanReproductionConfig, run_gan_reproduction
from rlo_core.reproduce.quantization import QuantizationConfig, run_quantization
from rlo_core.reproduce.report import spread

runner = CliRunner()


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Root command, so the sub-app is reached as `reproduce ...`."""

    reproduce_command.register(app)
    return app


def test_spread_ignores_none_and_nan():
    result = spread([0.5, None, float("nan"), 0.7])
    assert (result.count, round(result.mean, 6)) == (2, 0.6)


def test_spread_of_one_value_has_no_std():
    assert spread([0.9]).std is None


def test_spread_of_nothing_formats_as_dash():
    assert spread([]).format() == "-"


def test_epochs_to_target_first_epoch_reaching_it():
    history = [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.91}, {"epoch": 3, "acc": 0.95}]
    assert epochs_to_target(history, 0.9) == 2


def test_epochs_to_target_none_when_never_reached():
    assert epochs_to_target([{"epoch": 1, "acc": 0.5}], 0.9) is None


def test_convergence_rejects_unknown_loss():
    with pytest.raises(ConfigError):
        ConvergenceConfig(losses=["ce", "hinge"]).validate()


def test_convergence_rejects_target_above_one():
    with pytest.raises(ConfigError):
        ConvergenceConfig(target_acc=90).validate()


def test_quantization_rejects_16_bits():
    with pytest.raises(ConfigError):
        QuantizationConfig(bits=[4, 16]).validate()


def test_gan_reproduction_rejects_focal():
    with pytest.raises(ConfigError):
        GanReproductionConfig(losses=["ce", "focal"]).validate()


def test_gan_reproduction_needs_fid():
    with pytest.raises(ConfigError):
        GanReproductionConfig(fid_samples=0).validate()


def write_image_folder(root):
    """Two classes of solid 8x8 images (dark and light), 8 train and 2 val images each."""
    from PIL import Image

    for split, count in (("train", 8), ("val", 2)):
        for label, base in (("dark", 30), ("light", 220)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                shade = base + index
                Image.new("RGB", (8, 8), (shade, shade, shade)).save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def convergence(tmp_path_factory):
    root = tmp_path_factory.mktemp("convergence")
    images = write_image_folder(root / "images")
    config = ConvergenceConfig(
        dataset=f"imagefolder:{images}", net="vit_tiny", image_size=8, patch=4, dim_head=12,
        losses=["ce", "rlo"], seeds=2, epochs=2, batch_size=8, lr=3e-3, aug=False,
        workers=0, device="cpu", target_acc=0.5, runs_dir=str(root / "runs"),
        output=str(root / "docs"))
    return run_convergence(config)


def test_convergence_one_summary_per_loss(convergence):
    assert [s.loss for s in convergence.summaries] == ["ce", "rlo"]


def test_convergence_history_per_seed_and_epoch(convergence):
    assert [len(h) for h in convergence.summaries[1].histories] == [2, 2]


def test_convergence_final_acc_over_both_seeds(convergence):
    assert convergence.summaries[0].final_acc.count == 2


def test_convergence_markdown_lists_losses(convergence):
    assert "| rlo |" in convergence.markdown


def test_convergence_png_written(convergence):
    assert convergence.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convergence_json_matches_summary(convergence):
    document = json.loads((convergence.run_dir / "convergence.json").read_text())
    expected = convergence.summaries[0].final_acc.mean
    assert document["summaries"][0]["final_acc"]["mean"] == expected


def test_convergence_copies_to_output(convergence):
    assert sorted(p.name for p in convergence.copied) == [
        "convergence.json", "convergence.md", "convergence.png"]


def test_convergence_deletes_checkpoints(convergence):
    train_runs = list((convergence.run_dir / "runs").iterdir())
    assert not any((run / "checkpoints").exists() for run in train_runs)


def test_convergence_run_marked_finished(convergence):
    status = json.loads((convergence.run_dir / "status.json").read_text())
    assert status["state"] == "finished"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from rlo_core.lm.models import build_tiny_model
    from rlo_core.lm.text_data import load_pydoc

    folder = tmp_path_factory.mktemp("reproduce-lm") / "tiny-opt"
    return build_tiny_model(folder, "opt", load_pydoc().train[:300], vocab_size=384,
                            hidden_size=32, layers=2, heads=4, context=128)


@pytest.fixture(scope="module")
def quantization(tiny_lm, tmp_path_factory, monkeypatch_module):
    from rlo_core.lm.text_data import load_pydoc

    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path_factory.mktemp("quantization")
    corpus = root / "corpus.txt"  # split 90/5/5 by text:PATH
    corpus.write_text("\n\n".join(load_pydoc().train[:200]))
    config = QuantizationConfig(
        model=str(tiny_lm), dataset=f"text:{corpus}", pretrain_steps=1, max_steps=1, lr=1e-3,
        warmup_steps=0, block_size=32, batch_size=4, grad_accum=1, bits=[4, 2], nsamples=2,
        seqlen=32, max_eval_windows=2, max_eval_blocks=1, adapter_bits=[2], adapter_steps=2,
        device="cpu", runs_dir=str(root / "runs"))
    return run_quantization(config)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_quantization_rows_per_loss_and_width(quantization):
    assert [(r.loss, r.bits) for r in quantization.rows] == [
        ("ce", None), ("ce", 4), ("ce", 2), ("rlo", None), ("rlo", 4), ("rlo", 2)]


def test_quantization_adapter_rows_per_loss(quantization):
    assert [(r.loss, r.bits) for r in quantization.adapter_rows] == [("ce", 2), ("rlo", 2)]
    assert all(math.isfinite(r.finetuned_ppl) for r in quantization.adapter_rows)
    assert all(math.isfinite(r.quantized_ppl) for r in quantization.adapter_rows)
    assert "Finetuning in quantized space" in quantization.markdown


def test_quantization_adapter_bits_must_be_quantized():
    with pytest.raises(ConfigError, match="--adapter-bits"):
        QuantizationConfig(bits=[4], adapter_bits=[2]).validate()


def test_quantization_degradation_is_difference(quantization):
    full, four_bits = quantization.rows[0], quantization.rows[1]
    assert four_bits.degradation == pytest.approx(four_bits.perplexity - full.perplexity)


def test_quantization_perplexities_finite(quantization):
    assert all(math.isfinite(row.perplexity) for row in quantization.rows)


def test_quantization_png_written(quantization):
    assert quantization.plot.stat().st_size > 0


def test_quantization_json_lists_rows(quantization):
    document = json.loads((quantization.run_dir / "quantization.json").read_text())
    assert len(document["rows"]) == 6
    assert len(document["adapter_rows"]) == 2


def test_quantization_starts_from_pretrained(quantization):
    names = [path.name for path in (quantization.run_dir / "runs").iterdir()]
    assert any(name.endswith("-finetune-pretrain-ce") for name in names), names


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    config = GanReproductionConfig(
        dataset="digits", resolution=8, batch=8, channel_base=64, channel_max=16, z_dim=8,
        w_dim=8, kimg=0.016, tick=0.008, snap=1, fid_samples=16, fid_classifier_steps=5,
        device="cpu", runs_dir=str(root / "runs"))
    return run_gan_reproduction(config)


def test_gan_one_run_per_loss(gan):
    assert [run.loss for run in gan.runs] == ["ce", "rlo"]


def test_gan_fid_at_start_and_each_snapshot(gan):
    assert [kimg for kimg, _ in gan.runs[0].curve] == [0.0, 0.008, 0.016]


def test_gan_markdown_has_fid_columns(gan):
    assert "FID @ 0.016 kimg" in gan.markdown


def test_gan_png_written(gan):
    assert gan.plot.stat().st_size > 0


def test_cli_convergence_print_config():
    result = runner.invoke(cli_app(), ["reproduce", "convergence", "--seeds", "3",
                                       "--losses", "ce,rlo", "--print-config"])
    assert "- rlo" in result.output, result.output


@pytest.fixture
def invalid_seeds(tmp_path):
    return runner.invoke(cli_app(), ["reproduce", "convergence", "--seeds", "0",
                                     "--runs-dir", str(tmp_path)])


def test_cli_invalid_seeds_exits_nonzero(invalid_seeds):
    assert invalid_seeds.exit_code == 2, invalid_seeds.output


def test_cli_invalid_seeds_names_option(invalid_seeds):
    assert "--seeds" in invalid_seeds.output, invalid_seeds.output
