"""DMF model parts; importing registers ``build_dmf_backbone`` and META_ARCH ``DMF`` in fast-reid."""

from .backbone import DMFBackbone, build_dmf_backbone
from .losses import batch_hard_triplet_loss, pairwise_distances
from .meta_arch import DMF
from .pretrained import load_pretrained_vit
from .text_encoder import TextTokenEncoder, resolve_text_encoder_path

__all__ = ["DMF", "DMFBackbone", "build_dmf_backbone", "batch_hard_triplet_loss", "pairwise_distances",
           "load_pretrained_vit", "TextTokenEncoder", "resolve_text_encoder_path"]
