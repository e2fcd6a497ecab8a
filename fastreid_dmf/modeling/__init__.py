"""DMF model parts; importing registers ``build_dmf_backbone`` and META_ARCH ``DMF`` in fast-reid."""

from .backbone import DMFBackbone, build_dmf_backbone
from .export import build_fastreid_vit, export_fastreid_vit, fold_image_branch
from .losses import batch_hard_triplet_loss, pairwise_distances
from .meta_arch import DMF
from .pretrained import detect_checkpoint_family, load_pretrained_vit
from .text_encoder import TextTokenEncoder, resolve_text_encoder_path

__all__ = ["DMF", "DMFBackbone", "build_dmf_backbone", "batch_hard_triplet_loss", "pairwise_distances",
           "load_pretrained_vit", "detect_checkpoint_family", "export_fastreid_vit", "fold_image_branch",
           "build_fastreid_vit", "TextTokenEncoder", "resolve_text_encoder_path"]
