"""Qualitative pictures of a trained DMF / MMET model: ranking lists (DMF Fig. 4) and attention maps (Fig. 5).

Modules, by job:

* :mod:`.ranking`: test features, distances, per-query AP and the top-k gallery images exactly as fast-reid's
  ``ReidEvaluator`` computes them (same-identity same-camera gallery images skipped, Market-1501 protocol);
* :mod:`.attention`: Grad-CAM / Eigen-CAM maps (``pytorch_grad_cam``) with an embedding-similarity target,
  attention rollout over the ViT blocks, and the text [cls]'s rollout over a description's tokens;
* :mod:`.figures`: the pictures (PIL ranking lists with an exact pixel layout, matplotlib overlays and bars);
* :mod:`.commands`: the bodies of ``tools/visualize_ranking.py`` and ``tools/visualize_attention.py``
  (argument checks, output files, nothing overwritten silently).

``import fastreid_dmf`` never loads this package.
"""

from .attention import (
    CAM_METHODS,
    METHODS,
    FeatureSimilarityTarget,
    attention_rollout,
    cam_maps,
    captured_attentions,
    image_maps,
    image_rollout,
    text_token_attention,
    vit_reshape_transform,
)
from .commands import load_test_images, query_image_paths, visualize_attention, visualize_ranking
from .figures import RankingLayout, attention_figure, contact_sheet, draw_ranking_list, token_bar_figure
from .ranking import QUERY_MODES, evaluator_distances, extract_test_features, rank_queries, select_queries

__all__ = ["CAM_METHODS", "METHODS", "QUERY_MODES", "FeatureSimilarityTarget", "RankingLayout", "attention_figure",
           "attention_rollout", "cam_maps", "captured_attentions", "contact_sheet", "draw_ranking_list",
           "evaluator_distances", "extract_test_features", "image_maps", "image_rollout", "load_test_images",
           "query_image_paths", "rank_queries", "select_queries", "text_token_attention", "token_bar_figure",
           "visualize_attention", "visualize_ranking", "vit_reshape_transform"]
