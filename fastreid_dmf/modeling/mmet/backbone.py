"""MMET's encoders as one fast-reid backbone: image, text and fusion encoders plus the Re-ID projections.

MMET (Xiang et al., arXiv 2304.09498) is a multi-modal equivalent transformer trained on visual, textual
and visual-textual tasks; its official code is FLAVA (facebookresearch/multimodal; transformers
``FlavaModel``) plus a Re-ID head. This module holds FLAVA's parts:

* ``image_encoder`` (:class:`.image_encoder.MMETImageEncoder`) and ``image_projection`` (FLAVA's
  ``image_projection``: D_i -> D_m), which gives the visual Re-ID feature from the image [cls];
* ``text_encoder`` (:class:`.text_encoder.MMETTextEncoder`) and ``text_projection`` (D_t -> D_m), the
  textual Re-ID feature from the text [cls];
* ``fusion`` (:class:`.fusion_encoder.FusionEncoder`), whose [cls_m] is the visual-textual Re-ID feature;
* ``logit_scale``: the global contrastive loss's log inverse temperature (FLAVA: log(1 / 0.07)).

So all three Re-ID features are D_m wide and one BNNeck / one triplet loss serves them
(``MODEL.BACKBONE.FEAT_DIM`` = D_m, :func:`~fastreid_dmf.config.defaults.derive_feat_dim`).
"""

from __future__ import annotations

import logging
import math

import torch
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from timm.layers import trunc_normal_
from torch import nn

from ..pretrained import load_pretrained_vit
from .fusion_encoder import FusionEncoder
from .image_encoder import MMETImageEncoder
from .text_encoder import MMETTextEncoder

__all__ = ["MMETBackbone", "build_mmet_backbone", "fusion_dim"]

logger = logging.getLogger(__name__)


def fusion_dim(cfg) -> int:
    """D_m: ``MODEL.MMET.FUSION.DIM``, or ``MODEL.DMF.EMBED_DIM`` when 0."""
    return int(cfg.MODEL.MMET.FUSION.DIM or cfg.MODEL.DMF.EMBED_DIM)


