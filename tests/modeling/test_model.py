"""DMF backbone and meta-architecture: shapes, checkpoint compatibility, text masking."""

import pytest
import torch
from fastreid.modeling.backbones.vision_transformer import VisionTransformer as FastReIDViT
from fastreid.modeling.meta_arch import build_model
from fastreid.utils.events import EventStorage

from fastreid_dmf.modeling.dmf.backbone import DMFBackbone
from fastreid_dmf.modeling.pretrained import load_pretrained_vit
from tests.shared import MINILM, small_dmf_cfg

SMALL = dict(img_size=(32, 16), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2)


def test_image_path_shapes_and_fastreid_interface():
    model = DMFBackbone(**SMALL).eval()
    images = torch.randn(5, 3, 32, 16)
    assert model.forward_image(images).shape == (5, 32)
    assert model(images).shape == (5, 32, 1, 1)
    assert model.patch_embed.num_patches == 4 * 2


def test_identity_projection_reproduces_fastreid_vit_with_same_weights():
    torch.manual_seed(0)
    reference = FastReIDViT(img_size=(32, 16), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2,
                            qkv_bias=True).eval()
    model = DMFBackbone(**SMALL).eval()
    result = model.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys, "fast-reid ViT parameter names must all exist in the DMF backbone"
    assert set(result.missing_keys) == {"image_proj.weight", "image_proj.bias", "text_proj.weight",
                                        "text_proj.bias", "text_cls_token", "text_pos_embed"}
    images = torch.randn(4, 3, 32, 16)
    with torch.no_grad():
        assert torch.allclose(model(images), reference(images), atol=1e-5)


def test_image_projection_changes_width_when_image_dim_differs():
    model = DMFBackbone(**{**SMALL, "image_embed_dim": 48}).eval()
    assert model.patch_embed.proj.out_channels == 48
    assert model.image_proj.weight.shape == (32, 48)
    assert model.forward_image(torch.randn(2, 3, 32, 16)).shape == (2, 32)


def test_pretrained_square_grid_checkpoint_is_resized_and_heads_dropped(tmp_path):
    source = FastReIDViT(img_size=(32, 32), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2,
                         qkv_bias=True)
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["head.weight"] = torch.randn(10, 32)
    path = tmp_path / "vit.pth"
    torch.save({"model": state}, path)
    model = DMFBackbone(**SMALL)
    report = load_pretrained_vit(model, str(path))
    assert "head.weight" not in report["unexpected"] and "head.weight" not in report["loaded"]
    assert "pos_embed" in report["loaded"]
    assert model.pos_embed.shape == (1, 1 + 4 * 2, 32)
    assert torch.equal(model.pos_embed[:, 0], source.pos_embed[:, 0]), "the [cls] position is kept"
    assert torch.equal(model.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)


def test_pretrained_shape_mismatch_is_listed(tmp_path):
    wide = FastReIDViT(img_size=(32, 16), patch_size=8, stride_size=8, embed_dim=64, depth=1, num_heads=2)
    path = tmp_path / "wide.pth"
    torch.save(wide.state_dict(), path)
    with pytest.raises(ValueError, match="no key matches"):
        load_pretrained_vit(DMFBackbone(**SMALL), str(path))
    with pytest.raises(FileNotFoundError, match="MODEL.BACKBONE.PRETRAIN_PATH"):
        load_pretrained_vit(DMFBackbone(**SMALL), str(tmp_path / "missing.pth"))


def test_text_padding_does_not_change_a_description_feature(text_encoder):
    model = DMFBackbone(**SMALL, text_dim=text_encoder.hidden_size, max_text_tokens=32,
                        text_encoder=text_encoder).eval()
    short = "a man in a red jacket"
    long = "a woman with long hair, who wears blue upper-body clothes, black trousers and light shoes"
    with torch.no_grad():
        alone = model.forward_text([short])
        batched = model.forward_text([short, long])
    assert batched.shape == (2, 32)
    assert torch.allclose(alone[0], batched[0], atol=1e-5)
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)


