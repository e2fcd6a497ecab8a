"""``Searcher``: exact faiss search with fast-reid's distances, labels carried, bad input refused."""

import numpy as np
import pytest
import torch
from fastreid.utils.compute_dist import build_dist

from fastreid_dmf.evaluation.search import Searcher


@pytest.fixture
def features():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(40, 16, generator=generator), torch.randn(5, 16, generator=generator)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_search_returns_fastreid_distances_in_rank_order(features, metric):
    gallery, queries = features
    result = Searcher(gallery, metric).search(queries, k=7)
    expected = build_dist(queries, gallery, metric)  # what ReidEvaluator ranks by
    order = np.argsort(expected, axis=1)[:, :7]
    np.testing.assert_array_equal(result.indices, order)
    np.testing.assert_allclose(result.distances, np.take_along_axis(expected, order, axis=1), atol=1e-4)
    assert (np.diff(result.distances, axis=1) >= -1e-6).all()


def test_labels_follow_the_ranked_indices(features):
    gallery, queries = features
    labels = [f"img_{i}.jpg" for i in range(len(gallery))]
    result = Searcher(gallery, labels=labels).search(queries[:2], k=3)
    assert result.labels == [[labels[i] for i in row] for row in result.indices]


def test_k_is_clipped_to_the_gallery_size(features):
    gallery, queries = features
    assert Searcher(gallery[:4]).search(queries, k=10).indices.shape == (5, 4)


def test_a_query_equal_to_a_gallery_feature_finds_it_first(features):
    gallery, _ = features
    result = Searcher(gallery).search(gallery[[3, 17]], k=1)
    assert result.indices[:, 0].tolist() == [3, 17]


@pytest.mark.parametrize("bad, message", [
    (dict(metric="jaccard"), "metric 'jaccard'"),
    (dict(labels=["only one"]), "1 labels for 40 gallery features"),
])
def test_bad_arguments_are_refused(features, bad, message):
    with pytest.raises(ValueError, match=message):
        Searcher(features[0], **bad)


def test_bad_queries_are_refused(features):
    gallery, queries = features
    searcher = Searcher(gallery)
    with pytest.raises(ValueError, match="8-d, the gallery's 16-d"):
        searcher.search(queries[:, :8])
    with pytest.raises(ValueError, match="k=0"):
        searcher.search(queries, k=0)
    with pytest.raises(ValueError, match="NaN"):
        searcher.search(torch.full((1, 16), float("nan")))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        Searcher(torch.zeros(0, 16))