class MMETBackbone(nn.Module):
    """Image, text and fusion encoders of MMET with the projections to the Re-ID space (FLAVA's layout).

    Args:
        image_encoder: the ViT.
        text_encoder: the trainable text encoder, or None (image-only model: no text and no fusion parts).
        fusion: the fusion encoder (None without a text encoder).
        embed_dim: D_m, width of every Re-ID feature.
        temperature: initial contrastive temperature (FLAVA: 0.07).

    Raises:
        ValueError: ``fusion`` present without a text encoder or of another width than ``embed_dim``.
    """

    def __init__(self, image_encoder: MMETImageEncoder, text_encoder: MMETTextEncoder | None,
                 fusion: FusionEncoder | None, embed_dim: int, temperature: float = 0.07) -> None:
        super().__init__()
        if (fusion is None) != (text_encoder is None):
            raise ValueError("MMET needs a fusion encoder exactly when it has a text encoder")
        if fusion is not None and fusion.embed_dim != embed_dim:
            raise ValueError(f"fusion width {fusion.embed_dim} differs from the Re-ID width {embed_dim}")
        self.embed_dim = self.num_features = int(embed_dim)
        self.image_encoder = image_encoder
        self.image_projection = nn.Linear(image_encoder.embed_dim, embed_dim)
        self.text_encoder = text_encoder
        self.text_projection = nn.Linear(text_encoder.hidden_size, embed_dim) if text_encoder is not None else None
        self.fusion = fusion
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        for layer in (self.image_projection, self.text_projection):
            if layer is not None:
                trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Embedding and temperature names excluded from weight decay."""
        names = {f"image_encoder.{n}" for n in self.image_encoder.no_weight_decay()} | {"logit_scale"}
        if self.fusion is not None:
            names |= {f"fusion.{n}" for n in self.fusion.no_weight_decay()}
        return names

    def require_text(self) -> MMETTextEncoder:
        """The text encoder.

        Raises:
            RuntimeError: the model has none (names the config keys).
        """
        if self.text_encoder is None:
            raise RuntimeError("got text but this MMET model has no text encoder; set MODEL.DMF.TEXT_ENCODER.NAME or "
                               "MODEL.MMET.FLAVA_PATH")
        return self.text_encoder

    def image_feature(self, image_output: torch.Tensor) -> torch.Tensor:
        """Visual Re-ID feature: ``image_projection`` of the image [cls], ``(B, 1 + N, D_i)`` -> ``(B, D_m)``."""
        return self.image_projection(image_output[:, 0])

    def text_feature(self, text_output: torch.Tensor) -> torch.Tensor:
        """Textual Re-ID feature: ``text_projection`` of the text [CLS], ``(B, L, D_t)`` -> ``(B, D_m)``."""
        return self.text_projection(text_output[:, 0])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """fast-reid backbone interface: normalised images ``(B, 3, H, W)`` -> visual features ``(B, D_m, 1, 1)``."""
        return self.image_feature(self.image_encoder(images)[1])[:, :, None, None]


@BACKBONE_REGISTRY.register()
def build_mmet_backbone(cfg) -> MMETBackbone:
    """Build :class:`MMETBackbone` from ``cfg.MODEL.DMF`` (ViT shape, text encoder) and ``cfg.MODEL.MMET``.

    Weights, in this order: ``MODEL.BACKBONE.PRETRAIN_PATH`` into the image encoder when
    ``MODEL.BACKBONE.PRETRAIN`` (any family :func:`~fastreid_dmf.modeling.pretrained.load_pretrained_vit`
    reads); ``MODEL.MMET.FLAVA_PATH`` (a ``FlavaModel`` folder) into the image, text and fusion encoders and
    the projections (:func:`.flava.load_flava_weights`); otherwise the text encoder is
    ``MODEL.DMF.TEXT_ENCODER.NAME`` (pre-trained, trainable) and the rest starts at random.

    Raises:
        FileNotFoundError, OSError, ValueError: missing or mismatching weights (messages name the keys).
    """
    dmf, mmet = cfg.MODEL.DMF, cfg.MODEL.MMET
    image_encoder = MMETImageEncoder(
        img_size=cfg.INPUT.SIZE_TRAIN, patch_size=dmf.PATCH_SIZE, stride_size=cfg.MODEL.BACKBONE.STRIDE_SIZE,
        embed_dim=dmf.EMBED_DIM, depth=dmf.DEPTH, num_heads=dmf.NUM_HEADS, mlp_ratio=dmf.MLP_RATIO,
        qkv_bias=dmf.QKV_BIAS, ln_eps=dmf.LN_EPS, drop_rate=cfg.MODEL.BACKBONE.DROP_RATIO,
        attn_drop_rate=cfg.MODEL.BACKBONE.ATT_DROP_RATE, drop_path_rate=cfg.MODEL.BACKBONE.DROP_PATH_RATIO,
        layer_scale_init=dmf.LAYER_SCALE_INIT)
    text_encoder = None
    if mmet.FLAVA_PATH:
        from .flava import build_flava_text_encoder

        if dmf.TEXT_ENCODER.NAME:
            logger.warning("MODEL.MMET.FLAVA_PATH is set: its text encoder is used, MODEL.DMF.TEXT_ENCODER.NAME=%r "
                           "is not", dmf.TEXT_ENCODER.NAME)
        text_encoder = build_flava_text_encoder(mmet.FLAVA_PATH, dmf.TEXT_ENCODER.MAX_TOKENS)
    elif dmf.TEXT_ENCODER.NAME:
        from ..text.loader import load_text_encoder

        loaded = load_text_encoder(dmf.TEXT_ENCODER.NAME, dmf.TEXT_ENCODER.MAX_TOKENS)
        text_encoder = MMETTextEncoder(loaded.tokenizer, loaded.model, dmf.TEXT_ENCODER.MAX_TOKENS,
                                       name=dmf.TEXT_ENCODER.NAME)
    width = fusion_dim(cfg)
    fusion = None
    if text_encoder is not None:
        fusion = FusionEncoder(image_encoder.embed_dim, text_encoder.hidden_size, width, depth=mmet.FUSION.DEPTH,
                               num_heads=mmet.FUSION.NUM_HEADS, mlp_ratio=dmf.MLP_RATIO, qkv_bias=dmf.QKV_BIAS,
                               ln_eps=dmf.LN_EPS, drop_path_rate=cfg.MODEL.BACKBONE.DROP_PATH_RATIO)
    model = MMETBackbone(image_encoder, text_encoder, fusion, width, temperature=mmet.TEMPERATURE)
    if cfg.MODEL.BACKBONE.PRETRAIN:
        load_pretrained_vit(model.image_encoder, cfg.MODEL.BACKBONE.PRETRAIN_PATH)
    if mmet.FLAVA_PATH:
        from .flava import load_flava_weights

        load_flava_weights(model, mmet.FLAVA_PATH)
    return model
