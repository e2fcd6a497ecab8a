"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with sparse matrices: fast-reid's ``TEST.RERANK``, bounded.

fast-reid's ``compute_jaccard_distance`` (``fastreid/utils/compute_dist.py``) follows the paper with three
dense N x N float32 matrices over the N = Q + G test images (V, its query-expanded copy, the Jaccard distance;
~35 GB each at MSMT17 size, 93,820 images) and moves the features to CUDA unconditionally. The same steps here:

1. k1 nearest neighbours of every image by squared Euclidean distance (faiss ``IndexFlatL2``, exact; fast-reid's
   CPU ``search_option`` 3), ``N x k1`` integers;
2. k-reciprocal neighbours, their expansion with the k1/2-reciprocal sets sharing more than 2/3 of their
   members, and V's row i = softmax of minus the squared distances to that expansion (fast-reid's code and
   torch operations) -- stored as a sparse CSR matrix (tens of entries per row);
3. query expansion: row i of V averaged over i's k2 nearest neighbours (float32 sum in neighbour order,
   then divided by k2, as ``np.mean``), still sparse;
4. the Jaccard distance of each query to every gallery image, 1 - s / (2 - s) with
   s = sum_m min(V_qm, V_gm), accumulated in float32 in ascending m as fast-reid does, one query block at a
   time (only Q x G of fast-reid's N x N is ever used);
5. ``final = jaccard * (1 - lambda) + original * lambda`` per block, ranked by
   :func:`.blockwise.rank_metrics_by_block`.

Memory: the features, ``N x k1`` neighbours, the sparse V (and its column copy) and one block of distances.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["KReciprocalJaccard"]

logger = logging.getLogger(__name__)


def _sparse_rows(rows: list[np.ndarray], values: list[np.ndarray], size: int):
    from scipy import sparse

    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    indices = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    data = np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32)
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(size, size))
    matrix.sort_indices()
    return matrix


class KReciprocalJaccard:
    """The k-reciprocal Jaccard distances of Q query and G gallery features (module docstring), by query block.

    Args:
        query: float ``(Q, D)``; gallery: float ``(G, D)`` (L2-normalised by the caller for cosine, as fast-reid's
            ``ReidEvaluator`` does before re-ranking).
        k1, k2: ``TEST.RERANK.K1`` / ``K2``.

    Raises:
        ValueError: k1 < 1, k2 < 1, or fewer than k1 images in all.
    """

    def __init__(self, query: torch.Tensor, gallery: torch.Tensor, k1: int = 20, k2: int = 6) -> None:
        import faiss
        from fastreid.utils.compute_dist import k_reciprocal_neigh

        if k1 < 1 or k2 < 1:
            raise ValueError(f"config TEST.RERANK.K1={k1}, K2={k2}: expected positive neighbour counts")
        features = torch.cat((query, gallery), dim=0).float().cpu()
        num = features.shape[0]
        if num < k1:
            raise ValueError(f"re-ranking with TEST.RERANK.K1={k1} needs at least {k1} test images, got {num}")
        self.num_query, self.size = query.shape[0], num
        index = faiss.IndexFlatL2(features.shape[1])
        index.add(features.numpy())
        _, initial_rank = index.search(features.numpy(), k1)
        nn_k1 = [k_reciprocal_neigh(initial_rank, i, k1) for i in range(num)]
        half = int(np.around(k1 / 2))
        nn_k1_half = [k_reciprocal_neigh(initial_rank, i, half) for i in range(num)]
        rows, values = [], []
        for i in range(num):
            reciprocal = nn_k1[i]
            expansion = reciprocal
            for candidate in reciprocal:
                candidate_set = nn_k1_half[candidate]
                if len(np.intersect1d(candidate_set, reciprocal)) > 2 / 3 * len(candidate_set):
                    expansion = np.append(expansion, candidate_set)
            expansion = np.unique(expansion)
            x, y = features[i].unsqueeze(0), features[expansion]
            dist = torch.pow(x, 2).sum(dim=1, keepdim=True).expand(1, len(expansion)) + \
                torch.pow(y, 2).sum(dim=1, keepdim=True).expand(len(expansion), 1).t()
            dist.addmm_(x, y.t(), beta=1, alpha=-2)
            rows.append(expansion)
            values.append(F.softmax(-dist, dim=1).view(-1).numpy())
        v = _sparse_rows(rows, values, num)
        if k2 != 1:
            v = self._query_expansion(v, initial_rank[:, :k2], k2)
        self.v = v
        self.v_columns = v.tocsc()
        self.v_columns.sort_indices()
        logger.info("k-reciprocal re-ranking: %d images, V with %d entries (%.1f per row)", num, v.nnz, v.nnz / num)

    @staticmethod
    def _query_expansion(v, neighbours: np.ndarray, k2: int):
        """Row i -> mean of the rows of i's k2 nearest neighbours (float32 sum in neighbour order, then / k2)."""
        num = v.shape[0]
        out_rows, out_values = [], []
        for i in range(num):
            acc: dict[int, np.float32] = {}
            for j in neighbours[i]:
                start, stop = v.indptr[j], v.indptr[j + 1]
                for col, val in zip(v.indices[start:stop], v.data[start:stop], strict=True):
                    acc[col] = np.float32(acc.get(col, np.float32(0)) + val)
            cols = np.fromiter(sorted(acc), dtype=np.int64, count=len(acc))
            out_rows.append(cols)
            out_values.append(np.array([acc[c] for c in cols], dtype=np.float32) / np.float32(k2))
        return _sparse_rows(out_rows, out_values, num)

    def block(self, start: int, stop: int) -> np.ndarray:
        """float32 ``(stop - start, G)`` Jaccard distances of queries ``start:stop`` to the gallery (>= 0)."""
        q, g = self.num_query, self.size - self.num_query
        out = np.zeros((stop - start, g), dtype=np.float32)
        cols_ptr, cols_rows, cols_data = self.v_columns.indptr, self.v_columns.indices, self.v_columns.data
        for row, i in enumerate(range(start, stop)):
            lo, hi = self.v.indptr[i], self.v.indptr[i + 1]
            support, weights = self.v.indices[lo:hi], self.v.data[lo:hi]
            firsts, lasts = cols_ptr[support], cols_ptr[support + 1]
            lengths = lasts - firsts
            # positions of every column entry of V's support columns, in ascending column order
            offsets = np.repeat(firsts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
            positions = np.arange(lengths.sum()) + offsets
            images = cols_rows[positions]
            mins = np.minimum(np.repeat(weights, lengths), cols_data[positions])
            in_gallery = images >= q
            shared = np.zeros(g, dtype=np.float32)
            np.add.at(shared, images[in_gallery] - q, mins[in_gallery])  # float32, ascending m, as fast-reid
            out[row] = 1 - shared / (2 - shared)
        out[out < 0] = 0.0
        return out
