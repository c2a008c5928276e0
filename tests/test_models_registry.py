"""Net names, input-size checks, default learning rates and pretrained-weight loading."""

import pytest
import torch

from rlo_core.errors import ConfigError, ModelError
from rlo_core.models import (
    NetOptions,
    check_net_input,
    count_net_parameters,
    create_net,
    net_spec,
    preferred_image_size,
)
from rlo_core.models.pretrained import build_pretrained_timm_vit

REFERENCE_NETS = ["vgg", "res18", "res34", "res50", "res101", "vit", "vit_small", "vit_tiny",
                  "vit-l", "vit_base", "vit_timm", "cait", "cait_small", "swin", "swin_base",
                  "mlpmixer", "convmixer"]


@pytest.mark.parametrize("name", REFERENCE_NETS)
def test_reference_net_registered(name):
    assert net_spec(name).name == name


@pytest.mark.parametrize("alias,name", [("Swin", "swin"), ("SWIN", "swin"),
                                        ("resnet18", "res18"), ("ResNet101", "res101"),
                                        ("VIT-L", "vit-l"), ("vit_l", "vit-l"),
                                        ("Vit_Timm", "vit_timm"), ("vgg19_bn", "vgg")])
def test_net_names_case_insensitive(alias, name):
    assert net_spec(alias).name == name


def test_unknown_net_suggests_name():
    with pytest.raises(ModelError, match="Did you mean 'swin'"):
        net_spec("swn")


@pytest.mark.parametrize("name,lr", [("res18", 1e-3), ("res101", 1e-3), ("vgg", 1e-3),
                                     ("convmixer", 1e-3), ("vit", 1e-4), ("swin", 1e-4),
                                     ("cait", 1e-4), ("mlpmixer", 1e-4), ("vit_timm", 1e-4)])
def test_default_lr_per_family(name, lr):
    assert net_spec(name).default_lr == lr


def check_message(name: str, **options) -> str:
    with pytest.raises(ConfigError) as error:
        check_net_input(name, NetOptions(num_classes=10, **options))
    return str(error.value)


def test_vit_patch_must_divide_size():
    message = check_message("vit", image_size=32, patch=5)
    assert "--patch" in message
    assert "32" in message


def test_swin_window_misfit_suggests_patch():
    # At 40 px the stage maps are 20, 10, 5 and 5 px: a 4 px window does not tile 5 px.
    message = check_message("swin", image_size=40)
    assert "--patch 5" in message


def test_swin_size_not_multiple_of_8():
    assert "multiple of 8" in check_message("Swin", image_size=36)


def test_swin_224_needs_window_dividing_7():
    assert "--patch 7" in check_message("swin", image_size=224, patch=4)


def test_cait_small_width_must_split_into_heads():
    assert "multiple of 6" in check_message("cait_small", image_size=32, dim_head=512)


def test_vgg_rejects_tiny_input():
    assert "--image-size 32" in check_message("vgg", image_size=16)


def test_vit_timm_needs_multiple_of_16():
    assert "--image-size 384" in check_message("vit_timm", image_size=40)


def test_pretrained_rejected_for_scratch_net():
    assert "vit_timm" in check_message("res18", image_size=32, pretrained="weights.pth")


def test_check_rejects_non_positive_patch():
    assert "--patch must be a positive integer" in check_message("vit", image_size=32, patch=0)


@pytest.mark.parametrize("image_size", [32, 224])
def test_swin_defaults_fit(image_size):
    check_net_input("swin", NetOptions(num_classes=10, image_size=image_size))


def test_vit_timm_prefers_384():
    assert preferred_image_size("vit_timm", None, 32) == 384


def test_requested_size_wins():
    assert preferred_image_size("vit_timm", 224, 32) == 224


def test_other_nets_take_dataset_size():
    assert preferred_image_size("swin", None, 64) == 64


