"""Ranking lists as fast-reid's evaluator sees them: test features, distances, per-query AP, top-k gallery.

DMF (Xiang et al., arXiv 2211.00933) Fig. 4 shows the top-ranked gallery images of some queries with green
(same identity) and red (other identity) borders. The ranking drawn must be the one the reported mAP comes
from, so every step is fast-reid's own:

* features: fast-reid's test loader (:func:`~fastreid_dmf.data.build.build_dmf_test_loader`, query then
  gallery) through ``fastreid.evaluation.inference_on_dataset`` with ``flip_test=TEST.FLIP.ENABLED`` (as
  ``DefaultTrainer.test`` runs it), collected by :class:`FeatureCollector`;
* distances: ``ReidEvaluator.evaluate``'s steps (``TEST.AQE`` query expansion, ``build_dist`` with
  ``TEST.METRIC``, ``TEST.RERANK`` re-ranking), :func:`evaluator_distances`;
* order and AP: ``np.argsort`` of each distance row, gallery images of the query's identity *and* camera
  removed (Market-1501 protocol, ``fastreid/evaluation/rank.py``), AP per query from
  ``fastreid.evaluation.rank.evaluate_rank`` (:func:`rank_queries`). Queries whose identity has no other-camera
  gallery image have no AP (the evaluator skips them too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from fastreid.evaluation import DatasetEvaluator  # fastreid_dmf (imported first, as the parent package) patches it

__all__ = ["QUERY_MODES", "FeatureCollector", "QueryRanking", "TestFeatures", "check_dataset_name",
           "evaluator_distances", "extract_test_features", "rank_queries", "select_queries"]

logger = logging.getLogger(__name__)

#: Values of ``--queries``.
QUERY_MODES = ("worst", "best", "random", "ids")


@dataclass
class TestFeatures:
    """Query and gallery test features with their labels, in the test loader's order.

    Attributes:
        query, gallery: float32 ``(Q, D)`` / ``(G, D)`` CPU features (``model(batch)`` in eval mode, flip-averaged
            when ``TEST.FLIP.ENABLED``).
        query_pids, gallery_pids, query_camids, gallery_camids: int64 ``(Q,)`` / ``(G,)``.
        query_paths, gallery_paths: image files.
    """

    query: torch.Tensor
    gallery: torch.Tensor
    query_pids: np.ndarray
    gallery_pids: np.ndarray
    query_camids: np.ndarray
    gallery_camids: np.ndarray
    query_paths: list[str] = field(default_factory=list)
    gallery_paths: list[str] = field(default_factory=list)


class FeatureCollector(DatasetEvaluator):
    """A fast-reid ``DatasetEvaluator`` that keeps what ``ReidEvaluator.process`` keeps, plus the image paths.

    Args:
        num_query: the loader's query count (the first ``num_query`` items are queries).

    ``evaluate()`` returns :class:`TestFeatures` (``inference_on_dataset`` hands it back).
    """

    def __init__(self, num_query: int) -> None:
        self.num_query = int(num_query)
        self.reset()

    def reset(self) -> None:
        """Forget collected batches."""
        self._feats: list[torch.Tensor] = []
        self._pids: list[torch.Tensor] = []
        self._camids: list[torch.Tensor] = []
        self._paths: list[str] = []

    def process(self, inputs: dict, outputs: torch.Tensor) -> None:
        """Keep float32 ``(B, D)`` ``outputs`` with the batch's ``targets``, ``camids`` and ``img_paths``."""
        self._feats.append(outputs.detach().to("cpu", torch.float32))
        self._pids.append(torch.as_tensor(inputs["targets"]).cpu())
        self._camids.append(torch.as_tensor(inputs["camids"]).cpu())
        self._paths.extend(str(p) for p in inputs["img_paths"])

    def evaluate(self) -> TestFeatures:
        """The collected features, split into query and gallery.

        Raises:
            ValueError: nothing collected or no gallery images.
        """
        if not self._feats:
            raise ValueError("the test loader gave no images")
        feats = torch.cat(self._feats)
        pids = torch.cat(self._pids).numpy().astype(np.int64)
        camids = torch.cat(self._camids).numpy().astype(np.int64)
        q = self.num_query
        if not 0 < q < len(feats):
            raise ValueError(f"test set with {q} queries and {len(feats) - q} gallery images: need both")
        return TestFeatures(feats[:q], feats[q:], pids[:q], pids[q:], camids[:q], camids[q:],
                            self._paths[:q], self._paths[q:])


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name that fast-reid's ``DATASET_REGISTRY`` does not hold.

    Raises:
        ValueError: naming ``--dataset`` and listing the registered names.
    """
    from fastreid.data.datasets import DATASET_REGISTRY

    if name not in DATASET_REGISTRY._obj_map:
        raise ValueError(f"--dataset {name!r} is not a registered fast-reid dataset; expected one of "
                         f"{sorted(DATASET_REGISTRY._obj_map)}")


def extract_test_features(cfg, model: torch.nn.Module, dataset_name: str) -> TestFeatures:
    """Test features of ``dataset_name`` as fast-reid's evaluation computes them (see the module docstring).

    Args:
        cfg: the model's frozen config (``TEST.IMS_PER_BATCH``, ``DATALOADER.NUM_WORKERS``, ``TEST.FLIP``).
        model: the fast-reid model (put in eval mode by ``inference_on_dataset``).
        dataset_name: a registered fast-reid dataset (``DATASET_REGISTRY``).

    Returns:
        :class:`TestFeatures`.

    Raises:
        ValueError: an unknown dataset name (the message lists the registered ones) or an empty test set.
        FileNotFoundError, OSError: from the dataset class (missing folders) or an unreadable image.
    """
    from fastreid.evaluation import inference_on_dataset

    from ...data.build import build_dmf_test_loader

    check_dataset_name(dataset_name)
    loader, num_query = build_dmf_test_loader(cfg, dataset_name)
    collector = FeatureCollector(num_query)
    return inference_on_dataset(model, loader, collector, flip_test=cfg.TEST.FLIP.ENABLED)


def evaluator_distances(cfg, query: torch.Tensor, gallery: torch.Tensor) -> np.ndarray:
    """The distance matrix ``ReidEvaluator.evaluate`` ranks by (fast-reid ``evaluation/reid_evaluation.py``).

    ``TEST.AQE`` (``aqe``) when enabled, then ``build_dist(query, gallery, TEST.METRIC)``, then, when
    ``TEST.RERANK.ENABLED``, the k-reciprocal Jaccard distance mixed in with ``TEST.RERANK.LAMBDA``.

    Args:
        query, gallery: float32 ``(Q, D)`` / ``(G, D)`` features.

    Returns:
        float32 ``(Q, G)`` distances (smaller = more similar).
    """
    import torch.nn.functional as F
    from fastreid.evaluation.query_expansion import aqe
    from fastreid.utils.compute_dist import build_dist

    if cfg.TEST.AQE.ENABLED:
        query, gallery = aqe(query, gallery, cfg.TEST.AQE.QE_TIME, cfg.TEST.AQE.QE_K, cfg.TEST.AQE.ALPHA)
    dist = build_dist(query, gallery, cfg.TEST.METRIC)
    if cfg.TEST.RERANK.ENABLED:
        if cfg.TEST.METRIC == "cosine":
            query, gallery = F.normalize(query, dim=1), F.normalize(gallery, dim=1)
        rerank = build_dist(query, gallery, metric="jaccard", k1=cfg.TEST.RERANK.K1, k2=cfg.TEST.RERANK.K2)
        dist = rerank * (1 - cfg.TEST.RERANK.LAMBDA) + dist * cfg.TEST.RERANK.LAMBDA
    return np.ascontiguousarray(dist, dtype=np.float32)


@dataclass(frozen=True)
class QueryRanking:
    """The evaluated ranking of one query.

    Attributes:
        index: the query's row (test-loader order).
        ap: its average precision in [0, 1] (``evaluate_rank``), None when no gallery image counts as a match.
        top: gallery rows of the first k kept images, best first (int64 ``(<=k,)``).
        distances: their distances, float32 ``(<=k,)``, ascending.
        matches: bool ``(<=k,)``, same identity as the query.
        skipped: gallery images of the query's identity and camera, left out of the ranking.
        kept: gallery images in the ranking (G - skipped).
    """

    index: int
    ap: float | None
    top: np.ndarray
    distances: np.ndarray
    matches: np.ndarray
    skipped: int
    kept: int


def rank_queries(dist: np.ndarray, features: TestFeatures, k: int) -> tuple[list[QueryRanking], float | None]:
    """Per-query rankings with fast-reid's rule and AP (see the module docstring).

    Args:
        dist: float32 ``(Q, G)`` distances (:func:`evaluator_distances`).
        features: the labels (pids, camids).
        k: gallery images to keep per query (fewer when the gallery has fewer kept images).

    Returns:
        ``(rankings, mAP)``: one :class:`QueryRanking` per query, in order; the mean AP over queries with a
        match (what ``ReidEvaluator`` reports as mAP / 100), None when no query has one.

    Raises:
        ValueError: ``k`` < 1 or ``dist`` of another shape than (Q, G).
        RuntimeError: ``evaluate_rank`` returned another number of APs than there are valid queries.
    """
    from fastreid.evaluation.rank import evaluate_rank

    q_pids, g_pids = features.query_pids, features.gallery_pids
    q_camids, g_camids = features.query_camids, features.gallery_camids
    if k < 1:
        raise ValueError(f"--k {k}: expected at least 1")
    if dist.shape != (len(q_pids), len(g_pids)):
        raise ValueError(f"distance matrix {dist.shape}: expected ({len(q_pids)}, {len(g_pids)})")
    same_pid = g_pids[None, :] == q_pids[:, None]
    removed = same_pid & (g_camids[None, :] == q_camids[:, None])
    valid = (same_pid & ~removed).any(axis=1)
    aps: list[float | None] = [None] * len(q_pids)
    mean_ap = None
    if valid.any():
        _, all_ap, _ = evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids, max_rank=min(50, len(g_pids)))
        all_ap = np.asarray(all_ap, dtype=np.float64)
        if len(all_ap) != int(valid.sum()):
            raise RuntimeError(f"evaluate_rank gave {len(all_ap)} APs for {int(valid.sum())} queries with a match")
        for row, ap in zip(np.flatnonzero(valid), all_ap):
            aps[row] = float(ap)
        mean_ap = float(all_ap.mean())
    order = np.argsort(dist, axis=1)  # as evaluate_rank orders
    rankings = []
    for row in range(len(q_pids)):
        kept = order[row][~removed[row][order[row]]]
        top = kept[:k]
        rankings.append(QueryRanking(row, aps[row], top.astype(np.int64), dist[row, top].astype(np.float32),
                                     same_pid[row, top], int(removed[row].sum()), len(kept)))
    return rankings, mean_ap


def select_queries(rankings: Sequence[QueryRanking], query_pids: np.ndarray, mode: str, num: int,
                   ids: Sequence[int] = (), seed: int = 0) -> list[int]:
    """Which queries to draw.

    Args:
        rankings: :func:`rank_queries` output.
        query_pids: int ``(Q,)``.
        mode: "worst" / "best": the ``num`` queries of lowest / highest AP (ties by query order; queries without
            AP left out); "random": ``num`` queries drawn without replacement with ``numpy.random.default_rng(seed)``,
            in query order; "ids": every query of the identities ``ids``, in the order given (``num`` unused).
        num: how many (>= 1).

    Returns:
        Query rows.

    Raises:
        ValueError: unknown mode, ``num`` < 1, "ids" without ids or with an identity that has no query,
            ids with another mode, or "worst" / "best" when no query has an AP.
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"--queries {mode!r}: expected one of {QUERY_MODES}")
    if num < 1:
        raise ValueError(f"--num {num}: expected at least 1")
    if ids and mode != "ids":
        raise ValueError(f"--ids given with --queries {mode!r}; use --queries ids (or leave --queries out)")
    if mode == "ids":
        if not ids:
            raise ValueError("--queries ids needs --ids PID [PID ...]")
        rows = []
        for pid in ids:
            found = np.flatnonzero(query_pids == pid).tolist()
            if not found:
                raise ValueError(f"--ids {pid}: no query image of identity {pid} (the query set has identities "
                                 f"{sorted(set(query_pids.tolist()))[:20]}...)")
            rows.extend(found)
        return rows
    if mode == "random":
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(len(rankings), size=min(num, len(rankings)), replace=False).tolist())
    scored = [(r.ap, r.index) for r in rankings if r.ap is not None]
    if not scored:
        raise ValueError(f"--queries {mode}: no query has a matching gallery image from another camera, so none "
                         "has an AP; use --queries random or ids")
    scored.sort(key=lambda item: (item[0] if mode == "worst" else -item[0], item[1]))
    return [index for _, index in scored[:num]]
