"""import fastreid_dmf registers every component; add_dmf_config gives defaults; bad values fail early."""

import os

import pytest
from fastreid.config import get_cfg
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

from fastreid_dmf.config import add_dmf_config, check_dmf_config
from tests.shared import DEMO_CONFIGS


def test_components_are_in_fastreid_registries():
    assert META_ARCH_REGISTRY.get("DMF").__name__ == "DMF"
    assert BACKBONE_REGISTRY.get("build_dmf_backbone").__name__ == "build_dmf_backbone"
    for name in ("FineGPR", "SynthMarket", "SynthMSMT", "VTestReID"):
        assert DATASET_REGISTRY.get(name).__name__ == name


def test_add_dmf_config_gives_every_new_key_a_default():
    cfg = get_cfg()
    add_dmf_config(cfg)
    assert cfg.MODEL.DMF.EMBED_DIM == 768 and cfg.MODEL.DMF.TEXT_ENCODER.NAME == ""
    assert cfg.DATALOADER.TEXT_RATIO == 0.5 and cfg.DATASETS.FINEGPR.TEXT_MODE == "sentence"
    assert cfg.SEED == -1 and cfg.DATASETS.SKIP_UNREADABLE is False
    check_dmf_config(cfg)  # defaults are valid (fast-reid's Baseline meta-arch, its own sampler)


@pytest.mark.parametrize("key, value, message", [
    ("DATALOADER.TEXT_RATIO", 1.5, "DATALOADER.TEXT_RATIO=1.5"),
    ("MODEL.DMF.TEST_FEAT", "middle", "MODEL.DMF.TEST_FEAT='middle'"),
    ("DATASETS.FINEGPR.TEXT_MODE", "poem", "DATASETS.FINEGPR.TEXT_MODE='poem'"),
    ("MODEL.DMF.NUM_HEADS", 5, "multiple of MODEL.DMF.NUM_HEADS=5"),
])
def test_bad_values_are_rejected_naming_the_key(key, value, message):
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list([key, value])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_dmf_config(cfg)


def test_feat_dim_must_match_transformer_width_for_dmf():
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list(["MODEL.META_ARCHITECTURE", "DMF", "MODEL.BACKBONE.FEAT_DIM", 2048])
    with pytest.raises(ValueError, match="MODEL.BACKBONE.FEAT_DIM=2048"):
        check_dmf_config(cfg)


def test_unknown_key_in_yaml_is_rejected(tmp_path):
    cfg = get_cfg()
    add_dmf_config(cfg)
    path = tmp_path / "bad.yml"
    path.write_text("MODEL:\n  DMF:\n    EMBED_DIMM: 10\n")
    with pytest.raises(KeyError, match="EMBED_DIMM"):
        cfg.merge_from_file(str(path))


def test_trainer_construction_asks_ddp_to_tolerate_unused_modality_parameters(monkeypatch):
    import torch
    from fastreid.engine import defaults

    from fastreid_dmf.engine.trainer import ddp_with_unused_parameters

    calls = []
    monkeypatch.setattr(defaults, "DistributedDataParallel", lambda model, **kwargs: calls.append(kwargs))
    recorder = defaults.DistributedDataParallel
    with ddp_with_unused_parameters():
        # as fast-reid's DefaultTrainer calls it; a CPU model (gloo processes) must not get device_ids
        defaults.DistributedDataParallel(torch.nn.Linear(2, 2), device_ids=[0], broadcast_buffers=False)
    assert calls == [{"device_ids": None, "find_unused_parameters": True, "broadcast_buffers": False}]
    assert defaults.DistributedDataParallel is recorder


def test_feat_dim_is_derived_from_the_transformer_width():
    from fastreid_dmf.config import load_config

    demo = DEMO_CONFIGS
    for name in ("dmf_pretrain.yml", "fastreid_vit_baseline.yml"):
        cfg = load_config(os.path.join(demo, name), ["MODEL.DMF.EMBED_DIM", 96, "MODEL.BACKBONE.FEAT_DIM", 2048])
        assert cfg.MODEL.BACKBONE.FEAT_DIM == 96, name
        check_dmf_config(cfg)
    resnet = load_config(os.path.join(demo, "fastreid_r18_baseline.yml"), ["MODEL.DMF.EMBED_DIM", 96])
    assert resnet.MODEL.BACKBONE.FEAT_DIM == 512, "other backbones keep their FEAT_DIM"
