"""A tiny MMET built by fast-reid's ``build_model``: inference, task losses, Re-ID features, config errors.

The model is ``configs/demo/Base-MMET-demo.yml`` shrunk (image encoder 32 wide, 1 block; fusion 24 wide, so
D_m = FUSION.DIM differs from EMBED_DIM; 32x16 images in 8-pixel patches: a 4x2 grid) with a tiny random
BERT from the text fixtures. Batches are built as the data path builds them (``MaskedMultimodalModeling``
and fast-reid's collator).
"""

import os
import re

import pytest
import torch
from fastreid.data.build import fast_batch_collator
from fastreid.modeling.meta_arch import build_model
from fastreid.utils.events import EventStorage

from fastreid_dmf.config import check_dmf_config, load_config
from fastreid_dmf.data.mmm import MaskedMultimodalModeling
from fastreid_dmf.modeling.mmet.meta_arch import mismatched_partners
from fastreid_dmf.multimodal_batch import IMAGE, PAIR, TEXT
from tests.modeling.text_fixtures import SENTENCES, make_text_encoder
from tests.shared import DEMO_CONFIGS

EMBED_DIM, FUSION_DIM = 32, 24
GRID = (4, 2)
TARGETS = (0, 0, 1, 1)
REID_LOSSES = {"loss_cls", "loss_triplet"}
MMM_LOSSES = {IMAGE: {"loss_mim"}, TEXT: {"loss_mlm"},
              PAIR: {"loss_mm_mim", "loss_mm_mlm", "loss_itm", "loss_contrastive"}}


def tiny_opts(text_encoder: str) -> list:
    return ["MODEL.DMF.EMBED_DIM", EMBED_DIM, "MODEL.DMF.DEPTH", 1, "MODEL.DMF.NUM_HEADS", 2,
            "MODEL.MMET.FUSION.DIM", FUSION_DIM, "MODEL.MMET.FUSION.DEPTH", 1, "MODEL.MMET.FUSION.NUM_HEADS", 2,
            "INPUT.SIZE_TRAIN", [32, 16], "INPUT.SIZE_TEST", [32, 16], "MODEL.DMF.PATCH_SIZE", 8,
            "MODEL.BACKBONE.STRIDE_SIZE", (8, 8), "MODEL.HEADS.NUM_CLASSES", 4,
            "MODEL.DMF.TEXT_ENCODER.NAME", text_encoder, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", 32,
            "MODEL.MMET.MASK.MIN_BLOCK", 1]


def tiny_cfg(text_encoder: str, *opts):
    return load_config(os.path.join(DEMO_CONFIGS, "Base-MMET-demo.yml"), [*tiny_opts(text_encoder), *opts])


def build(text_encoder: str, *opts):
    torch.manual_seed(0)
    return build_model(tiny_cfg(text_encoder, *opts))


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_text_encoder(str(tmp_path_factory.mktemp("mmet_bert")), "bert")


@pytest.fixture(scope="module")
def model(tiny_bert):
    return build(tiny_bert)


def _images(count=4):
    """``count`` random images in 0..255, the same for the same count."""
    return torch.rand(count, 3, 32, 16, generator=torch.Generator().manual_seed(1)) * 255


def make_batch(model, modalities, masked=True, targets=TARGETS, texts=None):
    """A collated batch as the data path yields it: one task per row, MMM masks when ``masked``."""
    texts = texts or SENTENCES[:len(modalities)]
    mmm = MaskedMultimodalModeling(model.backbone.text_encoder.tokenizer, 32, GRID, image_ratio=0.4, min_block=1,
                                   seed=0)
    images = _images(len(modalities))
    samples = []
    for row, modality in enumerate(modalities):
        has_image = modality in (IMAGE, PAIR)
        sample = {"images": images[row] if has_image else torch.zeros(3, 32, 16), "targets": targets[row],
                  "camids": 0, "img_paths": f"{row}.jpg", "modalities": modality, "texts": texts[row]}
        if masked:
            sample.update(mmm.sample_masks(modality, texts[row], row, 0))
        samples.append(sample)
    return fast_batch_collator(samples)


def train_losses(model, batch):
    model.train()
    with EventStorage(0):
        return model(batch)


class HeadInput:
    """Captures the features the meta-architecture hands to its BNNeck head (forward pre-hook)."""

    def __init__(self, model):
        self.features = None
        self._handle = model.heads.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.features = args[0][:, :, 0, 0].detach().clone()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def train_without_dropout(model):
    """Training mode with the text encoder's dropout off (the image and fusion encoders have none here)."""
    model.train()
    model.backbone.text_encoder.eval()
    return model


