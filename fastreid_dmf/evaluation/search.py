"""Nearest-neighbour search over gallery features with faiss: the engine of person search by image or text.

A DMF model puts descriptions and images in one feature space (DMF Sec. 3: one shared transformer; MMET: the
projections to D_m), so the same index answers image queries (Re-ID) and text queries (text-to-image person
search). Distances are fast-reid's (``fastreid/utils/compute_dist.py``, what ``ReidEvaluator`` ranks by):
``cosine`` = 1 - cosine similarity (faiss ``IndexFlatIP`` on L2-normalised features), ``euclidean`` = squared
Euclidean distance (faiss ``IndexFlatL2``). Flat indexes are exact; faiss only makes the search fast and
memory-light (no Q x G matrix is built when k is small).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["METRICS", "SearchResult", "Searcher"]

#: Distances the searcher computes, as ``TEST.METRIC`` names them.
METRICS = ("cosine", "euclidean")


def _as_float32(features: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty 2-D array (count, dim), got shape {array.shape}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: features hold NaN or infinite values")
    return array


@dataclass(frozen=True)
class SearchResult:
    """Ranked answers of Q queries.

    Attributes:
        distances: float32 ``(Q, k)``, ascending along each row (``metric``'s distance).
        indices: int64 ``(Q, k)``, gallery rows in rank order.
        labels: ``labels[q][r]``: the gallery label (path, pid, ...) at rank r of query q; empty when the
            searcher has no labels.
    """

    distances: np.ndarray
    indices: np.ndarray
    labels: list[list[Any]]


class Searcher:
    """Exact k-nearest-neighbour search of query features among gallery features (faiss flat index).

    Args:
        gallery_features: float ``(G, D)`` gallery features (torch or numpy), e.g. ``image_test_features``.
        metric: "cosine" or "euclidean" (as ``TEST.METRIC``).
        labels: optional G labels returned with the results (paths, ``(path, pid, camid)`` tuples, ...).

    Raises:
        ValueError: unknown metric, empty or non-finite features, or ``labels`` of another length.
    """

    def __init__(self, gallery_features: torch.Tensor | np.ndarray, metric: str = "cosine",
                 labels: list[Any] | None = None) -> None:
        import faiss

        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {METRICS}")
        gallery = _as_float32(gallery_features, "gallery features")
        if labels is not None and len(labels) != len(gallery):
            raise ValueError(f"{len(labels)} labels for {len(gallery)} gallery features; expected one per feature")
        self.metric = metric
        self.labels = list(labels) if labels is not None else None
        self.dim = gallery.shape[1]
        if metric == "cosine":
            faiss.normalize_L2(gallery)
            self.index = faiss.IndexFlatIP(self.dim)
        else:
            self.index = faiss.IndexFlatL2(self.dim)
        self.index.add(gallery)

    def __len__(self) -> int:
        """Gallery size G."""
        return int(self.index.ntotal)

    def search(self, query_features: torch.Tensor | np.ndarray, k: int = 10) -> SearchResult:
        """The k nearest gallery entries of each query.

        Args:
            query_features: float ``(Q, D)``.
            k: answers per query (clipped to the gallery size); >= 1.

        Returns:
            :class:`SearchResult` with ``(Q, min(k, G))`` distances and indices.

        Raises:
            ValueError: ``k`` < 1, a feature width other than the gallery's, empty or non-finite queries.
        """
        import faiss

        if k < 1:
            raise ValueError(f"k={k}: expected at least 1 result per query")
        queries = _as_float32(query_features, "query features")
        if queries.shape[1] != self.dim:
            raise ValueError(f"query features are {queries.shape[1]}-d, the gallery's {self.dim}-d; encode both "
                             "with the same model")
        k = min(int(k), len(self))
        if self.metric == "cosine":
            faiss.normalize_L2(queries)
            similarity, indices = self.index.search(queries, k)
            distances = 1.0 - similarity
        else:
            distances, indices = self.index.search(queries, k)
        labels = [[self.labels[i] for i in row] for row in indices] if self.labels is not None else []
        return SearchResult(distances.astype(np.float32), indices.astype(np.int64), labels)
