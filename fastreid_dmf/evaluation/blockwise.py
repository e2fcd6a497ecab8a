"""fast-reid's Re-ID metrics computed query block by query block: exact, in memory bounded by the block size.

fast-reid's ``ReidEvaluator`` builds the whole Q x G float32 distance matrix and ``np.argsort``s all of it
(int64 indices: 12 bytes per pair; 11.5 GB at MSMT17 size, 11,659 x 82,161), and its AQE builds an
(Q + G) x (Q + G) similarity matrix (35 GB there). This module gives the same numbers from one block of B
queries at a time (B x G distances), so peak memory is the features plus O(B x G).

No gallery sort is needed. For one query, let the valid gallery be the images that are not of its identity
*and* camera (fast-reid's junk rule, Market-1501 protocol), and let d_1 <= ... <= d_n be the distances of its
n matches. The rank of match k among the valid gallery is r_k = k + #{valid non-match j : d_j < d_k}: only the
non-matches closer than the farthest match count, and they are few (about r_n = n / INP per query).
Then, exactly as fast-reid's ``eval_market1501`` (``fastreid/evaluation/rank.py`` and its Cython twin
``rank_cylib/rank_cy.pyx``, which ``ReidEvaluator`` uses):

* CMC@r = 1 if r_1 <= r (averaged over queries with at least one match; others are skipped, as upstream);
* AP = (1/n) sum_k k / r_k, accumulated in float32 in rank order as the Cython code does;
* INP = n / r_n (mINP, Ye et al., TPAMI 2021).

The float32 accumulation order is the Cython code's, so the metrics equal ``ReidEvaluator``'s bit for bit
whenever both see the same ranking. A match and a non-match at exactly the same distance are ordered
match-last here; numpy's ``argsort`` (quicksort) leaves such ties in an unspecified order upstream.
Distances are fast-reid's (``build_dist``: cosine = 1 - cosine similarity, euclidean = squared distance),
computed per block; BLAS may round a block's products differently in the last bit, which can only swap
two gallery images whose distances differ by ~1e-7.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from fastreid.evaluation.reid_evaluation import ReidEvaluator

from .gathering import gathered_predictions

__all__ = ["BlockwiseReidEvaluator", "GalleryDistances", "blockwise_aqe", "blockwise_rank_metrics",
           "rank_metrics_by_block"]

logger = logging.getLogger(__name__)


class GalleryDistances:
    """fast-reid's distances (``fastreid/utils/compute_dist.py``) from query blocks to one gallery.

    The gallery side is prepared once (L2-normalised for "cosine", squared norms for "euclidean"); each call
    computes a block with the same operations as ``build_dist``.

    Args:
        gallery: float ``(G, D)``.
        metric: "cosine" (1 - cosine similarity) or "euclidean" (squared Euclidean distance).

    Raises:
        ValueError: another metric (``jaccard`` is re-ranking, not a block distance).
    """

    def __init__(self, gallery: torch.Tensor, metric: str) -> None:
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"config TEST.METRIC={metric!r}: expected 'cosine' or 'euclidean' for blockwise "
                             "evaluation")
        self.metric = metric
        if metric == "cosine":
            self.gallery_t = F.normalize(gallery, p=2, dim=1).t()
        else:
            self.gallery_t = gallery.t()
            self.gallery_sq = gallery.pow(2).sum(dim=1)[None, :]

    def __call__(self, query: torch.Tensor) -> torch.Tensor:
        """float32 ``(B, G)`` distances of the query block ``(B, D)``."""
        if self.metric == "cosine":  # 1 - s, in place (the same float32 rounding as build_dist's 1 - s)
            return torch.mm(F.normalize(query, p=2, dim=1), self.gallery_t).neg_().add_(1)
        dist = query.pow(2).sum(dim=1, keepdim=True) + self.gallery_sq
        return dist.addmm_(query, self.gallery_t, beta=1, alpha=-2)


def _match_ranks(dist: torch.Tensor, matches: torch.Tensor, valid: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based ranks of each query's matches among its valid gallery images, without sorting the gallery.

    Only images closer than (or as close as) a query's farthest match can precede a match, and there are few
    of them (about r_n = n / INP), so each query's match distances are sorted and only those images are
    placed among them (``searchsorted``, "left": a non-match tied with a match goes first).

    Args:
        dist: float ``(B, G)`` distances; matches / valid: bool ``(B, G)`` (matches are valid).

    Returns:
        ``(ranks, counts)``: int64 ``(B, M)`` ranks in ascending order, padded with 0 after the ``counts[b]``
        matches of query b (M = max count, at least 1); int64 ``(B,)`` counts.
    """
    num_rows = dist.shape[0]
    match_rows, match_cols = matches.nonzero(as_tuple=True)  # row-major: each row's matches together
    counts = torch.bincount(match_rows, minlength=num_rows)
    width = max(int(counts.max()), 1) if len(match_rows) else 1
    ranks = torch.zeros(num_rows, width, dtype=torch.int64, device=dist.device)
    match_dist = dist[match_rows, match_cols]
    farthest = torch.full((num_rows,), -math.inf, dtype=dist.dtype, device=dist.device)
    farthest.scatter_reduce_(0, match_rows, match_dist, reduce="amax")
    # Valid non-matches at most as far as the farthest match: the only images that can precede a match.
    ahead = valid & ~matches & (dist <= farthest[:, None])
    ahead_rows, ahead_cols = ahead.nonzero(as_tuple=True)
    ahead_dist = dist[ahead_rows, ahead_cols]
    match_ends = counts.cumsum(0).tolist()
    ahead_ends = torch.bincount(ahead_rows, minlength=num_rows).cumsum(0).tolist()
    match_start = ahead_start = 0
    for row in range(num_rows):
        count = match_ends[row] - match_start
        if count:
            thresholds = match_dist[match_start:match_ends[row]].sort().values
            slots = torch.searchsorted(thresholds, ahead_dist[ahead_start:ahead_ends[row]], right=False)
            before = torch.bincount(slots, minlength=count)[:count].cumsum(0)
            ranks[row, :count] = before + torch.arange(1, count + 1, device=dist.device)
        match_start, ahead_start = match_ends[row], ahead_ends[row]
    return ranks, counts


