"""``BlockwiseReidEvaluator``: fast-reid's metrics bit for bit, query block by query block."""

import numpy as np
import pytest
import torch
from fastreid.evaluation.rank import evaluate_rank
from fastreid.evaluation.reid_evaluation import ReidEvaluator
from fastreid.utils.compute_dist import build_dist

from fastreid_dmf.config import load_config
from fastreid_dmf.evaluation.blockwise import BlockwiseReidEvaluator, blockwise_aqe, blockwise_rank_metrics
from tests.shared import DEMO_CONFIGS


def make_test_set(seed, num_query=60, num_gallery=500, dim=16, ids=40):
    """Features clustered by identity; some query identities are absent from the gallery (no valid match)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids + 10, dim)).astype(np.float32)
    q_pids = rng.integers(0, ids + 10, num_query)
    g_pids = rng.integers(0, ids, num_gallery)
    q_cams, g_cams = rng.integers(0, 3, num_query), rng.integers(0, 3, num_gallery)
    noise = lambda n: rng.normal(size=(n, dim)).astype(np.float32)  # noqa: E731
    query = torch.from_numpy(centres[q_pids] + noise(num_query))
    gallery = torch.from_numpy(centres[g_pids] + noise(num_gallery))
    return query, gallery, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("block_size", [1, 7, 256])
def test_metrics_equal_fastreid_evaluate_rank_bit_for_bit(metric, block_size):
    query, gallery, q_pids, g_pids, q_cams, g_cams = make_test_set(seed=block_size)
    cmc, all_ap, all_inp = evaluate_rank(build_dist(query, gallery, metric), q_pids, g_pids, q_cams, g_cams)
    ours = blockwise_rank_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams, metric, block_size=block_size)
    assert np.array_equal(cmc, ours[0])
    assert np.array_equal(np.asarray(all_ap), ours[1]) and np.array_equal(np.asarray(all_inp), ours[2])
    assert len(ours[1]) < len(query)  # queries without a valid match were skipped, as upstream


def test_same_camera_images_of_the_query_identity_are_junk():
    # one query (pid 1, camera 0); gallery: its identity in camera 0 (junk, closest), a stranger, its identity
    # in camera 1. Ranked without junk: stranger (rank 1), match (rank 2) -> AP 1/2, Rank-1 0.
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.5, 0.5]])
    cmc, all_ap, all_inp = blockwise_rank_metrics(query, gallery, np.array([1]), np.array([1, 2, 1]),
                                                  np.array([0]), np.array([0, 0, 1]), "euclidean")
    assert cmc[0] == 0.0 and cmc[1] == 1.0
    assert all_ap.tolist() == [0.5] and all_inp.tolist() == [0.5]


def test_a_match_tied_with_a_non_match_is_ranked_after_it():
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # same distance: the stranger (index 0) and the match
    cmc, all_ap, _ = blockwise_rank_metrics(query, gallery, np.array([1]), np.array([2, 1]), np.array([0]),
                                            np.array([1, 1]), "cosine")
    assert cmc[0] == 0.0 and all_ap.tolist() == [0.5]


def test_no_valid_match_anywhere_is_refused():
    query, gallery, _, g_pids, q_cams, g_cams = make_test_set(seed=0)
    with pytest.raises(ValueError, match="no query has a match"):
        blockwise_rank_metrics(query, gallery, np.full(len(query), 999), g_pids, q_cams, g_cams)


def test_blockwise_aqe_equals_fastreid_aqe():
    from fastreid.evaluation.query_expansion import aqe

    query, gallery, *_ = make_test_set(seed=3)
    expected = aqe(query, gallery, qe_times=2, qe_k=5, alpha=3.0)
    ours = blockwise_aqe(query, gallery, qe_times=2, qe_k=5, alpha=3.0, block_size=37)
    for a, b in zip(expected, ours, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _fed(evaluator, query, gallery, q_pids, g_pids, q_cams, g_cams, batch=50):
    features = torch.cat((query, gallery))
    pids, cams = np.concatenate((q_pids, g_pids)), np.concatenate((q_cams, g_cams))
    evaluator.reset()
    for start in range(0, len(features), batch):
        evaluator.process({"targets": torch.as_tensor(pids[start:start + batch]),
                           "camids": torch.as_tensor(cams[start:start + batch])}, features[start:start + batch])
    return evaluator.evaluate()


@pytest.mark.parametrize("aqe", [False, True])
def test_evaluator_returns_reid_evaluators_results(aqe):
    data = make_test_set(seed=5)
    cfg = load_config(f"{DEMO_CONFIGS}/dmf_finetune.yml", ["TEST.AQE.ENABLED", aqe, "TEST.BLOCKWISE.QUERIES", 9])
    expected = _fed(ReidEvaluator(cfg, len(data[0])), *data)
    ours = _fed(BlockwiseReidEvaluator(cfg, len(data[0])), *data)
    assert list(ours) == list(expected)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_trainer_uses_the_blockwise_evaluator_unless_disabled(tiny_datasets):
    from fastreid_dmf.engine.trainer import DMFTrainer

    cfg = load_config(f"{DEMO_CONFIGS}/dmf_finetune.yml", ["DATALOADER.NUM_WORKERS", 0])
    assert type(DMFTrainer.build_evaluator(cfg, "SynthMarket")[1]) is BlockwiseReidEvaluator
    cfg.TEST.BLOCKWISE.ENABLED = False
    assert type(DMFTrainer.build_evaluator(cfg, "SynthMarket")[1]) is ReidEvaluator


def _fastreid_reranked_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams, k1, k2, lam):
    """ReidEvaluator's re-ranking path with fast-reid's CPU neighbour search (its default needs CUDA)."""
    from fastreid.utils.compute_dist import compute_jaccard_distance

    dist = build_dist(query, gallery, "cosine")
    features = torch.cat((torch.nn.functional.normalize(query, dim=1), torch.nn.functional.normalize(gallery, dim=1)))
    jaccard = compute_jaccard_distance(features, k1=k1, k2=k2, search_option=3)[:len(query), len(query):]
    return evaluate_rank(jaccard * (1 - lam) + dist * lam, q_pids, g_pids, q_cams, g_cams), jaccard


def test_sparse_reranking_equals_fastreids_dense_reranking_bit_for_bit():
    from fastreid_dmf.evaluation.rerank import KReciprocalJaccard

    data = make_test_set(seed=11, num_query=40, num_gallery=300)
    query, gallery = data[0], data[1]
    (cmc, all_ap, all_inp), jaccard = _fastreid_reranked_metrics(*data, k1=12, k2=4, lam=0.3)
    ours = KReciprocalJaccard(torch.nn.functional.normalize(query, dim=1),
                              torch.nn.functional.normalize(gallery, dim=1), k1=12, k2=4)
    assert np.array_equal(ours.block(0, len(query)), jaccard)
    assert np.array_equal(ours.block(5, 9), jaccard[5:9])


def test_evaluator_reranks_on_a_cpu_with_fastreids_results():
    data = make_test_set(seed=12, num_query=40, num_gallery=300)
    cfg = load_config(f"{DEMO_CONFIGS}/dmf_finetune.yml", ["TEST.RERANK.ENABLED", True, "TEST.RERANK.K1", 12,
                                                           "TEST.RERANK.K2", 4, "TEST.RERANK.LAMBDA", 0.3,
                                                           "TEST.BLOCKWISE.QUERIES", 16])
    (cmc, all_ap, all_inp), _ = _fastreid_reranked_metrics(*data, k1=12, k2=4, lam=0.3)
    ours = _fed(BlockwiseReidEvaluator(cfg, len(data[0])), *data)
    assert ours["Rank-1"] == pytest.approx(cmc[0] * 100, abs=1e-9)
    assert ours["mAP"] == pytest.approx(np.mean(all_ap) * 100, abs=1e-9)
    assert ours["mINP"] == pytest.approx(np.mean(all_inp) * 100, abs=1e-9)


def test_reranking_with_more_neighbours_than_images_is_refused():
    from fastreid_dmf.evaluation.rerank import KReciprocalJaccard

    with pytest.raises(ValueError, match="TEST.RERANK.K1=20 needs at least 20 test images"):
        KReciprocalJaccard(torch.randn(3, 4), torch.randn(5, 4), k1=20, k2=6)
