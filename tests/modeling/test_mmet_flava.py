"""MMET started from FLAVA: a tiny random ``transformers.FlavaModel`` folder is the oracle.

MMET's image, text and fusion encoders must compute what ``FlavaModel`` computes with the same weights
(``MODEL.MMET.FLAVA_PATH``, :mod:`fastreid_dmf.modeling.mmet.flava`); the position embedding is resized to
another Re-ID grid; shapes that disagree with the folder and non-FLAVA folders are refused by
``check_dmf_config``; the DALL-E dVAE MIM target (:class:`~fastreid_dmf.modeling.mmet.heads.DVAETargets`)
is a tiny random ``FlavaImageCodebook`` here. Nothing is downloaded: the tokenizer is the shipped MiniLM's
(BERT uncased, 30522 words = FLAVA's vocabulary).
"""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

from fastreid_dmf.config import check_dmf_config, derive_feat_dim, load_config
from fastreid_dmf.modeling.mmet.backbone import build_mmet_backbone
from fastreid_dmf.modeling.mmet.flava import load_flava_weights
from fastreid_dmf.modeling.mmet.heads import DVAETargets
from fastreid_dmf.modeling.text.loader import resolve_text_encoder_path
from fastreid_dmf.multimodal_batch import IMAGE
from tests.shared import DEMO_CONFIGS, MINILM

ATOL = 1e-5
LN_EPS = 1e-12  # FLAVA's layer_norm_eps
TEXTS = ["a man in a red jacket", "a woman with long black hair wears a blue dress, white shoes and carries a bag"]
DVAE_VOCAB = 16


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random (FLAVA initialises cls / mask tokens and position embeddings to zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith("logit_scale"):
                continue
            if "norm" in name.lower():
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            else:
                param.copy_(0.05 * noise)


@pytest.fixture(scope="module")
def flava(tmp_path_factory):
    """A tiny random ``FlavaModel`` (eval) saved with the MiniLM tokenizer beside it: ``(model, folder)``."""
    from transformers import AutoTokenizer, FlavaConfig, FlavaModel

    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 layer_norm_eps=LN_EPS)
    config = FlavaConfig(
        image_config=dict(shape, image_size=32, patch_size=8),
        text_config=dict(shape, vocab_size=30522, max_position_embeddings=64),
        multimodal_config=dict(shape),
        projection_dim=32)
    torch.manual_seed(0)
    model = FlavaModel(config).eval()
    _randomise(model, seed=0)
    folder = tmp_path_factory.mktemp("flava")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_text_encoder_path(MINILM), local_files_only=True).save_pretrained(folder)
    return model, str(folder)


def mmet_cfg(flava_path: str, *opts):
    """The demo MMET config shaped as the tiny FLAVA (32x32 images, 4x4 patches), plus ``opts``."""
    cfg = load_config(os.path.join(DEMO_CONFIGS, "Base-MMET-demo.yml"), [
        "MODEL.MMET.FLAVA_PATH", flava_path, "INPUT.SIZE_TRAIN", [32, 32], "INPUT.SIZE_TEST", [32, 32],
        "MODEL.DMF.PATCH_SIZE", 8, "MODEL.BACKBONE.STRIDE_SIZE", (8, 8), "MODEL.DMF.EMBED_DIM", 32,
        "MODEL.DMF.DEPTH", 2, "MODEL.DMF.NUM_HEADS", 4, "MODEL.DMF.MLP_RATIO", 2.0, "MODEL.DMF.LN_EPS", LN_EPS,
        "MODEL.MMET.FUSION.DIM", 32, "MODEL.MMET.FUSION.DEPTH", 2, "MODEL.MMET.FUSION.NUM_HEADS", 4,
        "MODEL.BACKBONE.PRETRAIN", False, "MODEL.HEADS.NUM_CLASSES", 4,
        "MODEL.DMF.TEXT_ENCODER.NAME", "", *opts])
    derive_feat_dim(cfg)
    return cfg


@pytest.fixture(scope="module")
def mmet(flava):
    """The full MMET model (fast-reid ``build_model``, eval) on the FLAVA folder, and its config."""
    from fastreid.modeling import build_model

    cfg = mmet_cfg(flava[1])
    check_dmf_config(cfg)
    return build_model(cfg).eval(), cfg


