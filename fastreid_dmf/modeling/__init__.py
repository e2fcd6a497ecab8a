"""Model parts of fastreid-dmf; importing registers them in fast-reid's registries.

Shared by every method (this folder): the text pipeline (``text/``: encoder loading, tokenising +
encoding, the feature cache; DMF Eq. 5 before the projection), pre-trained ViT loading
(``pretrained``), export to fast-reid's ViT (``export``) and the soft-margin batch-hard triplet loss
(``losses``, DMF Eq. 1) and the Re-ID meta-architecture base both methods extend (``reid_baseline``).

One folder per method, each registering its own components:

* ``dmf/``: BACKBONE ``build_dmf_backbone`` and META_ARCH ``DMF`` (DMF Eq. 2-5);
* ``mmet/``: BACKBONE ``build_mmet_backbone`` and META_ARCH ``MMET`` (FLAVA encoders, MMM, Re-ID head);
* ``baselines/``: BACKBONE ``build_fastreid_vit_backbone`` (fast-reid's ViT in any shape, the no-text
  baseline) and META_ARCH ``ColorHistogramMatcher`` (no learning).
"""

from .baselines import ColorHistogramMatcher, build_fastreid_vit_backbone, hsv_stripe_histograms
from .dmf import DMF, DMFBackbone, build_dmf_backbone
from .export import build_fastreid_vit, export_fastreid_vit, fold_image_branch
from .losses import batch_hard_triplet_loss, pairwise_distances
from .mmet import MMET, MMETBackbone, build_mmet_backbone
from .pretrained import detect_checkpoint_family, load_pretrained_vit
from .text import TextTokenEncoder, resolve_text_encoder_path

__all__ = ["DMF", "DMFBackbone", "build_dmf_backbone", "batch_hard_triplet_loss", "pairwise_distances",
           "load_pretrained_vit", "detect_checkpoint_family", "export_fastreid_vit", "fold_image_branch",
           "build_fastreid_vit", "TextTokenEncoder", "resolve_text_encoder_path", "ColorHistogramMatcher",
           "hsv_stripe_histograms", "build_fastreid_vit_backbone", "MMET", "MMETBackbone", "build_mmet_backbone"]
