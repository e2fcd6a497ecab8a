"""The evaluator benchmark runs both evaluators in their own processes and finds the same metrics."""

from fastreid_dmf.tooling.benchmarks.evaluator_memory import run_benchmark


def test_tiny_benchmark_reports_equal_metrics_time_and_memory_of_both_evaluators():
    (row,) = run_benchmark(sizes=((40, 300, 20),), dim=16, block_size=8, log=lambda _: None)
    assert row["same_metrics"] and row["max_abs_metric_diff"] < 1e-9
    for name in ("fastreid", "blockwise"):
        assert row[name]["seconds"] >= 0 and row[name]["peak_rss_mb"] >= row[name]["rss_before_mb"] > 0
    assert row["time_ratio"] > 0 and row["memory_ratio"] > 0
    assert set(row["blockwise"]["metrics"]) >= {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}
