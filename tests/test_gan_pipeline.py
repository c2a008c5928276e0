"""`run_gan` end to end on tiny networks: outputs, metrics, resume equivalence, data, FID."""

import json
from dataclasses import replace

import pytest
import torch

from rlo_core.errors import ConfigError, DataError, ModelError, NonFiniteLossError
from rlo_core.gan.config import GanConfig
from rlo_core.gan.data import load_gan_data
from rlo_core.gan.pipeline import CHECKPOINT_NAME, resume_gan, run_gan

TINY = dict(dataset="digits", resolution=8, batch=8, channel_base=64, channel_max=16, z_dim=8,
            w_dim=8, r1_interval=2, grid=2, fid_classifier_steps=5, fid_samples=0, max_images=64)


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Run on one thread: these tiny networks gain nothing from more, and on a busy machine
    extra threads mostly wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(tmp_path, **changes) -> GanConfig:
    return GanConfig(**{**TINY, "runs_dir": str(tmp_path / "runs"), **changes})


def read_metrics(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gan")
    config = tiny_config(tmp_path, arch="stylegan2-lite", kimg=0.064, tick=0.032, snap=1,
                         fid_samples=32)
    return run_gan(config)


def test_run_writes_stylegan_outputs(finished_run):
    names = {path.name for path in finished_run.run_dir.iterdir()}
    for expected in ("reals.png", "fakes_init.png", "fakes000000.png", "metrics.jsonl",
                     "network-snapshot-000000.safetensors", "fid-classifier.safetensors",
                     "fid-reals-feature.safetensors", "config.yaml"):
        assert expected in names, expected
    assert (finished_run.run_dir / "checkpoints" / CHECKPOINT_NAME).is_file()


def test_train_records_hold_gan_statistics(finished_run):
    train = [r for r in read_metrics(finished_run.run_dir) if r["split"] == "train"]
    assert len(train) == 2
    for key in ("g_loss", "d_loss", "r1", "real_score", "fake_score", "real_sign", "fake_sign",
                "kimg"):
        assert key in train[-1], key
    assert -1.0 <= train[-1]["real_sign"] <= 1.0


def test_eval_records_label_feature_fid(finished_run):
    evals = [r for r in read_metrics(finished_run.run_dir) if r["split"] == "eval"]
    assert [r["kimg"] for r in evals] == [0.0, 0.032, 0.064]
    assert all(r["fid_kind"] == "feature" for r in evals)
    assert all("not comparable to published FID" in r["fid_note"] for r in evals)
    assert evals[0]["fid"] == pytest.approx(finished_run.initial_fid)


def test_result_reports_fid_and_steps(finished_run):
    assert finished_run.steps == 8
    assert finished_run.fid_kind == "feature"
    assert finished_run.final_fid > 0


def test_status_tracks_kimg(finished_run):
    status = json.loads((finished_run.run_dir / "status.json").read_text())
    assert status["state"] == "finished"
    assert status["kimg"] == pytest.approx(0.064)
    assert status["total_steps"] == 8


def final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / CHECKPOINT_NAME, weights_only=True)["trainer"]


@pytest.mark.parametrize("arch", ["dcgan", "stylegan2-lite"])
def test_resume_matches_uninterrupted_run(tmp_path, arch):
    common = dict(arch=arch, tick=0.016, snap=1, augment="ada", augment_p=0.2, ada_kimg=0.05)
    straight = run_gan(tiny_config(tmp_path / "a", kimg=0.064, **common))
    half = run_gan(tiny_config(tmp_path / "b", kimg=0.032, **common))
    resumed = resume_gan(str(half.run_dir), overrides={"kimg": 0.064})
    expected, actual = final_state(straight.run_dir), final_state(resumed.run_dir)
    assert actual["step"] == expected["step"] == 8
    for part in ("G", "D", "G_ema"):
        for key, value in expected[part].items():
            assert torch.equal(actual[part][key], value), f"{part}.{key}"
    assert torch.equal(actual["augment"]["p"], expected["augment"]["p"])
    assert float(actual["augment"]["p"]) != 0.2  # ADA moved p, so its state was exercised
    assert torch.equal(actual["rng"], expected["rng"])
    exp_adam = expected["opt_D"]["state"][0]["exp_avg_sq"]
    assert torch.equal(actual["opt_D"]["state"][0]["exp_avg_sq"], exp_adam)


def test_resume_rejects_changed_network_options(tmp_path):
    run = run_gan(tiny_config(tmp_path, kimg=0.008, tick=0.008))
    with pytest.raises(ConfigError, match="cannot change when resuming"):
        resume_gan(str(run.run_dir), overrides={"kimg": 0.016, "arch": "stylegan2-lite"})


