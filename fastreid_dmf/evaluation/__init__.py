"""Result reporting for fastreid-dmf (evaluation itself is fast-reid's ReidEvaluator, unchanged)."""

from .report import METRICS, compare_table, load_results

__all__ = ["METRICS", "compare_table", "load_results"]
