"""Evaluation beside fast-reid's (its ``ReidEvaluator`` scores image Re-ID, unchanged).

* ``report``: side-by-side result tables;
* ``search``: :class:`~.search.Searcher`, exact faiss search with fast-reid's distances (image or text queries);
* ``text_to_image``: :class:`~.text_to_image.TextToImageEvaluator`, text-to-image retrieval as a fast-reid
  ``DatasetEvaluator`` (``DATASETS.TEXT_TESTS``).
"""

from .report import METRICS, compare_table, load_results

__all__ = ["METRICS", "compare_table", "load_results"]
