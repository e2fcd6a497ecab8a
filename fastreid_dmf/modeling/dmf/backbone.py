"""The DMF multimodal ViT: modality-specific translation, one shared transformer.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.2-3.3, Fig. 2, Eq. 3-5:

* image translation: patches -> "Image2vec" (patch embedding, width D_i) ->
  linear projection F (D_i -> D) -> prepend image [cls] ``cls_token`` -> add
  image position embedding ``pos_embed`` (Eq. 3-4);
* text translation: description -> tokenizer -> frozen pre-trained text
  encoder (width D_t) -> linear projection L (D_t -> D) -> prepend text [cls]
  ``text_cls_token`` -> add text position embedding ``text_pos_embed`` (Eq. 5);
* shared: transformer ``blocks`` and final ``norm``; the [cls] output is the
  global feature.

Parameter names of the image path and the shared part are those of
fast-reid's ViT (``fastreid/modeling/backbones/vision_transformer.py``, the
TransReID ViT), so ImageNet ViT, TransReID and fast-reid ViT checkpoints load
unchanged. The blocks are timm's ``Block`` (same names, plus attention
masks for padded text, plus optional LayerScale ``ls1``/``ls2`` for BEiT /
data2vec-vision weights, ``MODEL.DMF.LAYER_SCALE_INIT``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import torch
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.backbones.vision_transformer import PatchEmbed_overlap
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from ..pretrained import load_pretrained_vit
from ..text import TextTokenEncoder, build_text_encoder

__all__ = ["DMFBackbone", "build_dmf_backbone"]

logger = logging.getLogger(__name__)


class DMFBackbone(nn.Module):
    """Multimodal ViT of DMF.

    Args:
        img_size: (H, W) input size in pixels.
        patch_size: square patch side in pixels.
        stride_size: patch stride (H, W) in pixels (< patch_size overlaps, TransReID).
        embed_dim: D, width of the shared transformer.
        image_embed_dim: D_i, width of the patch embedding; 0 or None = D.
        depth, num_heads, mlp_ratio, qkv_bias: transformer shape.
        drop_rate, attn_drop_rate, drop_path_rate: regularisation
            (stochastic depth rises linearly to ``drop_path_rate``).
        ln_eps: LayerNorm epsilon.
        text_dim: D_t; must equal the text encoder's hidden size.
        max_text_tokens: text position embedding covers this many tokens + [cls].
        text_encoder: frozen encoder producing token features, or None for an
            image-only model (text parameters still exist so checkpoints match).
        layer_scale_init: > 0 adds LayerScale (Touvron et al., CaiT; timm ``Block(init_values=...)``,
            parameters ``blocks.N.ls1.gamma`` / ``ls2.gamma``, float ``(D,)``) to every block, needed
            by BEiT / data2vec-vision weights; 0 = no LayerScale (ViT-B/16, TransReID, fast-reid ViT).

    Raises:
        ValueError: ``text_dim`` differs from the encoder's hidden size, or
            ``layer_scale_init`` < 0 (names MODEL.DMF.LAYER_SCALE_INIT).
    """

    def __init__(
        self,
        img_size: Sequence[int] = (256, 128),
        patch_size: int = 16,
        stride_size: Sequence[int] | int = 16,
        embed_dim: int = 768,
        image_embed_dim: int | None = None,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        ln_eps: float = 1e-6,
        text_dim: int = 384,
        max_text_tokens: int = 64,
        text_encoder: TextTokenEncoder | None = None,
        layer_scale_init: float = 0.0,
    ) -> None:
        super().__init__()
        if layer_scale_init < 0:
            raise ValueError(f"config MODEL.DMF.LAYER_SCALE_INIT={layer_scale_init!r}: expected 0 (no LayerScale) "
                             "or a positive initial scale")
        image_embed_dim = image_embed_dim or embed_dim
        self.embed_dim = self.num_features = embed_dim
        # Image translation (Eq. 3-4).
        self.patch_embed = PatchEmbed_overlap(img_size=tuple(img_size), patch_size=patch_size,
                                              stride_size=stride_size, embed_dim=image_embed_dim)
        self.image_proj = nn.Linear(image_embed_dim, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        # Text translation (Eq. 5).
        if text_encoder is not None and text_encoder.hidden_size != text_dim:
            raise ValueError(
                f"config MODEL.DMF.TEXT_DIM={text_dim} but text encoder {text_encoder.name!r} has hidden size "
                f"{text_encoder.hidden_size}; set MODEL.DMF.TEXT_DIM to {text_encoder.hidden_size}"
            )
        self.text_encoder = text_encoder
        self.text_proj = nn.Linear(text_dim, embed_dim)
        self.text_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.text_pos_embed = nn.Parameter(torch.zeros(1, max_text_tokens + 1, embed_dim))
        # Shared part.
        self.pos_drop = nn.Dropout(p=drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        norm_layer = _layer_norm(ln_eps)
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=drop_rate,
                  attn_drop=attn_drop_rate, drop_path=rate, norm_layer=norm_layer,
                  init_values=layer_scale_init if layer_scale_init > 0 else None)
            for rate in rates
        ])
        self.norm = norm_layer(embed_dim)
        self._init_weights(identity_image_proj=image_embed_dim == embed_dim)

    def _init_weights(self, identity_image_proj: bool) -> None:
        for tensor in (self.cls_token, self.pos_embed, self.text_cls_token, self.text_pos_embed):
            trunc_normal_(tensor, std=0.02)
        for name, module in self.named_modules():
            if name.split(".")[0] == "text_encoder":
                continue  # a fine-tuned (FREEZE False) pre-trained text encoder keeps its weights
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if identity_image_proj:
            # F = identity: a loaded pre-trained ViT computes exactly what it did before.
            nn.init.eye_(self.image_proj.weight)
            nn.init.zeros_(self.image_proj.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Embedding names excluded from weight decay (as in timm/TransReID)."""
        return {"pos_embed", "cls_token", "text_pos_embed", "text_cls_token"}

    def _encode(self, tokens: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.pos_drop(tokens)
        attn_mask = None
        if key_padding is not None:
            # SDPA boolean mask: True = may attend; broadcast over heads and queries.
            attn_mask = key_padding[:, None, None, :]
        for block in self.blocks:
            tokens = block(tokens, attn_mask=attn_mask)
        return self.norm(tokens)[:, 0]

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Image translation, Eq. 3-4: ``(B, 3, H, W)`` float -> ``(B, N + 1, D)``."""
        patches = self.image_proj(self.patch_embed(images))
        cls = self.cls_token.expand(images.shape[0], -1, -1)
        return torch.cat((cls, patches), dim=1) + self.pos_embed

    def forward_image(self, images: torch.Tensor) -> torch.Tensor:
        """Global feature of normalised images.

        Args:
            images: float ``(B, 3, H, W)``, already normalised, H x W = ``img_size``.

        Returns:
            float ``(B, D)``: the final [cls] token (before any BNNeck).
        """
        return self._encode(self.image_tokens(images))

    def text_tokens(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text translation, Eq. 5: B descriptions -> ``(B, L + 1, D)`` tokens and ``(B, L + 1)`` bool valid mask.

        Raises:
            RuntimeError: the model has no text encoder (MODEL.DMF.TEXT_ENCODER.NAME empty).
        """
        if self.text_encoder is None:
            raise RuntimeError("got text samples but the model has no text encoder; set MODEL.DMF.TEXT_ENCODER.NAME")
        device = self.cls_token.device
        feats, valid = self.text_encoder(texts, device=device)
        max_len = self.text_pos_embed.shape[1] - 1
        feats, valid = feats[:, :max_len], valid[:, :max_len]
        words = self.text_proj(feats)
        cls = self.text_cls_token.expand(len(texts), -1, -1)
        tokens = torch.cat((cls, words), dim=1) + self.text_pos_embed[:, : words.shape[1] + 1]
        valid = torch.cat((torch.ones_like(valid[:, :1]), valid), dim=1)
        return tokens, valid

    def forward_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Global feature of descriptions: B strings -> float ``(B, D)`` (padding masked out of attention)."""
        tokens, valid = self.text_tokens(texts)
        return self._encode(tokens, valid)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """fast-reid backbone interface: images ``(B, 3, H, W)`` -> ``(B, D, 1, 1)`` (as fast-reid's ViT)."""
        return self.forward_image(images)[:, :, None, None]


def _layer_norm(eps: float):
    return functools.partial(nn.LayerNorm, eps=eps)


@BACKBONE_REGISTRY.register()
def build_dmf_backbone(cfg) -> DMFBackbone:
    """Build :class:`DMFBackbone` from ``cfg.MODEL.DMF`` / ``cfg.MODEL.BACKBONE`` / ``cfg.INPUT.SIZE_TRAIN``.

    Loads ``MODEL.BACKBONE.PRETRAIN_PATH`` when ``MODEL.BACKBONE.PRETRAIN`` is
    set (see :func:`fastreid_dmf.modeling.pretrained.load_pretrained_vit`) and
    the text encoder when ``MODEL.DMF.TEXT_ENCODER.NAME`` is set;
    ``MODEL.DMF.LAYER_SCALE_INIT`` > 0 adds LayerScale to every block.

    Raises:
        FileNotFoundError, OSError: a missing pre-trained checkpoint or text encoder.
        ValueError: inconsistent dimensions (message names the keys).
    """
    dmf = cfg.MODEL.DMF
    encoder_cfg = dmf.TEXT_ENCODER
    text_encoder = build_text_encoder(cfg)
    model = DMFBackbone(
        img_size=cfg.INPUT.SIZE_TRAIN,
        patch_size=dmf.PATCH_SIZE,
        stride_size=cfg.MODEL.BACKBONE.STRIDE_SIZE,
        embed_dim=dmf.EMBED_DIM,
        image_embed_dim=dmf.IMAGE_EMBED_DIM,
        depth=dmf.DEPTH,
        num_heads=dmf.NUM_HEADS,
        mlp_ratio=dmf.MLP_RATIO,
        qkv_bias=dmf.QKV_BIAS,
        drop_rate=cfg.MODEL.BACKBONE.DROP_RATIO,
        attn_drop_rate=cfg.MODEL.BACKBONE.ATT_DROP_RATE,
        drop_path_rate=cfg.MODEL.BACKBONE.DROP_PATH_RATIO,
        ln_eps=dmf.LN_EPS,
        text_dim=dmf.TEXT_DIM,
        max_text_tokens=encoder_cfg.MAX_TOKENS,
        text_encoder=text_encoder,
        layer_scale_init=dmf.LAYER_SCALE_INIT,
    )
    if cfg.MODEL.BACKBONE.PRETRAIN:
        load_pretrained_vit(model, cfg.MODEL.BACKBONE.PRETRAIN_PATH)
    return model
