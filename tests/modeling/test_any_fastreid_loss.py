"""A DMF checkpoint fine-tunes with any fast-reid head / loss config.

``TripletLoss`` stays DMF's own batch-hard triplet (Eq. 1); every other loss is fast-reid's
``Baseline.losses`` on the same head outputs (compared with atol 1e-6, same float32 ops).
"""

import pytest
import torch
from fastreid.modeling.meta_arch import build_model
from fastreid.modeling.meta_arch.baseline import Baseline
from fastreid.utils.events import EventStorage

from fastreid_dmf.engine.checkpoint import load_weights_strict
from fastreid_dmf.modeling.losses import batch_hard_triplet_loss
from tests.shared import small_dmf_cfg

CONFIGS = {
    "circle_softmax_ce_circle": ["MODEL.HEADS.CLS_LAYER", "CircleSoftmax", "MODEL.HEADS.SCALE", 64,
                                 "MODEL.HEADS.MARGIN", 0.35, "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "CircleLoss")],
    "cos_softmax_ce_cosface_triplet": ["MODEL.HEADS.CLS_LAYER", "CosSoftmax", "MODEL.HEADS.SCALE", 30,
                                       "MODEL.HEADS.MARGIN", 0.25,
                                       "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "Cosface", "TripletLoss")],
    "arc_softmax_ce_triplet_norm_feat": ["MODEL.HEADS.CLS_LAYER", "ArcSoftmax", "MODEL.HEADS.SCALE", 16,
                                         "MODEL.HEADS.MARGIN", 0.2, "MODEL.LOSSES.TRI.NORM_FEAT", True,
                                         "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "TripletLoss")],
}
EXPECTED_KEYS = {"CrossEntropyLoss": "loss_cls", "TripletLoss": "loss_triplet", "CircleLoss": "loss_circle",
                 "Cosface": "loss_cosface"}


def _cfg(opts, num_classes=3):
    cfg = small_dmf_cfg()
    cfg.merge_from_list([*opts, "MODEL.HEADS.NUM_CLASSES", num_classes])
    return cfg


def _batch(num_ids=3):
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(num_ids).repeat_interleave(2)
    return {"images": torch.rand(len(targets), 3, 32, 16, generator=generator) * 255, "targets": targets}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loss_keys_and_values_match_fastreid_baseline(name):
    torch.manual_seed(0)
    cfg = _cfg(CONFIGS[name])
    model = build_model(cfg).train()
    batch = _batch()
    with EventStorage(0):
        features = model.encode_images(batch["images"])
        outputs = model.heads(features[:, :, None, None], batch["targets"])
        ours = model.losses(outputs, batch["targets"])
        upstream = Baseline.losses(model, outputs, batch["targets"])
    assert set(ours) == set(upstream) == {EXPECTED_KEYS[n] for n in cfg.MODEL.LOSSES.NAME}
    for key, value in ours.items():
        assert torch.isfinite(value), key
        if key != "loss_triplet":
            assert torch.allclose(value, upstream[key], atol=1e-6), key
    if "loss_triplet" in ours:
        feats = outputs["features"]
        if cfg.MODEL.LOSSES.TRI.NORM_FEAT:
            feats = torch.nn.functional.normalize(feats, dim=1)
        dmf_triplet = batch_hard_triplet_loss(feats, batch["targets"], 0.0, squared=True)
        assert torch.allclose(ours["loss_triplet"], dmf_triplet), "TripletLoss stays DMF's Eq. 1"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_one_optimisation_step_changes_backbone_weights(name):
    torch.manual_seed(0)
    model = build_model(_cfg(CONFIGS[name])).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.backbone.blocks[0].attn.qkv.weight.detach().clone()
    with EventStorage(0):
        losses = model(_batch())
    sum(losses.values()).backward()
    optimizer.step()
    assert not torch.equal(model.backbone.blocks[0].attn.qkv.weight, before)


def test_loss_name_fastreid_baseline_ignores_is_rejected():
    with pytest.raises(ValueError, match="MODEL.LOSSES.NAME.*FocalLoss"):
        build_model(_cfg(["MODEL.LOSSES.NAME", ("CrossEntropyLoss", "FocalLoss")]))


def test_pretraining_checkpoint_loads_into_finetune_model_with_other_head(tmp_path):
    torch.manual_seed(0)
    pretrained = build_model(_cfg([], num_classes=3))
    state = pretrained.state_dict()
    torch.save({"model": state}, tmp_path / "pretrained.pth")
    finetune = build_model(_cfg(CONFIGS["circle_softmax_ce_circle"], num_classes=5))
    # the same call DMFTrainer.resume_or_load makes
    summary = load_weights_strict(finetune, str(tmp_path / "pretrained.pth"), ("heads.weight",))
    assert summary.skipped == ["heads.weight"]
    assert not summary.missing and not summary.unexpected and not summary.wrong_shape
    for key, value in finetune.state_dict().items():
        if key != "heads.weight":
            assert torch.equal(value, state[key]), key
    assert finetune.heads.weight.shape == (5, 32)
    finetune.train()
    with EventStorage(0):
        losses = finetune(_batch(num_ids=5))
    assert set(losses) == {"loss_cls", "loss_circle"} and all(torch.isfinite(v) for v in losses.values())
