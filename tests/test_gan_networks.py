"""GAN networks, augmentation, snapshots, FID math and seed parsing."""

import numpy as np
import pytest
import torch

from rlo_core.errors import CheckpointError, ConfigError
from rlo_core.gan.augment import AdaptiveAugment
from rlo_core.gan.fid import frechet_distance
from rlo_core.gan.generate import parse_seeds
from rlo_core.gan.layers import minibatch_stddev
from rlo_core.gan.networks import NetworkSpec, build_discriminator, build_generator
from rlo_core.gan.snapshots import load_snapshot, save_snapshot

ARCHS = ["dcgan", "stylegan2-lite"]


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """Run on one thread: these tiny networks gain nothing from more, and on a busy machine
    extra threads mostly wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_spec(arch: str, resolution: int = 16, channels: int = 3) -> NetworkSpec:
    return NetworkSpec(arch=arch, resolution=resolution, img_channels=channels, z_dim=8, w_dim=8,
                       channel_base=128, channel_max=16, mapping_layers=2)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("resolution", [8, 16])
def test_generator_output_shape(arch, resolution):
    G = build_generator(tiny_spec(arch, resolution))
    images = G(torch.randn(5, 8))
    assert images.shape == (5, 3, resolution, resolution)


@pytest.mark.parametrize("arch", ARCHS)
def test_discriminator_gives_one_logit_per_image(arch):
    D = build_discriminator(tiny_spec(arch, 16, channels=1))
    assert D(torch.randn(6, 1, 16, 16)).shape == (6,)


def test_resolution_not_power_of_two_is_rejected():
    with pytest.raises(ValueError, match="power of two"):
        build_generator(tiny_spec("dcgan", 24))


def test_stylegan_const_noise_is_deterministic():
    G = build_generator(tiny_spec("stylegan2-lite")).eval()
    with torch.no_grad():
        for block in G.blocks:  # noise strengths start at 0; make the noise visible
            for layer in (getattr(block, "conv0", None), block.conv1):
                if layer is not None:
                    layer.noise_strength.fill_(1.0)
        z = torch.randn(2, 8)
        first, second = G(z, noise_mode="const"), G(z, noise_mode="const")
        random_a = G(z, generator=torch.Generator().manual_seed(1))
        random_b = G(z, generator=torch.Generator().manual_seed(1))
        random_c = G(z, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first, second)
    assert torch.equal(random_a, random_b)
    assert not torch.equal(random_a, random_c)


def test_stylegan_truncation_endpoints():
    # psi = 1 leaves w unchanged, psi = 0 maps every sample to the mean w.
    G = build_generator(tiny_spec("stylegan2-lite")).eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        plain = G(z, noise_mode="const")
        same = G(z, truncation_psi=1.0, noise_mode="const")
        collapsed = G(z, truncation_psi=0.0, noise_mode="const")
    assert torch.equal(plain, same)
    assert torch.allclose(collapsed[0], collapsed[1], atol=1e-6)


def test_dcgan_rejects_truncation():
    G = build_generator(tiny_spec("dcgan"))
    with pytest.raises(ValueError, match="truncation"):
        G(torch.randn(1, 8), truncation_psi=0.5)


def test_minibatch_stddev_with_batch_not_divisible_by_group():
    x = torch.randn(6, 3, 4, 4)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (6, 4, 4, 4)
    assert torch.equal(out[:, :3], x)


def test_augment_with_zero_probability_is_identity():
    augment = AdaptiveAugment(initial_p=0.0)
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(augment(x), x)


def test_augment_supports_r1_double_backward():
    augment = AdaptiveAugment(initial_p=1.0)
    D = build_discriminator(tiny_spec("stylegan2-lite", 8))
    images = torch.randn(4, 3, 8, 8, requires_grad=True)
    logits = D(augment(images, torch.Generator().manual_seed(0)))
    (gradient,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    gradient.square().sum().backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert grads
    assert all(torch.isfinite(g).all() for g in grads)


def test_augment_changes_images_at_full_probability():
    augment = AdaptiveAugment(initial_p=1.0)
    x = torch.randn(8, 3, 8, 8)
    assert not torch.equal(augment(x, torch.Generator().manual_seed(0)), x)


def test_ada_probability_rises_when_discriminator_overfits():
    augment = AdaptiveAugment(adaptive=True, target=0.6, speed_kimg=1.0, interval=2)
    for _ in range(2):
        augment.accumulate(torch.ones(50))  # r_t = 1 > target
        augment.step()
    assert augment.probability == pytest.approx(0.1)


def test_ada_probability_stays_at_zero_when_not_overfitting():
    augment = AdaptiveAugment(adaptive=True, target=0.6, speed_kimg=1.0, interval=2)
    for _ in range(2):
        augment.accumulate(-torch.ones(50))
        augment.step()
    assert augment.probability == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_snapshot_round_trip_reproduces_generator(arch, tmp_path):
    spec = tiny_spec(arch)
    G, D, G_ema = build_generator(spec), build_discriminator(spec), build_generator(spec)
    path = save_snapshot(tmp_path / "network-snapshot-000001.safetensors", G=G, D=D,
                         G_ema=G_ema, spec=spec, info={"kimg": 1.0, "loss": "rlo"})
    snapshot = load_snapshot(path)
    z = torch.randn(2, 8)
    with torch.no_grad():
        expected = G_ema.eval()(z, noise_mode="const")
        actual = snapshot.G_ema(z, noise_mode="const")
        expected_logits = D.eval()(expected)
        actual_logits = snapshot.D(expected)
    assert snapshot.spec == spec
    assert snapshot.metadata["loss"] == "rlo"
    assert torch.equal(actual, expected)
    assert torch.equal(actual_logits, expected_logits)


def test_missing_snapshot_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_snapshot(tmp_path / "none.safetensors")


def test_foreign_safetensors_file_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not an 'rlo gan' network snapshot"):
        load_snapshot(path)


def test_corrupt_snapshot_raises_checkpoint_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="Could not read"):
        load_snapshot(path)


def test_frechet_distance_of_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 6))
    mu, sigma = features.mean(0), np.cov(features, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    # N(0, diag(1, 4)) vs N((1, 0), diag(4, 9)): 1 + (1 + 4 + 4 + 9) - 2 * (2 + 6) = 3.
    value = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 0.0]),
                             np.diag([4.0, 9.0]))
    assert value == pytest.approx(3.0, abs=1e-9)


@pytest.mark.parametrize("text, expected", [
    ("0-3", [0, 1, 2, 3]), ("5", [5]), ("1,4,7-9", [1, 4, 7, 8, 9]), (" 2 , 3 ", [2, 3])])
def test_parse_seeds(text, expected):
    assert parse_seeds(text) == expected


@pytest.mark.parametrize("text", ["", "a-b", "5-2", "-3", "0-99999"])
def test_parse_seeds_rejects_invalid_ranges(text):
    with pytest.raises(ConfigError):
        parse_seeds(text)