# ---------------------------------------------------------------- inference


def test_image_only_inference_needs_no_captions_and_returns_the_visual_feature_of_width_d_m(model):
    model.eval()
    images = _images()
    with torch.no_grad():
        features = model({"images": images})  # a target-domain test batch: no texts, no modalities
        assert features.shape == (4, FUSION_DIM)
        torch.testing.assert_close(features, model.encode_images(images))
        torch.testing.assert_close(model(images), features)
        other = model.encode_images(images.flip(0))
    torch.testing.assert_close(other, features.flip(0))


def test_fused_test_input_without_descriptions_is_refused_naming_the_key(tiny_bert):
    fused = build(tiny_bert, "MODEL.MMET.TEST_INPUT", "fused").eval()
    with torch.no_grad():
        for batch in ({"images": _images()}, {"images": _images(), "texts": ["a man", "", "a woman", "a bag"]}):
            with pytest.raises(ValueError, match=r"MODEL\.MMET\.TEST_INPUT='fused'"):
                fused(batch)


def test_fused_test_input_returns_encode_pairs_which_depends_on_the_description(tiny_bert):
    fused = build(tiny_bert, "MODEL.MMET.TEST_INPUT", "fused").eval()
    images, texts = _images(), SENTENCES[:4]
    with torch.no_grad():
        features = fused({"images": images, "texts": texts})
        assert features.shape == (4, FUSION_DIM)
        torch.testing.assert_close(features, fused.encode_pairs(images, texts))
        assert not torch.allclose(features, fused.encode_pairs(images, SENTENCES[1:5]), atol=1e-4)
        assert not torch.allclose(features, fused.encode_images(images), atol=1e-4)


# ---------------------------------------------------------------- training: which losses each task gives


@pytest.mark.parametrize("modality", [IMAGE, TEXT, PAIR], ids=["visual", "textual", "visual_textual"])
def test_a_masked_batch_of_each_task_gives_the_reid_and_that_tasks_mmm_losses_all_finite(model, modality):
    model.zero_grad(set_to_none=True)
    losses = train_losses(model, make_batch(model, [modality] * 4))
    assert set(losses) == REID_LOSSES | MMM_LOSSES[modality]
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    sum(losses.values()).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    head = {IMAGE: "mim_head", TEXT: "mlm_head", PAIR: "itm_head"}[modality]
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(head)), head
    branch = "backbone.image_encoder." if modality == IMAGE else "backbone.text_encoder."
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(branch))
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    if modality == IMAGE:
        assert all(grads[n] is None for n in grads if n.startswith("backbone.text_encoder."))


def test_a_mixed_batch_gives_the_losses_of_every_task_present(model):
    losses = train_losses(model, make_batch(model, [IMAGE, TEXT, PAIR, PAIR], targets=(0, 1, 0, 1)))
    assert set(losses) == REID_LOSSES | MMM_LOSSES[IMAGE] | MMM_LOSSES[TEXT] | MMM_LOSSES[PAIR]
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize("modality", [IMAGE, TEXT], ids=["visual", "textual"])
def test_a_batch_without_masks_gives_only_the_reid_losses(model, modality):
    losses = train_losses(model, make_batch(model, [modality] * 4, masked=False))
    assert set(losses) == REID_LOSSES
    losses = train_losses(model, make_batch(model, [modality] * 4, masked=True))
    assert MMM_LOSSES[modality] <= set(losses)


def test_a_fastreid_image_batch_without_modalities_or_masks_trains_on_the_reid_losses(model):
    """Fine-tuning on an image dataset: fast-reid's own batches have neither ``modalities`` nor masks."""
    batch = {"images": _images(), "targets": torch.tensor(TARGETS), "camids": torch.zeros(4, dtype=torch.int64)}
    losses = train_losses(model, batch)
    assert set(losses) == REID_LOSSES and all(torch.isfinite(v) for v in losses.values())


