"""MMET's multimodal (fusion) encoder over ``[cls_m; projected image tokens; projected text tokens]``.

FLAVA (Singh et al., CVPR 2022, Sec. 3.1; transformers ``FlavaModel`` / ``FlavaMultimodalModel``), the
fusion encoder of MMET's official code: the unimodal encoders' last hidden states (before their final
LayerNorm) are projected to the fusion width by ``image_to_mm`` / ``text_to_mm``, joined end to end, a
learned [cls_m] is prepended, and pre-norm transformer blocks (FLAVA: 6) with a final LayerNorm run over
them; text padding is masked out of attention. Parameter names are timm's (``blocks.N.*``, ``norm``).
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

from .image_encoder import init_linear_layers, transformer_blocks

__all__ = ["FusionEncoder"]


class FusionEncoder(nn.Module):
    """Fusion transformer of MMET (FLAVA's multimodal encoder).

    Args:
        image_dim: D_i of the image encoder. text_dim: D_t of the text encoder.
        embed_dim: D_m, the fusion width (the Re-ID feature width).
        depth, num_heads, mlp_ratio, qkv_bias, ln_eps: transformer shape (FLAVA: 6, 12, 4, True, 1e-12).
        drop_path_rate: stochastic depth.
    """

    def __init__(self, image_dim: int, text_dim: int, embed_dim: int, depth: int = 6, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, ln_eps: float = 1e-6,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_to_mm = nn.Linear(image_dim, embed_dim)
        self.text_to_mm = nn.Linear(text_dim, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks = transformer_blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, ln_eps,
                                         drop_path_rate=drop_path_rate)
        self.norm = nn.LayerNorm(embed_dim, eps=ln_eps)
        trunc_normal_(self.cls_token, std=0.02)
        init_linear_layers(self)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Embedding names excluded from weight decay."""
        return {"cls_token"}

    def forward(self, image_hidden: torch.Tensor, text_hidden: torch.Tensor,
                text_valid: torch.Tensor) -> torch.Tensor:
        """Fuse one image and one description per row.

        Args:
            image_hidden: float ``(B, 1 + N, D_i)``, the image encoder's last hidden states (before its norm).
            text_hidden: float ``(B, L, D_t)``, the text encoder's last hidden states (before a final norm).
            text_valid: bool/int ``(B, L)``, True/1 at real tokens.

        Returns:
            float ``(B, 1 + (1 + N) + L, D_m)`` after the final LayerNorm: [cls_m] first, then the image
            positions, then the text positions.
        """
        tokens = torch.cat((self.image_to_mm(image_hidden), self.text_to_mm(text_hidden)), dim=1)
        batch = tokens.shape[0]
        tokens = torch.cat((self.cls_token.expand(batch, -1, -1), tokens), dim=1)
        valid = torch.cat((torch.ones(batch, 1 + image_hidden.shape[1], dtype=torch.bool, device=tokens.device),
                           text_valid.to(tokens.device).bool()), dim=1)
        attn_mask = valid[:, None, None, :]  # True = may attend; broadcast over heads and queries
        for block in self.blocks:
            tokens = block(tokens, attn_mask=attn_mask)
        return self.norm(tokens)