def test_vit_uses_64_wide_heads():
    # The reference ViT keeps 64-wide heads at any width: 16 heads of 64 on a 512 width.
    with torch.device("meta"):
        model = create_net("vit", 10, 32, dim_head=512)
    assert model.blocks[0].attn.qkv.out_features == 3 * 16 * 64
    assert model.blocks[0].mlp.fc1.out_features == 1024
    assert len(model.blocks) == 12


def test_resnet_cifar_stem_small_only():
    with torch.device("meta"):
        assert create_net("res18", 10, 32).conv1.stride == (1, 1)
    assert count_net_parameters("res18", 10, 224) != count_net_parameters("res18", 10, 32)


def test_swin_keeps_last_stage_at_32px():
    with torch.device("meta"):
        model = create_net("swin", 10, 32)
        features = model.forward_features(torch.empty(1, 3, 32, 32))
    assert features.shape == (1, 4, 4, 768)


def test_swin_standard_layout_at_224px():
    with torch.device("meta"):
        model = create_net("swin", 10, 224)
        features = model.forward_features(torch.empty(1, 3, 224, 224))
    assert features.shape == (1, 7, 7, 768)


# --- pretrained weights ----------------------------------------------------------------------

TINY_VIT = "vit_tiny_patch16_384"  # the same timm class as vit_timm's ViT-B, 5.7 M parameters


@pytest.fixture(scope="module")
def tiny_vit_weights(tmp_path_factory):
    """Save a randomly initialized 1000-class timm ViT as model.safetensors."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = timm.create_model(TINY_VIT, pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    return path, source.state_dict()


def test_pretrained_loads_file_with_new_head(tiny_vit_weights):
    path, state = tiny_vit_weights
    model = build_pretrained_timm_vit(TINY_VIT, NetOptions(num_classes=7, image_size=384,
                                                           pretrained=str(path)))
    assert torch.equal(model.blocks[3].mlp.fc1.weight, state["blocks.3.mlp.fc1.weight"])
    assert model.head.out_features == 7


def test_pretrained_resamples_position_embedding(tiny_vit_weights):
    path, _ = tiny_vit_weights
    model = build_pretrained_timm_vit(TINY_VIT, NetOptions(num_classes=10, image_size=32,
                                                           pretrained=str(path)))
    assert model.pos_embed.shape[1] == 1 + 2 * 2
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_pretrained_found_in_hub_cache(tiny_vit_weights, tmp_path, monkeypatch):
    path, state = tiny_vit_weights
    snapshot = tmp_path / "hub" / f"models--timm--{TINY_VIT}.augreg_in21k_ft_in1k" / \
        "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = build_pretrained_timm_vit(TINY_VIT, NetOptions(num_classes=3, image_size=384))
    assert torch.equal(model.cls_token, state["cls_token"])


def test_pretrained_folder_argument(tiny_vit_weights, tmp_path):
    path, state = tiny_vit_weights
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "model.safetensors").symlink_to(path)
    model = build_pretrained_timm_vit(TINY_VIT, NetOptions(num_classes=3, image_size=384,
                                                           pretrained=str(tmp_path)))
    assert torch.equal(model.cls_token, state["cls_token"])


def test_vit_timm_offline_error_names_places(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with torch.device("meta"), pytest.raises(ModelError) as error:
        create_net("vit_timm", 10, 384)
    message = str(error.value)
    assert str(tmp_path / "hub" / "models--timm--vit_base_patch16_384*") in message
    assert "--pretrained PATH" in message
    assert "does not download" in message


def test_vit_timm_check_fails_before_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="No pretrained weights"):
        check_net_input("vit_timm", NetOptions(num_classes=10, image_size=384))


def test_vit_timm_rejects_mismatched_weights(tiny_vit_weights):
    path, _ = tiny_vit_weights
    with torch.device("meta"), pytest.raises(ModelError, match="do not fit"):
        create_net("vit_timm", 10, 384, pretrained=str(path))


def test_pretrained_missing_path():
    with pytest.raises(ModelError, match="no such file or folder"):
        create_net("vit_timm", 10, 384, pretrained="/nonexistent/weights.safetensors")