def test_loss_weights_remove_a_loss_at_zero_and_scale_it_otherwise(model, tiny_bert):
    weighted = build(tiny_bert, "MODEL.MMET.LOSSES.MLM", 0.0, "MODEL.MMET.LOSSES.ITM", 0.0,
                     "MODEL.MMET.LOSSES.MIM", 0.0, "MODEL.MMET.LOSSES.MM_MIM", 3.0,
                     "MODEL.MMET.LOSSES.CONTRASTIVE", 0.5)
    weighted.load_state_dict(model.state_dict())
    for module in (model, weighted):
        train_without_dropout(module)
    batch = make_batch(model, [PAIR] * 4)
    with EventStorage(0):
        base, scaled = model(batch), weighted(batch)
        textual = weighted(make_batch(model, [TEXT] * 4))
        visual = weighted(make_batch(model, [IMAGE] * 4))
    assert set(scaled) == REID_LOSSES | {"loss_mm_mim", "loss_mm_mlm", "loss_contrastive"}
    torch.testing.assert_close(scaled["loss_mm_mim"], 3.0 * base["loss_mm_mim"])
    torch.testing.assert_close(scaled["loss_contrastive"], 0.5 * base["loss_contrastive"])
    torch.testing.assert_close(scaled["loss_mm_mlm"], base["loss_mm_mlm"])
    torch.testing.assert_close(scaled["loss_cls"], base["loss_cls"])
    assert set(textual) == set(visual) == REID_LOSSES


# ---------------------------------------------------------------- the Re-ID feature of each task


def test_the_reid_feature_of_each_task_is_the_cls_of_its_branch(model):
    train_without_dropout(model)
    modalities = [TEXT, IMAGE, PAIR, TEXT, PAIR, IMAGE]
    texts = SENTENCES + ["a child in a yellow raincoat"]
    batch = make_batch(model, modalities, masked=False, targets=(0, 1, 2, 0, 1, 2), texts=texts)
    with HeadInput(model) as head, EventStorage(0), torch.no_grad():
        model(batch)
        images = batch["images"]
        expected = torch.empty(6, FUSION_DIM)
        for modality, encode in ((IMAGE, lambda i: model.encode_images(images[i])),
                                 (TEXT, lambda i: model.encode_texts([texts[j] for j in i])),
                                 (PAIR, lambda i: model.encode_pairs(images[i], [texts[j] for j in i]))):
            rows = [r for r, m in enumerate(modalities) if m == modality]
            expected[rows] = encode(rows)
    assert head.features.shape == (6, FUSION_DIM)
    torch.testing.assert_close(head.features, expected, atol=1e-5, rtol=1e-4)


def test_encode_functions_return_the_projected_cls_token_of_each_branch(model):
    model.eval()
    backbone, images, texts = model.backbone, _images(), SENTENCES[:4]
    with torch.no_grad():
        normalised = (images - model.pixel_mean) / model.pixel_std
        image_hidden, image_out = backbone.image_encoder(normalised)
        tokens = backbone.text_encoder.tokenizer(texts, padding=True, return_tensors="pt")
        text_hidden, text_out = backbone.text_encoder(tokens["input_ids"], tokens["attention_mask"])
        fused = backbone.fusion(image_hidden, text_hidden, tokens["attention_mask"])
        torch.testing.assert_close(model.encode_images(images), backbone.image_projection(image_out[:, 0]))
        torch.testing.assert_close(model.encode_texts(texts), backbone.text_projection(text_out[:, 0]))
        torch.testing.assert_close(model.encode_pairs(images, texts), fused[:, 0])
        # [cls] is not any token: the mean over tokens is another vector.
        assert not torch.allclose(backbone.text_projection(text_out.mean(1)), model.encode_texts(texts), atol=1e-4)


def test_the_textual_reid_feature_is_encode_texts_of_the_unmasked_descriptions_when_no_masks_are_given(model):
    train_without_dropout(model)
    texts = SENTENCES[1:5]
    with torch.no_grad():
        unmasked = model.encode_texts(texts)
        with HeadInput(model) as head, EventStorage(0):
            model(make_batch(model, [TEXT] * 4, masked=False, texts=texts))
        torch.testing.assert_close(head.features, unmasked, atol=1e-5, rtol=1e-4)
        with HeadInput(model) as head, EventStorage(0):
            model(make_batch(model, [TEXT] * 4, masked=True, texts=texts))
    assert not torch.allclose(head.features, unmasked, atol=1e-4), "with masks, the masked tokens are encoded"


# ---------------------------------------------------------------- ITM negatives


def test_mismatched_partners_are_samples_of_another_identity_drawn_at_random():
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 2, 5])
    seen = set()
    for seed in range(60):
        partners = mismatched_partners(targets, torch.Generator().manual_seed(seed))
        assert partners.dtype == torch.int64 and partners.shape == targets.shape
        assert (targets[partners] != targets).all()
        seen.add(int(partners[0]))
    assert seen == {2, 3, 4, 5, 6, 7}, "every sample of another identity can be sample 0's partner"


def test_mismatched_partners_is_none_for_a_single_identity():
    assert mismatched_partners(torch.tensor([3, 3, 3, 3])) is None
    assert mismatched_partners(torch.tensor([1])) is None
    assert mismatched_partners(torch.tensor([1, 2])).tolist() == [1, 0]


