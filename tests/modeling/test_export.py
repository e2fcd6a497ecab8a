"""DMF checkpoint -> plain fast-reid Baseline + ViT: the exported model computes DMF's test feature.

Tolerance: atol 1e-5 (relative 1e-4) on float32 features; folding is done in float64, so the only
difference is float32 summation order in the folded patch conv / projections.
"""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch
from fastreid.config import get_cfg as get_fastreid_cfg
from fastreid.modeling.backbones import vision_transformer as vit_module
from fastreid.modeling.heads import build_heads
from fastreid.modeling.meta_arch import build_model
from fastreid.modeling.meta_arch.baseline import Baseline
from fastreid.utils.checkpoint import Checkpointer

from fastreid_dmf.config import add_dmf_config, load_config
from fastreid_dmf.modeling.dmf import backbone as dmf_backbone_module
from fastreid_dmf.modeling.export import (
    build_fastreid_vit,
    export_fastreid_vit,
    fastreid_eval_config,
    fastreid_vit_spec,
    fold_image_branch,
)
from tests.shared import REPO, small_dmf_cfg


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _dmf_cfg(*opts):
    cfg = small_dmf_cfg()
    cfg.merge_from_list(["MODEL.DMF.IMAGE_EMBED_DIM", 48, "MODEL.DMF.LAYER_SCALE_INIT", 0.1,
                         "MODEL.DMF.TEST_FEAT", "after", *opts])
    return cfg


def _randomised_dmf(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "ls1" in name or "ls2" in name or "image_proj" in name or "bottleneck" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5 + (1.0 if "bottleneck.0.weight"
                                                                                    in name else 0.0))
        bn = model.heads.bottleneck[0]
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=generator))
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=generator) + 0.5)
    return model.eval()


def _save_checkpoint(model, folder, cfg=None):
    folder.mkdir(exist_ok=True)
    path = folder / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 10}, path)
    if cfg is not None:
        (folder / "config.yaml").write_text(cfg.dump())
    return path


def _features(model, images, test_feat):
    model.test_feat = test_feat
    with torch.no_grad():
        return model({"images": images.clone()})


def _fastreid_baseline(exported: dict, cfg, with_bnneck: bool) -> Baseline:
    """fast-reid's own Baseline around the exported ViT shape, with a 3-class EmbeddingHead (32 wide)."""
    fastreid_cfg = get_fastreid_cfg()
    fastreid_cfg.merge_from_list(["MODEL.BACKBONE.FEAT_DIM", 32, "MODEL.HEADS.NUM_CLASSES", 3,
                                  "MODEL.HEADS.POOL_LAYER", "Identity", "MODEL.HEADS.WITH_BNNECK", with_bnneck])
    return Baseline(backbone=build_fastreid_vit(exported["export_info"]["vit_kwargs"]), heads=build_heads(fastreid_cfg),
                    pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD)


def test_export_reproduces_dmf_after_bnneck_feature_in_fastreid_baseline(tmp_path):
    cfg = _dmf_cfg()
    dmf = _randomised_dmf(cfg)
    checkpoint = _save_checkpoint(dmf, tmp_path / "run")
    report = export_fastreid_vit(str(checkpoint), str(tmp_path / "exported.pth"), cfg)
    assert report["depth_name"] is None and report["config"] is None, "32-wide ViT: no build_vit_backbone shape"
    exported = torch.load(tmp_path / "exported.pth", weights_only=True)
    state = exported["model"]
    assert not any(k.startswith("backbone.text_") or "image_proj" in k or ".ls" in k for k in state)
    assert state["backbone.patch_embed.proj.weight"].shape == (32, 3, 8, 8)
    assert torch.equal(state["heads.weight"], dmf.heads.weight)

    baseline = _fastreid_baseline(exported, cfg, with_bnneck=True)
    result = baseline.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    baseline.eval()
    images = torch.rand(4, 3, 32, 16) * 255
    with torch.no_grad():
        ours = baseline(images.clone())
    after, before = _features(dmf, images, "after"), _features(dmf, images, "before")
    assert not _close(after, before), "the BNNeck must change the feature for this test to mean anything"
    assert _close(ours, after)


def test_export_without_bnneck_reproduces_dmf_before_bnneck_feature(tmp_path):
    cfg = _dmf_cfg()
    dmf = _randomised_dmf(cfg, seed=1)
    checkpoint = _save_checkpoint(dmf, tmp_path / "run")
    export_fastreid_vit(str(checkpoint), str(tmp_path / "exported.pth"), cfg, test_feat="before")
    exported = torch.load(tmp_path / "exported.pth", weights_only=True)
    baseline = _fastreid_baseline(exported, cfg, with_bnneck=False)
    result = baseline.load_state_dict(exported["model"], strict=False)
    assert not result.missing_keys and all(k.startswith("heads.bottleneck.") for k in result.unexpected_keys)
    images = torch.rand(3, 3, 32, 16) * 255
    with torch.no_grad():
        assert _close(baseline.eval()(images.clone()), _features(dmf, images, "before"))


