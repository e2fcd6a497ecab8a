"""DMF model parts; importing registers BACKBONEs ``build_dmf_backbone`` and ``build_fastreid_vit_backbone``
(fast-reid's ViT in any shape, the no-text baseline) and META_ARCHs ``DMF`` and ``ColorHistogramMatcher``
(no-learning baseline) in fast-reid."""

from .backbone import DMFBackbone, build_dmf_backbone
from .color_histogram import ColorHistogramMatcher, hsv_stripe_histograms
from .export import build_fastreid_vit, export_fastreid_vit, fold_image_branch
from .fastreid_vit_backbone import build_fastreid_vit_backbone
from .losses import batch_hard_triplet_loss, pairwise_distances
from .meta_arch import DMF
from .pretrained import detect_checkpoint_family, load_pretrained_vit
from .text_encoder import TextTokenEncoder, resolve_text_encoder_path

__all__ = ["DMF", "DMFBackbone", "build_dmf_backbone", "batch_hard_triplet_loss", "pairwise_distances",
           "load_pretrained_vit", "detect_checkpoint_family", "export_fastreid_vit", "fold_image_branch",
           "build_fastreid_vit", "TextTokenEncoder", "resolve_text_encoder_path", "ColorHistogramMatcher",
           "hsv_stripe_histograms", "build_fastreid_vit_backbone"]