# ---------------------------------------------------------------- config errors


def pretrain_cfg(*opts):
    return load_config(os.path.join(DEMO_CONFIGS, "mmet_pretrain.yml"), list(opts))


def test_the_demo_pretraining_config_passes_the_checks():
    check_dmf_config(pretrain_cfg())


@pytest.mark.parametrize("opts, key", [
    (("MODEL.MMET.MASK.IMAGE_RATIO", 0.0), "MODEL.MMET.MASK.IMAGE_RATIO=0.0"),
    (("MODEL.MMET.MASK.IMAGE_RATIO", 1.2), "MODEL.MMET.MASK.IMAGE_RATIO=1.2"),
    (("MODEL.MMET.MASK.TEXT_RATIO", 0.0), "MODEL.MMET.MASK.TEXT_RATIO=0.0"),
    (("MODEL.MMET.MIM.TARGET", "dvae"), "MODEL.MMET.MIM.DVAE_PATH=''"),
    (("DATALOADER.TASK_WEIGHTS", (1.0, 1.0)), "DATALOADER.TASK_WEIGHTS=(1.0, 1.0)"),
    (("DATALOADER.TASK_WEIGHTS", (0.0, 0.0, 0.0)), "DATALOADER.TASK_WEIGHTS=(0.0, 0.0, 0.0)"),
    (("MODEL.BACKBONE.STRIDE_SIZE", (12, 12)), "MODEL.BACKBONE.STRIDE_SIZE=(12, 12)"),
    (("MODEL.META_ARCHITECTURE", "DMF", "MODEL.BACKBONE.NAME", "build_dmf_backbone"),
     "DATALOADER.SAMPLER_TRAIN='TaskIdentitySampler'"),
], ids=["image_ratio_0", "image_ratio_1.2", "text_ratio_0", "dvae_without_path", "two_task_weights",
        "zero_task_weights", "overlapping_patches_for_pixel_mim", "task_sampler_with_dmf"])
def test_mmet_config_errors_name_the_key(opts, key):
    with pytest.raises(ValueError, match="config " + re.escape(key)):
        check_dmf_config(pretrain_cfg(*opts))


def test_the_task_sampler_is_refused_for_dmf_as_mmet_only():
    cfg = pretrain_cfg("MODEL.META_ARCHITECTURE", "DMF", "MODEL.BACKBONE.NAME", "build_dmf_backbone")
    with pytest.raises(ValueError, match="TaskIdentitySampler only with MODEL.META_ARCHITECTURE MMET"):
        check_dmf_config(cfg)


def test_the_model_refuses_pixel_mim_over_overlapping_patches_and_dvae_without_a_folder():
    with pytest.raises(ValueError, match=r"MODEL\.BACKBONE\.STRIDE_SIZE"):
        build("", "MODEL.BACKBONE.STRIDE_SIZE", (4, 4))
    with pytest.raises(ValueError, match=r"MODEL\.MMET\.MIM\.DVAE_PATH"):
        build("", "MODEL.MMET.MIM.TARGET", "dvae")


def test_derive_feat_dim_sets_feat_dim_to_the_fusion_width_which_the_built_head_uses(model):
    cfg = load_config(os.path.join(DEMO_CONFIGS, "Base-MMET-demo.yml"),
                      ["MODEL.MMET.FUSION.DIM", 96, "MODEL.BACKBONE.FEAT_DIM", 7])
    assert cfg.MODEL.BACKBONE.FEAT_DIM == 96
    default = load_config(os.path.join(DEMO_CONFIGS, "Base-MMET-demo.yml"))
    assert default.MODEL.MMET.FUSION.DIM == 0 and default.MODEL.BACKBONE.FEAT_DIM == default.MODEL.DMF.EMBED_DIM
    assert model.backbone.embed_dim == FUSION_DIM
    assert model.heads.bottleneck[0].num_features == FUSION_DIM
    cfg.MODEL.BACKBONE.FEAT_DIM = 7  # set by hand after loading: the check refuses it
    with pytest.raises(ValueError, match=r"config MODEL\.BACKBONE\.FEAT_DIM=7.*MODEL\.MMET\.FUSION\.DIM"):
        check_dmf_config(cfg)


def test_an_image_only_mmet_has_features_of_the_embed_width_when_fusion_dim_is_0():
    image_only = build("", "MODEL.MMET.FUSION.DIM", 0).eval()
    assert image_only.backbone.text_encoder is None
    with torch.no_grad():
        assert image_only({"images": _images()}).shape == (4, EMBED_DIM)
