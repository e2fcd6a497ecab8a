"""Baselines run through the same trainer and evaluator as DMF.

Importing registers BACKBONE ``build_fastreid_vit_backbone`` (fast-reid's own ViT in the DMF model's shape,
no text) and META_ARCH ``ColorHistogramMatcher`` (a hand-made, no-learning matcher).
"""

from .color_histogram import ColorHistogramMatcher, hsv_stripe_histograms
from .fastreid_vit_backbone import build_fastreid_vit_backbone

__all__ = ["ColorHistogramMatcher", "build_fastreid_vit_backbone", "hsv_stripe_histograms"]