def _cheap_init(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    return torch.nn.init.normal_(tensor, mean, std)


def test_fastreid_small_shape_loads_with_stock_build_vit_backbone_and_yaml(tmp_path, monkeypatch):
    # fast-reid's 'small': width 768, 8 blocks, 8 heads, MLP 3, no qkv bias, qk_scale 768 ** -0.5 (folded).
    # Two 57M-parameter models: plain normal init instead of truncated normal keeps the test fast on a CPU
    # (initial values do not matter, the test compares the two models on whatever weights they hold).
    monkeypatch.setattr(vit_module, "trunc_normal_", _cheap_init)
    monkeypatch.setattr(dmf_backbone_module, "trunc_normal_", _cheap_init)
    cfg = _dmf_cfg("MODEL.DMF.EMBED_DIM", 768, "MODEL.BACKBONE.FEAT_DIM", 768, "MODEL.DMF.DEPTH", 8,
                   "MODEL.DMF.NUM_HEADS", 8, "MODEL.DMF.MLP_RATIO", 3.0, "MODEL.DMF.QKV_BIAS", False,
                   "MODEL.DMF.PATCH_SIZE", 16, "MODEL.BACKBONE.STRIDE_SIZE", (16, 16), "MODEL.DMF.IMAGE_EMBED_DIM", 96)
    dmf = _randomised_dmf(cfg, seed=2)
    checkpoint = _save_checkpoint(dmf, tmp_path / "run")
    report = export_fastreid_vit(str(checkpoint), str(tmp_path / "small.pth"), cfg)
    assert report["depth_name"] == "small" and any("qk_scale" in line for line in report["folded"])
    fastreid_cfg = get_fastreid_cfg()
    fastreid_cfg.merge_from_file(report["config"])
    assert fastreid_cfg.MODEL.BACKBONE.NAME == "build_vit_backbone" and fastreid_cfg.MODEL.BACKBONE.DEPTH == "small"
    baseline = build_model(fastreid_cfg)
    assert type(baseline) is Baseline
    Checkpointer(baseline).load(fastreid_cfg.MODEL.WEIGHTS)
    images = torch.rand(2, 3, 32, 16) * 255
    with torch.no_grad():
        ours = baseline.eval()(images.clone())
    assert _close(ours, _features(dmf, images, "after"))


def test_fold_is_identity_free_only_where_dmf_has_no_projection_or_layer_scale():
    cfg = _dmf_cfg("MODEL.DMF.IMAGE_EMBED_DIM", 0, "MODEL.DMF.LAYER_SCALE_INIT", 0.0)
    dmf = build_model(cfg)
    state, report = fold_image_branch(dmf.state_dict())
    # F starts as the identity when D_i = D: the folded conv is the original conv.
    assert torch.allclose(state["backbone.patch_embed.proj.weight"], dmf.backbone.patch_embed.proj.weight)
    assert report["folded"] == ["backbone.image_proj.weight", "backbone.image_proj.bias"]
    assert sorted(report["dropped"]) == ["backbone.text_cls_token", "backbone.text_pos_embed",
                                         "backbone.text_proj.bias", "backbone.text_proj.weight"]
    with pytest.raises(ValueError, match="not a DMF checkpoint"):
        fold_image_branch({"backbone.cls_token": torch.zeros(1, 1, 4)}, source="x.pth")


def test_export_refuses_to_overwrite_unless_asked(tmp_path):
    cfg = _dmf_cfg()
    checkpoint = _save_checkpoint(_randomised_dmf(cfg), tmp_path / "run")
    output = tmp_path / "exported.pth"
    output.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=str(output)):
        export_fastreid_vit(str(checkpoint), str(output), cfg)
    assert output.read_bytes() == b"keep me"
    export_fastreid_vit(str(checkpoint), str(output), cfg, overwrite=True)
    assert "model" in torch.load(output, weights_only=True)


def test_config_that_does_not_match_checkpoint_names_the_key(tmp_path):
    checkpoint = _save_checkpoint(_randomised_dmf(_dmf_cfg()), tmp_path / "run")
    with pytest.raises(ValueError, match="MODEL.DMF.DEPTH"):
        export_fastreid_vit(str(checkpoint), str(tmp_path / "out.pth"), _dmf_cfg("MODEL.DMF.DEPTH", 3))


