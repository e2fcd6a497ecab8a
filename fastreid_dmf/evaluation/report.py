"""Side-by-side tables of fast-reid results from several runs.

Reads the ``results.json`` that ``tools/train_net.py`` writes (fast-reid's
``DefaultTrainer.test`` output: ``{dataset: {metric: value}}``, metrics in
percent) and prints them with fast-reid's own table style (tabulate, pipe
format, as ``fastreid/evaluation/testing.py``'s ``print_csv_format``).
"""

from __future__ import annotations

import json
import os

from tabulate import tabulate

__all__ = ["METRICS", "load_results", "compare_table"]

#: Metrics shown, in fast-reid's naming (values in percent).
METRICS: tuple[str, ...] = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


def load_results(path: str) -> dict[str, dict[str, float]]:
    """Load a ``results.json``; a single-dataset result (fast-reid unwraps those) needs its ``dataset`` key.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a fast-reid result dict (message names the file).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results file {path!r} not found (tools/train_net.py writes OUTPUT_DIR/results.json)")
    with open(path) as handle:
        data = json.load(handle)
    if isinstance(data, dict) and "dataset" in data and not isinstance(data["dataset"], dict):
        data = {data["dataset"]: data}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected {{dataset: {{metric: value}}}} as written by tools/train_net.py")
    return data


def compare_table(runs: dict[str, dict[str, dict[str, float]]], metrics: tuple[str, ...] = METRICS) -> str:
    """One row per (dataset, run) with the given metrics, as a pipe table.

    Args:
        runs: ``{run label: results}`` in display order.
        metrics: metric names to show (missing ones print as "-").

    Returns:
        The table as a string (values in percent, one decimal).
    """
    datasets: list[str] = []
    for results in runs.values():
        datasets += [d for d in results if d not in datasets]
    rows = []
    for dataset in datasets:
        for label, results in runs.items():
            values = results.get(dataset, {})
            rows.append([dataset, label] + [f"{values[m]:.1f}" if m in values else "-" for m in metrics])
    return tabulate(rows, headers=["Test set", "Model", *metrics], tablefmt="pipe", numalign="right")
