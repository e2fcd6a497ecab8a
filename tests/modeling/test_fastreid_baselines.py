"""fast-reid's own baselines beside DMF: the same-shape ViT (build_fastreid_vit_backbone) and ResNet-18 configs."""

from __future__ import annotations

import os

import pytest
import torch
from fastreid.modeling import build_model
from fastreid.modeling.backbones.vision_transformer import VisionTransformer
from fastreid.modeling.meta_arch.baseline import Baseline
from fastreid.utils.events import EventStorage

from fastreid_dmf.config import check_dmf_config, load_config
from tests.shared import DEMO_CONFIGS

DEMO = DEMO_CONFIGS


def _cfg(name: str, *opts):
    return load_config(os.path.join(DEMO, name), opts)


def test_vit_baseline_is_fastreids_baseline_with_a_vit_of_the_dmf_demo_shape():
    cfg = _cfg("fastreid_vit_baseline.yml")
    check_dmf_config(cfg)
    dmf = _cfg("dmf_finetune.yml")
    model = build_model(cfg)
    assert type(model) is Baseline and type(model.backbone) is VisionTransformer
    assert model.backbone.cls_token.shape[-1] == dmf.MODEL.DMF.EMBED_DIM
    assert len(model.backbone.blocks) == dmf.MODEL.DMF.DEPTH
    assert model.backbone.blocks[0].attn.num_heads == dmf.MODEL.DMF.NUM_HEADS
    height, width = dmf.INPUT.SIZE_TRAIN
    assert model.backbone.pos_embed.shape[1] == (height // 16) * (width // 16) + 1
    model.eval()
    with torch.no_grad():
        features = model({"images": torch.rand(2, 3, height, width) * 255})
    assert features.shape == (2, dmf.MODEL.DMF.EMBED_DIM)


def test_vit_baseline_trains_with_fastreids_losses():
    cfg = _cfg("fastreid_vit_baseline.yml", "MODEL.HEADS.NUM_CLASSES", 4)
    model = build_model(cfg)
    model.train()
    height, width = cfg.INPUT.SIZE_TRAIN
    batch = {"images": torch.rand(8, 3, height, width) * 255, "targets": torch.arange(4).repeat_interleave(2)}
    with EventStorage():  # fast-reid's CE loss logs its accuracy there
        losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_triplet"}
    sum(losses.values()).backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_vit_baseline_refuses_imagenet_loading_it_cannot_do():
    cfg = _cfg("fastreid_vit_baseline.yml", "MODEL.BACKBONE.PRETRAIN", True)
    with pytest.raises(ValueError, match="MODEL.BACKBONE.PRETRAIN"):
        build_model(cfg)


def test_vit_baseline_head_width_follows_the_transformer_width():
    cfg = _cfg("fastreid_vit_baseline.yml", "MODEL.BACKBONE.FEAT_DIM", 64)  # load_config derives FEAT_DIM
    assert cfg.MODEL.BACKBONE.FEAT_DIM == cfg.MODEL.DMF.EMBED_DIM
    check_dmf_config(cfg)
    cfg.MODEL.BACKBONE.FEAT_DIM = 64  # a config built by hand must still agree
    with pytest.raises(ValueError, match="MODEL.BACKBONE.FEAT_DIM"):
        check_dmf_config(cfg)


def test_resnet18_baseline_is_fastreids_resnet_from_scratch():
    cfg = _cfg("fastreid_r18_baseline.yml")
    check_dmf_config(cfg)
    model = build_model(cfg).eval()
    assert type(model) is Baseline and not cfg.MODEL.BACKBONE.PRETRAIN
    height, width = cfg.INPUT.SIZE_TEST
    with torch.no_grad():
        assert model({"images": torch.rand(2, 3, height, width) * 255}).shape == (2, 512)
