"""Pre-trained weights in: timm, fast-reid, transformers BEiT / data2vec-vision / ViT reproduce their own models.

Every model here is tiny with random weights (no downloads); each test compares the DMF image
path with the original implementation on the same input. Tolerance: atol 1e-5 on float32
features of magnitude ~1 (sums over <= 64 channels, 2 blocks).
"""

import logging

import pytest
import torch
from fastreid.modeling.backbones.vision_transformer import VisionTransformer as FastReIDViT
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer as TimmViT
from transformers import (
    BeitConfig,
    BeitForImageClassification,
    BeitModel,
    Data2VecVisionConfig,
    Data2VecVisionModel,
    ViTConfig,
    ViTModel,
)

from fastreid_dmf.modeling.dmf.backbone import DMFBackbone
from fastreid_dmf.modeling.pretrained import detect_checkpoint_family, load_pretrained_vit, read_state_dict

ATOL = 1e-5


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    """Random values in every parameter (zero-initialised tokens/biases would hide mapping mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
        for name, param in module.named_parameters():
            if "norm" in name and name.endswith("weight"):  # keep LayerNorm scales near 1
                param.add_(1.0)


def _timm_vit() -> TimmViT:
    model = TimmViT(img_size=224, patch_size=16, embed_dim=64, depth=2, num_heads=2, class_token=True,
                    global_pool="token", num_classes=10)
    _randomise(model)
    return model.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_checkpoint_reproduces_timm_vision_transformer(tmp_path, suffix):
    reference = _timm_vit()
    path = tmp_path / f"timm_vit{suffix}"
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    model = DMFBackbone(img_size=(224, 224), patch_size=16, stride_size=16, embed_dim=64, depth=2,
                        num_heads=2).eval()
    report = load_pretrained_vit(model, str(path))
    assert not report["skipped_shape"] and "head.weight" not in report["unexpected"]
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = reference.forward_features(images)[:, 0]
        assert torch.allclose(model.forward_image(images), expected, atol=ATOL)


@pytest.mark.parametrize("stride", [16, 12])
def test_fastreid_checkpoint_reproduces_fastreid_vit_at_reid_size(tmp_path, stride):
    torch.manual_seed(1)
    reference = FastReIDViT(img_size=(256, 128), patch_size=16, stride_size=stride, embed_dim=32, depth=2,
                            num_heads=2, qkv_bias=True)
    _randomise(reference, seed=1)
    reference.eval()
    state = {f"backbone.{k}": v for k, v in reference.state_dict().items()}
    state["heads.weight"] = torch.randn(5, 32)
    path = tmp_path / "fastreid_vit.pth"
    torch.save({"model": state, "iteration": 7}, path)
    assert detect_checkpoint_family(read_state_dict(str(path))) == "fast-reid"
    model = DMFBackbone(img_size=(256, 128), patch_size=16, stride_size=stride, embed_dim=32, depth=2,
                        num_heads=2).eval()
    report = load_pretrained_vit(model, str(path))
    assert report["unexpected"] == ["heads.weight"] and not report["skipped_shape"]
    images = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=ATOL)


def test_transreid_checkpoint_reproduces_its_vit_and_reports_its_reid_head(tmp_path):
    """TransReID saves ``base.*`` (its ViT, pos_embed already on the 16x8 Re-ID grid) plus BNNeck/classifier."""
    reference = FastReIDViT(img_size=(256, 128), patch_size=16, stride_size=16, embed_dim=32, depth=2,
                            num_heads=2, qkv_bias=True)
    _randomise(reference, seed=2)
    reference.eval()
    state = {f"base.{k}": v for k, v in reference.state_dict().items()}
    state.update({"bottleneck.weight": torch.ones(32), "bottleneck.bias": torch.zeros(32),
                  "classifier.weight": torch.randn(751, 32)})
    path = tmp_path / "transformer_120.pth"
    torch.save(state, path)
    assert detect_checkpoint_family(read_state_dict(str(path))) == "transreid"
    model = DMFBackbone(img_size=(256, 128), patch_size=16, stride_size=16, embed_dim=32, depth=2,
                        num_heads=2).eval()
    report = load_pretrained_vit(model, str(path))
    assert not report["skipped_shape"]
    assert set(report["unexpected"]) == {"bottleneck.weight", "bottleneck.bias", "classifier.weight"}
    images = torch.randn(2, 3, 256, 128)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=ATOL)


def test_reid_checkpoint_grid_is_inferred_and_resized_to_another_stride(tmp_path, caplog):
    """A 256x128 stride-16 TransReID checkpoint (16x8 grid) loaded for stride 12 (21x10 grid)."""
    reference = FastReIDViT(img_size=(256, 128), patch_size=16, stride_size=16, embed_dim=32, depth=1, num_heads=2,
                            qkv_bias=True)
    _randomise(reference, seed=3)
    path = tmp_path / "transreid_stride16.pth"
    torch.save({f"base.{k}": v for k, v in reference.state_dict().items()}, path)
    model = DMFBackbone(img_size=(256, 128), patch_size=16, stride_size=12, embed_dim=32, depth=1, num_heads=2)
    with caplog.at_level(logging.WARNING):
        report = load_pretrained_vit(model, str(path))
    assert "pos_embed" in report["loaded"] and "16x8" in caplog.text
    expected = resample_abs_pos_embed(reference.pos_embed.detach(), [21, 10], old_size=[16, 8],
                                      num_prefix_tokens=1, interpolation="bilinear", antialias=False)
    assert torch.equal(model.pos_embed.detach(), expected)


def test_square_timm_grid_is_resized_bilinearly_to_reid_grid(tmp_path):
    reference = _timm_vit()
    path = tmp_path / "timm_224.pth"
    torch.save(reference.state_dict(), path)
    model = DMFBackbone(img_size=(256, 128), patch_size=16, stride_size=16, embed_dim=64, depth=2, num_heads=2)
    report = load_pretrained_vit(model, str(path))
    assert "pos_embed" in report["loaded"]
    assert model.pos_embed.shape == (1, 1 + 16 * 8, 64)
    expected = resample_abs_pos_embed(reference.pos_embed.detach(), [16, 8], old_size=[14, 14], num_prefix_tokens=1,
                                      interpolation="bilinear", antialias=False)
    assert torch.equal(model.pos_embed.detach(), expected)
    assert torch.equal(model.pos_embed[0, 0], reference.pos_embed[0, 0]), "the [cls] position is kept"


def _beit_like(kind: str, pooler: bool = False, **overrides):
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, image_size=32,
                 patch_size=8, use_absolute_position_embeddings=True, use_relative_position_bias=False,
                 use_shared_relative_position_bias=False, use_mean_pooling=False, layer_scale_init_value=0.1,
                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0)
    shape.update(overrides)
    if kind == "beit":
        return BeitModel(BeitConfig(**shape), add_pooling_layer=pooler)
    return Data2VecVisionModel(Data2VecVisionConfig(**shape), add_pooling_layer=pooler)


def _dmf_for_hf(layer_scale: float = 0.1, eps: float = 1e-12) -> DMFBackbone:
    return DMFBackbone(img_size=(32, 32), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2,
                       ln_eps=eps, layer_scale_init=layer_scale).eval()


@pytest.mark.parametrize("kind", ["beit", "data2vec-vision"])
def test_beit_and_data2vec_vision_reproduce_hf_cls_feature(tmp_path, kind):
    hf = _beit_like(kind)
    _randomise(hf, seed=2)
    hf.eval()
    hf.save_pretrained(tmp_path / kind)
    model = _dmf_for_hf()
    report = load_pretrained_vit(model, str(tmp_path / kind))
    assert {"blocks.0.ls1.gamma", "blocks.1.ls2.gamma", "blocks.0.attn.qkv.bias", "norm.weight"} <= \
        set(report["loaded"])
    assert not report["unexpected"] and not report["skipped_shape"]
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf(pixel_values=pixels).last_hidden_state[:, 0]
        assert torch.allclose(model.forward_image(pixels), expected, atol=ATOL)


def test_beit_classification_wrapper_weights_file_and_bin_load_the_same(tmp_path):
    hf = BeitForImageClassification(BeitConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, image_size=32,
        patch_size=8, use_absolute_position_embeddings=True, use_relative_position_bias=False,
        use_mean_pooling=False, layer_scale_init_value=0.1, num_labels=4))
    _randomise(hf, seed=3)
    hf.eval()
    hf.save_pretrained(tmp_path / "cls")
    state = read_state_dict(str(tmp_path / "cls" / "model.safetensors"))
    assert detect_checkpoint_family(state) == "beit"
    (tmp_path / "bin").mkdir()
    torch.save(hf.state_dict(), tmp_path / "bin" / "pytorch_model.bin")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf.beit(pixel_values=pixels).last_hidden_state[:, 0]
    for path in (tmp_path / "cls" / "model.safetensors", tmp_path / "bin"):
        model = _dmf_for_hf()
        report = load_pretrained_vit(model, str(path))
        assert not any(k.startswith("classifier") for k in report["unexpected"] + report["loaded"])
        with torch.no_grad():
            assert torch.allclose(model.forward_image(pixels), expected, atol=ATOL), path


def test_transformers5_module_names_load_like_saved_names(tmp_path):
    hf = _beit_like("beit")
    _randomise(hf, seed=4)
    in_memory = hf.state_dict()
    assert any(".attention.q_proj." in k for k in in_memory), "transformers >= 5 module names"
    path = tmp_path / "beit_module_names.pth"
    torch.save(in_memory, path)
    model = _dmf_for_hf()
    load_pretrained_vit(model, str(path))
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.forward_image(pixels), hf.eval()(pixel_values=pixels).last_hidden_state[:, 0],
                              atol=ATOL)


@pytest.mark.parametrize("shared", [False, True])
def test_relative_position_bias_is_dropped_with_warning_and_listed(tmp_path, caplog, shared):
    hf = _beit_like("beit", use_relative_position_bias=not shared, use_shared_relative_position_bias=shared)
    hf.save_pretrained(tmp_path / "relpos")
    with caplog.at_level(logging.WARNING, logger="fastreid_dmf.modeling.pretrained"):
        report = load_pretrained_vit(_dmf_for_hf(), str(tmp_path / "relpos"))
    tables = [k for k in report["unexpected"] if k.endswith("relative_position_bias_table")]
    assert len(tables) == (1 if shared else 2)
    assert "relative position bias" in caplog.text and tables[0] in caplog.text
    assert "blocks.1.attn.qkv.weight" in report["loaded"]


def test_mean_pooling_checkpoint_maps_pooler_layernorm_to_final_norm(tmp_path, caplog):
    hf = _beit_like("data2vec-vision", pooler=True, use_mean_pooling=True)
    _randomise(hf, seed=5)
    hf.save_pretrained(tmp_path / "mean")
    model = _dmf_for_hf()
    with caplog.at_level(logging.INFO, logger="fastreid_dmf.modeling.pretrained"):
        report = load_pretrained_vit(model, str(tmp_path / "mean"))
    assert "norm.weight" in report["loaded"] and "mean pooling" in caplog.text
    assert torch.equal(model.norm.weight, hf.pooler.layernorm.weight)


def test_layer_scale_checkpoint_into_model_without_layer_scale_names_the_key(tmp_path):
    _beit_like("beit").save_pretrained(tmp_path / "ls")
    with pytest.raises(ValueError, match="MODEL.DMF.LAYER_SCALE_INIT"):
        load_pretrained_vit(_dmf_for_hf(layer_scale=0.0), str(tmp_path / "ls"))


def test_eps_mismatch_with_config_json_is_warned(tmp_path, caplog):
    _beit_like("beit").save_pretrained(tmp_path / "eps")
    with caplog.at_level(logging.WARNING, logger="fastreid_dmf.modeling.pretrained"):
        load_pretrained_vit(_dmf_for_hf(eps=1e-6), str(tmp_path / "eps"))
    assert "MODEL.DMF.LN_EPS" in caplog.text


def test_hf_vit_reproduces_last_hidden_state_cls(tmp_path):
    hf = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                            image_size=32, patch_size=8, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    _randomise(hf, seed=6)
    hf.eval()
    hf.save_pretrained(tmp_path / "vit")
    model = _dmf_for_hf(layer_scale=0.0, eps=hf.config.layer_norm_eps)
    report = load_pretrained_vit(model, str(tmp_path / "vit"))
    assert "pooler.dense.weight" not in report["unexpected"] and not report["skipped_shape"]
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.forward_image(pixels), hf(pixel_values=pixels).last_hidden_state[:, 0],
                              atol=ATOL)


def test_folder_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pretrained_vit(_dmf_for_hf(), str(tmp_path))


def test_mmet_image_encoder_loads_timm_checkpoint_and_reproduces_timm_vision_transformer(tmp_path):
    from fastreid_dmf.modeling.mmet.image_encoder import MMETImageEncoder

    reference = _timm_vit()
    path = tmp_path / "timm_vit.pth"
    torch.save(reference.state_dict(), path)
    encoder = MMETImageEncoder(img_size=(224, 224), patch_size=16, stride_size=16, embed_dim=64, depth=2,
                               num_heads=2).eval()
    report = load_pretrained_vit(encoder, str(path))
    assert not report["skipped_shape"] and report["missing"] == ["mask_token"], "only MIM's mask token is new"
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(encoder(images)[1][:, 0], reference.forward_features(images)[:, 0], atol=ATOL)


@pytest.mark.parametrize("kind", ["beit", "data2vec-vision"])
def test_mmet_image_encoder_loads_beit_family_at_a_reid_grid(tmp_path, kind):
    from fastreid_dmf.modeling.mmet.image_encoder import MMETImageEncoder

    hf = _beit_like(kind)
    _randomise(hf, seed=3)
    hf.eval().save_pretrained(tmp_path / kind)
    same_size = MMETImageEncoder(img_size=(32, 32), patch_size=8, stride_size=8, embed_dim=32, depth=2,
                                 num_heads=2, ln_eps=1e-12, layer_scale_init=0.1).eval()
    load_pretrained_vit(same_size, str(tmp_path / kind))
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf(pixel_values=pixels).last_hidden_state[:, 0]
        assert torch.allclose(same_size(pixels)[1][:, 0], expected, atol=ATOL)
    reid = MMETImageEncoder(img_size=(64, 32), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2,
                            ln_eps=1e-12, layer_scale_init=0.1)
    report = load_pretrained_vit(reid, str(tmp_path / kind))
    assert "pos_embed" in report["loaded"] and reid.pos_embed.shape == (1, 1 + 8 * 4, 32)
