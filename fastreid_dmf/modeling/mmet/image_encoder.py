"""MMET's image encoder: a ViT whose masked patch embeddings are replaced by a learned mask token.

FLAVA (Singh et al., CVPR 2022, Sec. 3.1; transformers ``FlavaImageModel``), the image encoder of MMET's
official code: patch embedding -> (masked patches -> ``mask_token``) -> prepend [cls] -> add position
embedding -> pre-norm transformer blocks -> final LayerNorm. The fusion encoder reads the last hidden
states *before* the final LayerNorm (as ``FlavaModel`` does), the Re-ID head and MIM read them after it.

Parameter names are DMF's image path (timm / TransReID / fast-reid ViT names: ``patch_embed.proj``,
``cls_token``, ``pos_embed``, ``blocks.N.*``, ``norm``), so
:func:`~fastreid_dmf.modeling.pretrained.load_pretrained_vit` loads timm, TransReID, fast-reid, BEiT,
data2vec-vision and FLAVA image weights with the position embedding resized to the Re-ID grid.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from fastreid.modeling.backbones.vision_transformer import PatchEmbed_overlap
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

__all__ = ["MMETImageEncoder", "init_linear_layers", "transformer_blocks"]


def init_linear_layers(module: nn.Module) -> None:
    """timm's ViT initialisation of every ``nn.Linear`` in ``module``: truncated normal (std 0.02), zero bias."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            trunc_normal_(layer.weight, std=0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def transformer_blocks(dim: int, depth: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, ln_eps: float,
                       drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                       layer_scale_init: float = 0.0) -> nn.ModuleList:
    """``depth`` pre-norm timm ``Block`` s (FLAVA's ``FlavaLayer`` computes the same), drop-path rising linearly.

    timm's ``Block`` takes a boolean ``attn_mask`` (True = may attend), which is how padding is masked.
    """
    rates = torch.linspace(0, drop_path_rate, depth).tolist()
    norm_layer = functools.partial(nn.LayerNorm, eps=ln_eps)
    return nn.ModuleList([
        Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=drop_rate,
              attn_drop=attn_drop_rate, drop_path=rate, norm_layer=norm_layer,
              init_values=layer_scale_init if layer_scale_init > 0 else None)
        for rate in rates
    ])


class MMETImageEncoder(nn.Module):
    """ViT image encoder with a MIM mask token (FLAVA's image encoder in timm names).

    Args:
        img_size: (H, W) input size in pixels.
        patch_size: square patch side in pixels.
        stride_size: patch stride (H, W) in pixels (< patch_size overlaps, as TransReID).
        embed_dim: D_i, the encoder width.
        depth, num_heads, mlp_ratio, qkv_bias, ln_eps: transformer shape (FLAVA: 12, 12, 4, True, 1e-12).
        drop_rate, attn_drop_rate, drop_path_rate: regularisation.
        layer_scale_init: > 0 adds LayerScale (BEiT / data2vec-vision weights).

    Attributes:
        grid: ``(rows, columns)`` of the patch grid; ``num_patches`` = rows x columns.
    """

    def __init__(self, img_size: Sequence[int] = (256, 128), patch_size: int = 16,
                 stride_size: Sequence[int] | int = 16, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, ln_eps: float = 1e-6, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, layer_scale_init: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = int(patch_size)
        self.patch_embed = PatchEmbed_overlap(img_size=tuple(img_size), patch_size=patch_size,
                                              stride_size=stride_size, embed_dim=embed_dim)
        self.grid = (self.patch_embed.num_y, self.patch_embed.num_x)
        self.num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, ln_eps, drop_rate,
                                         attn_drop_rate, drop_path_rate, layer_scale_init)
        self.norm = nn.LayerNorm(embed_dim, eps=ln_eps)
        for tensor in (self.cls_token, self.mask_token, self.pos_embed):
            trunc_normal_(tensor, std=0.02)
        init_linear_layers(self.blocks)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Embedding names excluded from weight decay (as timm)."""
        return {"pos_embed", "cls_token", "mask_token"}

    def forward(self, images: torch.Tensor, patch_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode normalised images, masked patches replaced by the mask token (FLAVA ``FlavaImageEmbeddings``).

        Args:
            images: float ``(B, 3, H, W)``, normalised, H x W = ``img_size``.
            patch_mask: bool ``(B, num_patches)`` (or ``(B, rows, columns)``), True = masked; None = no mask.

        Returns:
            ``(hidden, output)``: float ``(B, 1 + num_patches, D_i)`` each; ``hidden`` is the last block's
            output (the fusion encoder's input), ``output`` = ``norm(hidden)`` ([cls] first).

        Raises:
            ValueError: ``patch_mask`` of another shape.
        """
        patches = self.patch_embed(images)
        if patch_mask is not None:
            patch_mask = patch_mask.reshape(patch_mask.shape[0], -1)
            if patch_mask.shape != patches.shape[:2]:
                raise ValueError(f"patch_mask {tuple(patch_mask.shape)}: expected {tuple(patches.shape[:2])} "
                                 f"(batch, {self.grid[0]}x{self.grid[1]} patches)")
            patches = torch.where(patch_mask[..., None].to(patches.device), self.mask_token.to(patches.dtype),
                                  patches)
        cls = self.cls_token.expand(images.shape[0], -1, -1)
        hidden = self.pos_drop(torch.cat((cls, patches), dim=1) + self.pos_embed)
        for block in self.blocks:
            hidden = block(hidden)
        return hidden, self.norm(hidden)
