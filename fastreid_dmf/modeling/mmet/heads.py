"""MMET's pre-training heads: masked-token/patch prediction, image-text matching, and the dVAE target.

FLAVA (Singh et al., CVPR 2022; transformers ``FlavaMaskedPredictionHead`` / ``FlavaITMHead``), as used by
MMET's official code. A masked prediction head is ``dense -> GELU -> LayerNorm -> linear`` and runs only
on the masked positions (the model selects them first, so a 30k-word vocabulary costs little).
The DALL-E dVAE that gives FLAVA's MIM token targets is ``transformers``' ``FlavaImageCodebook``, read
from a local folder only (:class:`DVAETargets`); nothing is downloaded.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

__all__ = ["MaskedPredictionHead", "DVAETargets"]

logger = logging.getLogger(__name__)


class MaskedPredictionHead(nn.Module):
    """``dense (D -> D) -> GELU -> LayerNorm -> decoder (D -> out_dim)`` (FLAVA's masked prediction head).

    Args:
        in_dim: D, width of the states it reads.
        out_dim: vocabulary size (MLM, dVAE MIM) or ``patch_size**2 * 3`` (pixel MIM).
        ln_eps: LayerNorm epsilon.
    """

    def __init__(self, in_dim: int, out_dim: int, ln_eps: float = 1e-6) -> None:
        super().__init__()
        self.dense = nn.Linear(in_dim, in_dim)
        self.layer_norm = nn.LayerNorm(in_dim, eps=ln_eps)
        self.decoder = nn.Linear(in_dim, out_dim)
        for layer in (self.dense, self.decoder):
            trunc_normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """float ``(..., D)`` -> float ``(..., out_dim)``."""
        return self.decoder(self.layer_norm(F.gelu(self.dense(states))))


class DVAETargets(nn.Module):
    """Frozen DALL-E dVAE encoder giving one codebook id per image patch (FLAVA's and BEiT's MIM targets).

    The dVAE sees the image at 8 pixels per target cell (FLAVA: 112 x 112 for a 14 x 14 grid), in [0, 1]
    mapped to ``[eps, 1 - eps]`` (DALL-E's ``map_pixels``, eps 0.1), as FLAVA's image processor prepares it.
    Kept out of ``parameters()`` and the state dict (it is re-read from its folder, as a frozen text
    encoder is).

    Args:
        path: a local ``FlavaImageCodebook.save_pretrained`` folder (``MODEL.MMET.MIM.DVAE_PATH``).
        grid: ``(rows, columns)`` of the image encoder's patch grid.

    Attributes:
        vocab_size: number of codebook entries (FLAVA: 8192).

    Raises:
        FileNotFoundError: ``path`` is not a folder with a ``config.json``.
        OSError: ``transformers`` cannot read the codebook there.
    """

    #: DALL-E's ``map_pixels`` epsilon.
    LOGIT_EPS = 0.1

    def __init__(self, path: str, grid: tuple[int, int]) -> None:
        super().__init__()
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise FileNotFoundError(f"config MODEL.MMET.MIM.DVAE_PATH={path!r}: expected a local folder saved by "
                                    "transformers' FlavaImageCodebook.save_pretrained (config.json + weights), "
                                    "e.g. a copy of facebook/flava-image-codebook")
        from transformers import FlavaImageCodebook

        try:
            codebook = FlavaImageCodebook.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise OSError(f"config MODEL.MMET.MIM.DVAE_PATH={path!r}: could not load a FlavaImageCodebook: {err}"
                          ) from err
        codebook.requires_grad_(False).eval()
        self._frozen = [codebook]  # a list hides it from parameters() / state_dict()
        self.grid = (int(grid[0]), int(grid[1]))
        self.vocab_size = int(codebook.config.vocab_size)
        logger.info("MIM targets: DALL-E dVAE %s (%d codes) on %dx%d-pixel images", path, self.vocab_size,
                    8 * self.grid[0], 8 * self.grid[1])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Codebook ids of un-normalised images.

        Args:
            images: float ``(B, 3, H, W)`` in 0..255 (as fast-reid's loaders give).

        Returns:
            int64 ``(B, rows * columns)``, row-major over the patch grid.
        """
        codebook = self._frozen[0].to(images.device)
        small = F.interpolate(images.float() / 255.0, size=(8 * self.grid[0], 8 * self.grid[1]), mode="bilinear",
                              align_corners=False).clamp(0, 1)
        mapped = (1 - 2 * self.LOGIT_EPS) * small + self.LOGIT_EPS
        return codebook.get_codebook_indices(mapped).flatten(1)