def _inputs(cfg, seed: int = 1):
    """Raw 0..255 images (2, 3, 32, 32), their normalised pixels, and a patch mask (2, 16)."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 256, (2, 3, 32, 32), generator=generator).float()
    mean = torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(cfg.MODEL.PIXEL_STD).view(1, 3, 1, 1)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, [1, 2, 5, 6]] = True
    mask[1, [9, 10, 11, 15]] = True
    return raw, (raw - mean) / std, mask


def test_mmet_hidden_states_and_projections_equal_flava_model_with_the_same_weights(flava, mmet):
    flava_model, _ = flava
    model, cfg = mmet
    backbone = model.backbone
    standalone = build_mmet_backbone(cfg).state_dict()
    assert all(torch.equal(value, standalone[key]) for key, value in backbone.state_dict().items())
    raw, pixels, patch_mask = _inputs(cfg)
    tokens = backbone.text_encoder.tokenize(TEXTS)
    valid = tokens["attention_mask"].bool()
    assert not valid.all(), "the two descriptions pad to the longer one"
    unmasked = None
    for mask in (None, patch_mask):
        with torch.no_grad():
            theirs = flava_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                                 pixel_values=pixels, bool_masked_pos=mask)
            image_hidden, image_out = backbone.image_encoder(pixels, mask)
            text_hidden, text_out = backbone.text_encoder(tokens["input_ids"], tokens["attention_mask"])
            fused = backbone.fusion(image_hidden, text_hidden, tokens["attention_mask"])
        torch.testing.assert_close(image_out, theirs.image_embeddings, atol=ATOL, rtol=0)
        torch.testing.assert_close(text_out[valid], theirs.text_embeddings[valid], atol=ATOL, rtol=0)
        torch.testing.assert_close(text_out, theirs.text_embeddings, atol=ATOL, rtol=0)  # padded positions too
        torch.testing.assert_close(fused, theirs.multimodal_embeddings, atol=ATOL, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(backbone.image_feature(image_out),
                                       flava_model.image_projection(theirs.image_embeddings)[:, 0], atol=ATOL, rtol=0)
            torch.testing.assert_close(backbone.text_feature(text_out),
                                       flava_model.text_projection(theirs.text_embeddings)[:, 0], atol=ATOL, rtol=0)
        if mask is None:
            unmasked = theirs.image_embeddings
        else:  # the mask token replaced the masked patches
            assert not torch.allclose(theirs.image_embeddings, unmasked, atol=1e-3)
    # The model's public API on raw 0..255 images normalises them as FLAVA's pixels above (mask off).
    with torch.no_grad():
        theirs = flava_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                             pixel_values=pixels)
        image_feature = flava_model.image_projection(theirs.image_embeddings)[:, 0]
        text_feature = flava_model.text_projection(theirs.text_embeddings)[:, 0]
        torch.testing.assert_close(model.encode_images(raw), image_feature, atol=ATOL, rtol=0)
        torch.testing.assert_close(model.encode_texts(TEXTS), text_feature, atol=ATOL, rtol=0)
        torch.testing.assert_close(model.encode_pairs(raw, TEXTS), theirs.multimodal_embeddings[:, 0], atol=ATOL,
                                   rtol=0)
        torch.testing.assert_close(model({"images": raw}), model.encode_images(raw))


def test_every_backbone_tensor_comes_from_the_flava_folder_and_only_poolers_are_unused(flava):
    _, folder = flava
    backbone = build_mmet_backbone(mmet_cfg(folder))
    report = load_flava_weights(backbone, folder)
    assert report["missing"] == []
    assert report["unused"] and all(".pooler." in f".{key}" for key in report["unused"]), report["unused"]
    assert backbone.logit_scale.item() == pytest.approx(flava[0].logit_scale.item())


def test_flava_position_embedding_is_resized_to_another_reid_grid_and_other_tensors_load_unchanged(flava):
    flava_model, folder = flava
    square = build_mmet_backbone(mmet_cfg(folder)).state_dict()
    tall = build_mmet_backbone(mmet_cfg(folder, "INPUT.SIZE_TRAIN", [64, 32], "INPUT.SIZE_TEST", [64, 32]))
    assert tall.image_encoder.grid == (8, 4)
    pos = tall.image_encoder.pos_embed.detach()
    theirs = flava_model.image_model.embeddings.position_embeddings.detach()  # (1, 1 + 4x4, 32)
    assert pos.shape == (1, 1 + 32, 32)
    torch.testing.assert_close(pos[:, 0], theirs[:, 0], atol=0, rtol=0)
    grid = theirs[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(8, 4), mode="bilinear", align_corners=False)
    torch.testing.assert_close(pos[:, 1:], resized.permute(0, 2, 3, 1).reshape(1, 32, 32), atol=1e-6, rtol=0)
    state = tall.state_dict()
    assert set(state) == set(square)
    for key, value in state.items():
        if key != "image_encoder.pos_embed":
            assert torch.equal(value, square[key]), key
    embeddings = flava_model.image_model.embeddings
    assert torch.equal(state["image_encoder.patch_embed.proj.weight"], embeddings.patch_embeddings.projection.weight)
    assert torch.equal(state["image_encoder.mask_token"], embeddings.mask_token)
    assert torch.equal(state["fusion.cls_token"], flava_model.multimodal_model.cls_token)
    with torch.no_grad():
        _, out = tall.image_encoder(torch.randn(2, 3, 64, 32))
    assert out.shape == (2, 33, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("opts, key", [
    (("MODEL.DMF.EMBED_DIM", 64, "MODEL.MMET.FUSION.DIM", 64), "MODEL.DMF.EMBED_DIM"),
    (("MODEL.MMET.FUSION.DEPTH", 3), "MODEL.MMET.FUSION.DEPTH"),
    (("MODEL.DMF.NUM_HEADS", 2), "MODEL.DMF.NUM_HEADS"),
    (("MODEL.DMF.LN_EPS", 1e-6), "MODEL.DMF.LN_EPS"),
])
def test_check_dmf_config_refuses_mmet_shapes_that_differ_from_the_flava_folder_naming_the_key(flava, opts, key):
    cfg = mmet_cfg(flava[1], *opts)
    with pytest.raises(ValueError, match="MODEL.MMET.FLAVA_PATH") as err:
        check_dmf_config(cfg)
    assert key in str(err.value)


def test_a_folder_that_is_not_a_flava_folder_is_refused_naming_flava_path(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="MODEL.MMET.FLAVA_PATH"):
        check_dmf_config(mmet_cfg(missing))
    with pytest.raises(FileNotFoundError, match="MODEL.MMET.FLAVA_PATH"):
        build_mmet_backbone(mmet_cfg(missing))
    minilm = resolve_text_encoder_path(MINILM)  # config.json (model_type "bert") + weights + tokenizer
    for call in (check_dmf_config, build_mmet_backbone):
        with pytest.raises(ValueError, match="MODEL.MMET.FLAVA_PATH.*model_type 'bert'"):
            call(mmet_cfg(minilm))
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps({"model_type": "flava"}))
    with pytest.raises(ValueError, match="MODEL.MMET.FLAVA_PATH.*no weights file"):
        check_dmf_config(mmet_cfg(str(no_weights)))


# ----------------------------------------------------------------------------------------- dVAE targets
@pytest.fixture(scope="module")
def codebook_folder(tmp_path_factory):
    """A tiny random ``FlavaImageCodebook`` (16 codes) saved to a folder."""
    from transformers import FlavaImageCodebook, FlavaImageCodebookConfig

    torch.manual_seed(0)
    codebook = FlavaImageCodebook(FlavaImageCodebookConfig(hidden_size=4, num_groups=4, num_blocks_per_group=1,
                                                           vocab_size=DVAE_VOCAB))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # unit-variance weights, no biases: the ids vary over the image (not one constant code)
        for name, param in codebook.named_parameters():
            param.copy_(torch.zeros_like(param) if name.endswith("bias") else torch.randn(param.shape,
                                                                                          generator=generator))
    folder = tmp_path_factory.mktemp("codebook")
    codebook.save_pretrained(folder)
    return str(folder)


def test_dvae_targets_are_the_codebook_indices_of_the_mapped_downsized_image(codebook_folder):
    from transformers import FlavaImageCodebook

    targets = DVAETargets(codebook_folder, (4, 2))
    assert targets.vocab_size == DVAE_VOCAB
    assert list(targets.parameters()) == [] and targets.state_dict() == {}
    colours = torch.randint(0, 256, (3, 3, 4, 2), generator=torch.Generator().manual_seed(2)).float()
    images = F.interpolate(colours, scale_factor=16, mode="nearest")  # 0..255, 64x32, 16-pixel colour blocks
    ids = targets(images)
    assert ids.dtype == torch.int64 and ids.shape == (3, 4 * 2)
    assert ids.min() >= 0 and ids.max() < DVAE_VOCAB
    assert ids.unique().numel() > 1
    codebook = FlavaImageCodebook.from_pretrained(codebook_folder, local_files_only=True).eval()
    small = F.interpolate(images / 255.0, size=(32, 16), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = codebook.get_codebook_indices(0.8 * small + 0.1)  # DALL-E map_pixels, eps 0.1
    assert expected.shape == (3, 4, 2)
    assert torch.equal(ids, expected.flatten(1))


def test_mmet_with_dvae_mim_target_trains_a_visual_batch_with_a_finite_mim_loss(flava, codebook_folder):
    from fastreid.modeling import build_model
    from fastreid.utils.events import EventStorage

    cfg = mmet_cfg(flava[1], "MODEL.MMET.MIM.TARGET", "dvae", "MODEL.MMET.MIM.DVAE_PATH", codebook_folder)
    check_dmf_config(cfg)
    model = build_model(cfg).train()
    assert model.dvae is not None and model.mim_head.decoder.out_features == DVAE_VOCAB
    assert not any(key.startswith("dvae") for key in model.state_dict())
    raw, _, patch_mask = _inputs(cfg, seed=3)
    batch = {"images": raw.repeat(2, 1, 1, 1), "targets": torch.tensor([0, 1, 0, 1]),
             "modalities": torch.full((4,), IMAGE), "patch_mask": patch_mask.repeat(2, 1)}
    with EventStorage(0):  # fast-reid's loss logs accuracy there
        losses = model(batch)
    assert torch.isfinite(losses["loss_mim"])
    losses["loss_mim"].backward()
    assert model.mim_head.decoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dvae_path", ["", "empty"])
def test_check_dmf_config_refuses_a_dvae_target_without_a_codebook_folder(flava, tmp_path, dvae_path):
    path = str(tmp_path) if dvae_path == "empty" else ""
    cfg = mmet_cfg(flava[1], "MODEL.MMET.MIM.TARGET", "dvae", "MODEL.MMET.MIM.DVAE_PATH", path)
    with pytest.raises(ValueError, match="MODEL.MMET.MIM.DVAE_PATH"):
        check_dmf_config(cfg)
