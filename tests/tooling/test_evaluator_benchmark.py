"""The evaluator benchmark runs both evaluators in their own processes and finds the same metrics."""

from fastreid_dmf.tooling.benchmarks.evaluator_memory import run_benchmark


def test_tiny_benchmark_reports_equal_metrics_time_and_memory_of_both_evaluators():
    (row,) = run_benchmark(sizes=((40, 300, 20),), dim=16, block_size=8, log=lambda _: None)
    assert row["same_metrics"] and row["max_abs_metric_diff"] < 1e-9
    for name in ("fastreid", "blockwise"):
        assert row[name]["seconds"] >= 0 and row[name]["peak_rss_mb"] >= row[name]["rss_before_mb"] > 0
    assert row["time_ratio"] > 0 and row["memory_ratio"] > 0
    assert set(row["blockwise"]["metrics"]) >= {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}


def test_tiny_reranking_benchmark_finds_fastreids_reranked_metrics():
    (row,) = run_benchmark(sizes=((40, 300, 20),), dim=16, block_size=8, log=lambda _: None, rerank=True)
    assert row["blockwise"]["rerank"] and row["fastreid"]["rerank"]
    # Re-ranked distances of far images differ only through the original distance's last bit (BLAS rounds a
    # block's products differently), which can swap near-ties: equal as printed, within 1e-3 points.
    assert row["same_metrics"] and row["max_abs_metric_diff"] < 1e-3