def test_text_features_are_cached_per_description(text_encoder, monkeypatch):
    calls = []
    original = text_encoder.encode
    monkeypatch.setattr(text_encoder, "encode", lambda texts, device: calls.append(list(texts))
                        or original(texts, device))
    texts = ["cached description one", "cached description two"]
    first, _ = text_encoder(texts)
    second, _ = text_encoder(list(reversed(texts)))
    assert calls == [sorted(texts)], "the encoder runs once, for the descriptions not yet cached"
    assert torch.equal(first[0], second[1])


def test_frozen_encoder_is_not_in_state_dict_or_parameters(text_encoder):
    model = DMFBackbone(**SMALL, text_dim=384, max_text_tokens=32, text_encoder=text_encoder)
    assert not any("text_encoder" in k for k in model.state_dict())
    assert all(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_text_dim_must_match_encoder(text_encoder):
    with pytest.raises(ValueError, match="MODEL.DMF.TEXT_DIM=100"):
        DMFBackbone(**SMALL, text_dim=100, text_encoder=text_encoder)


def test_missing_text_encoder_path_is_a_clear_error(tmp_path):
    from fastreid_dmf.modeling.text import TextTokenEncoder

    with pytest.raises(FileNotFoundError, match="MODEL.DMF.TEXT_ENCODER.NAME"):
        TextTokenEncoder(str(tmp_path / "no-such-encoder"))
    with pytest.raises(FileNotFoundError, match="not installed"):
        TextTokenEncoder("pkg://no_such_package_xyz/model")


def test_dmf_training_step_mixes_images_and_texts():

    model = build_model(small_dmf_cfg(MINILM)).train()
    images = torch.rand(6, 3, 32, 16) * 255
    before = images.clone()
    batch = {"images": images, "targets": torch.tensor([0, 0, 1, 1, 2, 2]),
             "modalities": torch.tensor([0, 1, 0, 1, 1, 0]),
             "texts": ["", "person zero in red", "", "person one in blue", "person two in green", ""]}
    with EventStorage(0):
        losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_triplet"}
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.text_proj.weight.grad.abs().sum() > 0, "text samples reach the text projection"
    assert model.backbone.image_proj.weight.grad.abs().sum() > 0, "image samples reach the image projection"
    assert torch.equal(images, before), "inputs are not normalised in place"


def test_inference_returns_features_before_or_after_bnneck():
    cfg = small_dmf_cfg()
    model = build_model(cfg).eval()
    model.heads.bottleneck[0].running_mean.fill_(0.5)  # fresh BN statistics would be the identity
    images = torch.rand(4, 3, 32, 16) * 255
    with torch.no_grad():
        before = model({"images": images})
        model.test_feat = "after"
        after = model({"images": images})
        expected_before = model.encode_images(images)
    assert before.shape == after.shape == (4, 32)
    assert torch.allclose(before, expected_before)
    assert not torch.allclose(before, after)


def test_text_samples_without_encoder_raise():
    model = build_model(small_dmf_cfg()).train()
    batch = {"images": torch.zeros(4, 3, 32, 16), "targets": torch.tensor([0, 0, 1, 1]),
             "modalities": torch.tensor([1, 0, 1, 0]), "texts": ["a", "", "b", ""]}
    with pytest.raises(RuntimeError, match="MODEL.DMF.TEXT_ENCODER.NAME"), EventStorage(0):
        model(batch)


def test_pretrained_partial_shape_mismatch_lists_skipped_keys(tmp_path):
    source = FastReIDViT(img_size=(32, 16), patch_size=8, stride_size=8, embed_dim=32, depth=2, num_heads=2,
                         qkv_bias=True)
    state = source.state_dict()
    state["blocks.0.mlp.fc1.weight"] = torch.randn(7, 32)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    model = DMFBackbone(**SMALL)
    report = load_pretrained_vit(model, str(path))
    assert report["skipped_shape"] == ["blocks.0.mlp.fc1.weight: (7, 32) in checkpoint vs (128, 32) in model"]
    assert "blocks.0.mlp.fc1.weight" not in report["loaded"] and "blocks.1.mlp.fc1.weight" in report["loaded"]
