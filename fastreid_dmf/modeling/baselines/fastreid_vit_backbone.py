"""fast-reid's own ViT in any shape: the no-text baseline of the same size as a DMF model.

fast-reid's ``build_vit_backbone`` (``fastreid/modeling/backbones/
vision_transformer.py``) builds only its 768-wide 'small' and 'base' ViTs. The
demo's DMF model is 192 wide, so its fast-reid baseline needs fast-reid's
``VisionTransformer`` class (the TransReID ViT) built with the DMF shape keys
``MODEL.DMF.{EMBED_DIM, DEPTH, NUM_HEADS, MLP_RATIO, QKV_BIAS, PATCH_SIZE,
LN_EPS}`` and ``MODEL.BACKBONE.STRIDE_SIZE``: the same shape the export tool
(:func:`~fastreid_dmf.modeling.export.fastreid_vit_spec`) maps a DMF model to.
Only the builder is ours; the module, its initialisation and forward pass are
fast-reid's.
"""

from __future__ import annotations

from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.backbones.vision_transformer import VisionTransformer

from ..export import build_fastreid_vit, fastreid_vit_spec

__all__ = ["build_fastreid_vit_backbone"]


@BACKBONE_REGISTRY.register()
def build_fastreid_vit_backbone(cfg) -> VisionTransformer:
    """fast-reid's ``VisionTransformer`` shaped by ``MODEL.DMF.*`` (select with ``MODEL.BACKBONE.NAME``).

    Args:
        cfg: fast-reid config with :func:`~fastreid_dmf.config.add_dmf_config` keys; input size
            ``INPUT.SIZE_TRAIN``, regularisation ``MODEL.BACKBONE.{DROP_RATIO, ATT_DROP_RATE, DROP_PATH_RATIO}``.

    Returns:
        The randomly initialised module (fast-reid's own init); ``forward`` maps float
        ``(B, 3, H, W)`` normalised images to float ``(B, D, 1, 1)`` [cls] features.

    Raises:
        ValueError: ``MODEL.BACKBONE.PRETRAIN`` is set (weights load through fast-reid's
            ``build_vit_backbone`` for its 768-wide shapes, or through DMF's
            ``build_dmf_backbone`` for any shape).
    """
    if cfg.MODEL.BACKBONE.PRETRAIN:
        raise ValueError("config MODEL.BACKBONE.PRETRAIN=True with MODEL.BACKBONE.NAME build_fastreid_vit_backbone: "
                         "expected False (it builds a randomly initialised baseline; for ImageNet weights use "
                         "fast-reid's build_vit_backbone or build_dmf_backbone)")
    backbone = cfg.MODEL.BACKBONE
    kwargs = dict(fastreid_vit_spec(cfg)["vit_kwargs"], drop_rate=backbone.DROP_RATIO,
                  attn_drop_rate=backbone.ATT_DROP_RATE, drop_path_rate=backbone.DROP_PATH_RATIO)
    return build_fastreid_vit(kwargs)