def test_resume_of_finished_run_asks_for_more_kimg(tmp_path):
    run = run_gan(tiny_config(tmp_path, kimg=0.008, tick=0.008))
    with pytest.raises(ConfigError, match="larger --kimg"):
        resume_gan(str(run.run_dir))


def test_non_finite_loss_raises(tmp_path):
    from rlo_core.gan.networks import NetworkSpec
    from rlo_core.gan.training import GanTrainer

    config = tiny_config(tmp_path)
    data = load_gan_data("digits", 8, max_images=16)
    spec = NetworkSpec("dcgan", 8, 1, 8, 8, 64, 16, 2)
    trainer = GanTrainer(config, spec, data, torch.device("cpu"))
    with torch.no_grad():
        trainer.D.out.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="generator loss"):
        trainer.train_step()


def write_png(path, color, size=12):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size + 4), color).save(path)


def test_image_folder_with_class_subfolders_has_labels(tmp_path):
    for index in range(3):
        write_png(tmp_path / "cats" / f"{index}.png", (200, 10, 10))
        write_png(tmp_path / "dogs" / f"{index}.jpg", (10, 10, 200))
    data = load_gan_data(f"imagefolder:{tmp_path}", 8)
    assert data.images.shape == (6, 3, 8, 8)
    assert data.class_names == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_flat_image_folder_has_no_labels(tmp_path):
    for index in range(4):
        write_png(tmp_path / f"{index}.png", (index * 50, 0, 0))
    data = load_gan_data(f"imagefolder:{tmp_path}", 8, max_images=3)
    assert len(data) == 3
    assert data.labels is None


def test_missing_image_folder_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="was not found"):
        load_gan_data(f"imagefolder:{tmp_path / 'none'}", 8)


def test_digits_load_as_one_channel(tmp_path):
    data = load_gan_data("digits", 32)
    assert data.images.shape == (1797, 1, 32, 32)
    assert data.images.dtype == torch.uint8


def test_feature_fid_uses_rotation_task_without_labels(tmp_path):
    from rlo_core.gan.fid import build_fid_metric

    for index in range(8):
        write_png(tmp_path / "images" / f"{index}.png", (index * 30, 100, 0))
    data = load_gan_data(f"imagefolder:{tmp_path / 'images'}", 8)
    metric = build_fid_metric(data=data, run_dir=tmp_path, device=torch.device("cpu"),
                              inception_path=None, classifier_steps=2, seed=0)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "fid-classifier.safetensors"), framework="pt") as handle:
        info = json.loads(handle.metadata()["info"])
    assert metric.kind == "feature"
    assert info["task"] == "rotation"


def test_fid_classifier_ignores_thread_count():
    from rlo_core.gan.fid_classifier import train_feature_classifier

    data = load_gan_data("digits", 8)
    weights = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model, _ = train_feature_classifier(data, steps=10, seed=0, device=torch.device("cpu"))
        weights.append(torch.cat([p.flatten() for p in model.state_dict().values()
                                  if p.is_floating_point()]))
        assert torch.get_num_threads() == threads
    torch.set_num_threads(1)
    assert torch.equal(weights[0], weights[1])


def test_inception_fid_from_local_weights_file(tmp_path, monkeypatch):
    from torchvision.models import inception_v3

    from rlo_core.gan import fid_inception
    from rlo_core.gan.fid import build_fid_metric

    # 75 px is Inception-v3's smallest input; 299 px would cost 16x the time for the same path.
    monkeypatch.setattr(fid_inception, "INCEPTION_SIZE", 75)
    weights = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(),
               weights)
    data = load_gan_data("digits", 8, max_images=6)
    metric = build_fid_metric(data=data, run_dir=tmp_path, device=torch.device("cpu"),
                              inception_path=str(weights), classifier_steps=1, seed=0)
    features = metric.extract(torch.zeros(2, 1, 8, 8))
    # The Frechet distance itself is covered by the feature-space runs; at 2048 dimensions it
    # costs seconds of linear algebra that this test does not need.
    assert metric.kind == "inception"
    assert "not identical with published FID" in metric.note
    assert features.shape == (2, 2048)
    assert torch.isfinite(features).all()
    assert metric.real_mu.shape == (2048,)
    assert (tmp_path / "fid-reals-inception.safetensors").is_file()


def test_inception_weights_of_wrong_layout_raise_model_error(tmp_path):
    from rlo_core.gan.fid_inception import load_inception

    weights = tmp_path / "wrong.pth"
    torch.save({"weight": torch.zeros(3)}, weights)
    with pytest.raises(ModelError, match="Inception-v3"):
        load_inception(weights, torch.device("cpu"))


def test_invalid_resolution_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="--resolution"):
        run_gan(replace(tiny_config(tmp_path), resolution=24))
