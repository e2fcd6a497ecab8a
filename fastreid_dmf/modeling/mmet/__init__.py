"""MMET (Xiang et al., arXiv 2304.09498): FLAVA-style image, text and fusion encoders with a Re-ID head.

Registers BACKBONE ``build_mmet_backbone`` and META_ARCH ``MMET``. Parts: ``image_encoder`` (ViT with a
MIM mask token), ``text_encoder`` (trainable ``transformers`` encoder), ``fusion_encoder``, ``backbone``
(the three with the Re-ID projections), ``flava`` (start from a ``FlavaModel`` folder), ``heads`` (MMM
prediction heads, dVAE targets), ``losses`` (MIM / MLM / ITM / contrastive), ``meta_arch``.
"""

from .backbone import MMETBackbone, build_mmet_backbone
from .meta_arch import MMET

__all__ = ["MMET", "MMETBackbone", "build_mmet_backbone"]