def rank_metrics_by_block(block_distances: Callable[[int, int], torch.Tensor], num_query: int,
                          query_pids: np.ndarray, gallery_pids: np.ndarray, query_camids: np.ndarray,
                          gallery_camids: np.ndarray, max_rank: int = 50, block_size: int = 128,
                          device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fast-reid's ``evaluate_rank`` (Market-1501 protocol) from distance blocks: ``(cmc, all_AP, all_INP)``.

    Args:
        block_distances: ``(start, stop) -> float (stop - start, G)`` distances of queries ``start:stop``.
        num_query: Q. query_pids, gallery_pids, query_camids, gallery_camids: integer ``(Q,)`` / ``(G,)``.
        max_rank: CMC length (fast-reid: 50, cut to G when G is smaller).
        block_size: queries per block (memory ~ 10 bytes x block_size x G).
        device: where the rank computation runs.

    Returns:
        ``cmc`` float32 ``(max_rank,)``, ``all_AP`` / ``all_INP`` float32 ``(valid queries,)``, as fast-reid's
        Cython ``evaluate_cy`` returns them.

    Raises:
        ValueError: no query has a valid match (fast-reid asserts the same), a bad block size.
    """
    if block_size < 1:
        raise ValueError(f"config TEST.BLOCKWISE.QUERIES={block_size}: expected a positive number of queries")
    device = torch.device(device)
    g_pids = torch.as_tensor(np.asarray(gallery_pids, dtype=np.int64), device=device)
    g_cams = torch.as_tensor(np.asarray(gallery_camids, dtype=np.int64), device=device)
    max_rank = min(max_rank, len(g_pids))
    q_pids_all = torch.as_tensor(np.asarray(query_pids, dtype=np.int64), device=device)
    q_cams_all = torch.as_tensor(np.asarray(query_camids, dtype=np.int64), device=device)
    cmc_counts = np.zeros(max_rank, dtype=np.float32)
    all_ap, all_inp = [], []
    for start in range(0, num_query, block_size):
        stop = min(start + block_size, num_query)
        q_pids, q_cams = q_pids_all[start:stop], q_cams_all[start:stop]
        dist = torch.as_tensor(block_distances(start, stop), device=device)
        same_id = g_pids[None, :] == q_pids[:, None]
        valid = ~(same_id & (g_cams[None, :] == q_cams[:, None]))
        ranks, counts = _match_ranks(dist, same_id & valid, valid)
        del dist, same_id, valid
        ranks, counts = ranks.cpu().numpy(), counts.cpu().numpy()
        keep = counts > 0
        ranks, counts = ranks[keep], counts[keep]
        if not len(counts):
            continue
        first = ranks[:, 0]
        cmc_counts += (first[:, None] <= np.arange(1, max_rank + 1)[None, :]).sum(axis=0).astype(np.float32)
        # AP in the Cython code's float32 arithmetic: tmp += (k / r_k) in double, stored in float32, in rank order.
        ap_sum = np.zeros(len(counts), dtype=np.float32)
        for k in range(ranks.shape[1]):
            present = k < counts
            term = (k + 1) / np.maximum(ranks[:, k], 1).astype(np.float64)
            ap_sum = np.where(present, (ap_sum.astype(np.float64) + term).astype(np.float32), ap_sum)
        all_ap.append(ap_sum / counts.astype(np.float32))
        last = ranks[np.arange(len(counts)), counts - 1]
        all_inp.append((counts / last.astype(np.float64)).astype(np.float32))
    num_valid = sum(len(a) for a in all_ap)
    if num_valid == 0:
        raise ValueError("no query has a match in the gallery (other than same-camera images); fast-reid's "
                         "evaluator asserts the same: check the test set's query / gallery split")
    cmc = cmc_counts / np.float32(num_valid)
    return cmc.astype(np.float32), np.concatenate(all_ap), np.concatenate(all_inp)


def blockwise_rank_metrics(query: torch.Tensor, gallery: torch.Tensor, query_pids: np.ndarray,
                           gallery_pids: np.ndarray, query_camids: np.ndarray, gallery_camids: np.ndarray,
                           metric: str = "cosine", max_rank: int = 50, block_size: int = 128,
                           device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fast-reid's ``build_dist`` + ``evaluate_rank`` over query blocks (:func:`rank_metrics_by_block`).

    Args:
        query: float ``(Q, D)``; gallery: float ``(G, D)`` features. metric: ``TEST.METRIC``.
        Others: as :func:`rank_metrics_by_block`.

    Raises:
        ValueError: no query has a valid match, a bad block size or metric.
    """
    device = torch.device(device)
    distances = GalleryDistances(gallery.to(device, torch.float32), metric)

    def block(start: int, stop: int) -> torch.Tensor:
        return distances(query[start:stop].to(device, torch.float32))

    return rank_metrics_by_block(block, query.shape[0], query_pids, gallery_pids, query_camids, gallery_camids,
                                 max_rank, block_size, device)


def blockwise_aqe(query: torch.Tensor, gallery: torch.Tensor, qe_times: int = 1, qe_k: int = 10,
                  alpha: float = 3.0, block_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """fast-reid's ``aqe`` (alpha query expansion, ``fastreid/evaluation/query_expansion.py``) by row blocks.

    Same steps and numpy calls as upstream (``argpartition`` for the top ``qe_k`` of each row, weights
    ``sim ** alpha``, mean of the weighted neighbours), on (block x N) similarities instead of N x N.

    Args:
        query: float ``(Q, D)``; gallery: float ``(G, D)``. qe_times, qe_k, alpha: ``TEST.AQE.*``.
        block_size: rows per block.

    Returns:
        Expanded ``(query, gallery)`` features, float ``(Q, D)`` / ``(G, D)`` on the CPU.
    """
    num_query = query.shape[0]
    all_feat = torch.cat((query, gallery), dim=0).cpu()
    norm_feat = F.normalize(all_feat, p=2, dim=1)
    all_feat = all_feat.numpy()
    for _ in range(qe_times):
        expanded = []
        for start in range(0, len(all_feat), block_size):
            sims = torch.mm(norm_feat[start:start + block_size], norm_feat.t()).numpy()
            for sim in sims:
                init_rank = np.argpartition(-sim, range(1, qe_k + 1))
                weights = np.power(sim[init_rank[:qe_k]].reshape((-1, 1)), alpha)
                expanded.append(np.mean(all_feat[init_rank[:qe_k], :] * weights, axis=0))
        all_feat = np.stack(expanded, axis=0)
        norm_feat = F.normalize(torch.from_numpy(all_feat), p=2, dim=1)
    return torch.from_numpy(all_feat[:num_query]), torch.from_numpy(all_feat[num_query:])


class BlockwiseReidEvaluator(ReidEvaluator):
    """fast-reid's ``ReidEvaluator`` with the ranking done per query block (module docstring): same results.

    Same constructor, ``process`` (features, pids, camids per batch) and result keys (``Rank-1/5/10``, ``mAP``,
    ``mINP``, ``metric``, percent); gathers the features of all processes as upstream. Config:
    ``TEST.BLOCKWISE.QUERIES`` (block size), ``TEST.AQE.*`` (blockwise AQE), ``TEST.METRIC``,
    ``TEST.RERANK.*`` (sparse k-reciprocal re-ranking, :class:`.rerank.KReciprocalJaccard`; also on a CPU,
    where fast-reid's needs CUDA). ROC (``TEST.ROC``) needs the whole matrix: it falls back to
    ``ReidEvaluator``'s evaluation, with a warning.
    """

    def evaluate(self):
        """See class docstring."""
        cfg = self.cfg
        if cfg.TEST.ROC.ENABLED:
            logger.warning("TEST.ROC needs the whole query x gallery matrix: using fast-reid's ReidEvaluator for "
                           "this evaluation (memory grows with query x gallery)")
            return super().evaluate()
        gathered = gathered_predictions(self._predictions)
        if gathered is None:  # not the main process
            return {}
        features, pids, camids = gathered
        num_query = self._num_query
        query, gallery = features[:num_query], features[num_query:]
        if cfg.TEST.AQE.ENABLED:
            logger.info("Test with AQE setting (blockwise)")
            query, gallery = blockwise_aqe(query, gallery, cfg.TEST.AQE.QE_TIME, cfg.TEST.AQE.QE_K,
                                           cfg.TEST.AQE.ALPHA)
        device = "cuda" if cfg.MODEL.DEVICE.startswith("cuda") and torch.cuda.is_available() else "cpu"
        labels = (pids[:num_query], pids[num_query:], camids[:num_query], camids[num_query:])
        if cfg.TEST.RERANK.ENABLED:
            logger.info("Test with rerank setting (sparse k-reciprocal re-ranking)")
            from .rerank import KReciprocalJaccard

            original = GalleryDistances(gallery.float(), cfg.TEST.METRIC)
            if cfg.TEST.METRIC == "cosine":  # as ReidEvaluator: re-rank normalised features
                jaccard = KReciprocalJaccard(F.normalize(query, dim=1), F.normalize(gallery, dim=1),
                                             cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2)
            else:
                jaccard = KReciprocalJaccard(query, gallery, cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2)
            lam = cfg.TEST.RERANK.LAMBDA

            def reranked(start: int, stop: int) -> np.ndarray:
                return jaccard.block(start, stop) * (1 - lam) + original(query[start:stop].float()).numpy() * lam

            cmc, all_ap, all_inp = rank_metrics_by_block(reranked, num_query, *labels,
                                                         block_size=cfg.TEST.BLOCKWISE.QUERIES)
        else:
            cmc, all_ap, all_inp = blockwise_rank_metrics(query, gallery, *labels, cfg.TEST.METRIC,
                                                          block_size=cfg.TEST.BLOCKWISE.QUERIES, device=device)
        results = OrderedDict()
        mean_ap, mean_inp = np.mean(all_ap), np.mean(all_inp)
        for rank in (1, 5, 10):
            results[f"Rank-{rank}"] = cmc[min(rank, len(cmc)) - 1] * 100
        results["mAP"] = mean_ap * 100
        results["mINP"] = mean_inp * 100
        results["metric"] = (mean_ap + cmc[0]) / 2 * 100
        self._results = results
        return copy.deepcopy(results)