def test_vit_b_dmf_config_maps_to_fastreid_base_depth():
    cfg = small_dmf_cfg()
    cfg.merge_from_list(["MODEL.DMF.EMBED_DIM", 768, "MODEL.DMF.DEPTH", 12, "MODEL.DMF.NUM_HEADS", 12,
                         "MODEL.DMF.PATCH_SIZE", 16, "MODEL.BACKBONE.STRIDE_SIZE", (16, 16)])
    spec = fastreid_vit_spec(cfg)
    assert spec["depth_name"] == "base" and spec["qk_scale_factor"] == 1.0
    fastreid_cfg = fastreid_eval_config(cfg, "/tmp/x.pth", spec, "after")
    assert fastreid_cfg.MODEL.BACKBONE.FEAT_DIM == 768 and fastreid_cfg.MODEL.META_ARCHITECTURE == "Baseline"
    assert "DMF" not in fastreid_cfg.MODEL
    assert list(fastreid_cfg.INPUT.SIZE_TEST) == list(cfg.INPUT.SIZE_TRAIN) != list(cfg.INPUT.SIZE_TEST), \
        "the ViT only runs at its build size"


def _cli_module():
    spec = importlib.util.spec_from_file_location("export_fastreid_vit_cli", os.path.join(REPO, "tools",
                                                                                       "export_fastreid_vit.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_exports_end_to_end_in_subprocess(tmp_path):
    cfg = _dmf_cfg()
    checkpoint = _save_checkpoint(_randomised_dmf(cfg), tmp_path / "run", cfg=cfg)
    output = tmp_path / "exported.pth"
    command = [sys.executable, os.path.join(REPO, "tools", "export_fastreid_vit.py"), str(checkpoint), str(output)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "folded: backbone.image_proj.weight" in result.stdout and "build_fastreid_vit" in result.stdout
    assert "model" in torch.load(output, weights_only=True)


def test_cli_refuses_existing_output_and_missing_config(tmp_path, capsys):
    cli = _cli_module()
    cfg = _dmf_cfg()
    checkpoint = _save_checkpoint(_randomised_dmf(cfg), tmp_path / "run", cfg=cfg)
    output = tmp_path / "exported.pth"
    output.write_bytes(b"keep me")
    assert cli.main([str(checkpoint), str(output)]) == 1
    assert str(output) in capsys.readouterr().err and output.read_bytes() == b"keep me"
    assert cli.main([str(checkpoint), str(output), "--overwrite"]) == 0
    assert "model" in torch.load(output, weights_only=True)
    (tmp_path / "run" / "config.yaml").unlink()
    assert cli.main([str(checkpoint), str(tmp_path / "other.pth")]) == 2
    assert "--config-file" in capsys.readouterr().err


@pytest.mark.parametrize("test_feat", ["before", "after"])
def test_vit_base_export_evaluates_identically_under_the_bagtricks_vit_baseline_config(tmp_path, test_feat):
    """Paper-size (ViT-B/16, 256x128) DMF -> export -> fast-reid Baseline built from configs/Base-bagtricks-ViT.yml."""
    repo = REPO
    cfg = load_config(os.path.join(repo, "configs/paper/table2_market/dmf.yml"),
                      ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.HEADS.NUM_CLASSES", 5,
                       "MODEL.BACKBONE.PRETRAIN", False, "MODEL.DMF.TEST_FEAT", test_feat])
    torch.manual_seed(0)
    dmf = build_model(cfg)
    with torch.no_grad():  # a non-identity F and a trained-looking BNNeck
        dmf.backbone.image_proj.weight.add_(0.01 * torch.randn_like(dmf.backbone.image_proj.weight))
        dmf.heads.bottleneck[0].running_mean.normal_()
        dmf.heads.bottleneck[0].running_var.uniform_(0.5, 2.0)
    dmf.eval()
    Checkpointer(dmf, str(tmp_path)).save("model_final")
    exported = str(tmp_path / "exported.pth")
    export_fastreid_vit(str(tmp_path / "model_final.pth"), exported, cfg, test_feat=test_feat)

    baseline_cfg = get_fastreid_cfg()
    add_dmf_config(baseline_cfg)
    baseline_cfg.merge_from_file(os.path.join(repo, "configs/paper/table2_market/bagtricks_vit.yml"))
    baseline_cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, "MODEL.WEIGHTS", exported,
                                  "MODEL.HEADS.NUM_CLASSES", 5])
    if test_feat == "before":  # fast-reid's EmbeddingHead returns the post-BNNeck feature unless it has none
        baseline_cfg.merge_from_list(["MODEL.HEADS.WITH_BNNECK", False])
    baseline = build_model(baseline_cfg)
    Checkpointer(baseline).load(exported)
    baseline.eval()
    images = torch.rand(2, 3, 256, 128) * 255
    with torch.no_grad():
        expected = dmf({"images": images.clone()})
        got = baseline({"images": images.clone()})  # Baseline normalises in place
    assert got.shape == expected.shape == (2, 768)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)  # float32 after folding F in float64
