"""Benchmark: fast-reid's ``ReidEvaluator`` beside :class:`~fastreid_dmf.evaluation.blockwise.BlockwiseReidEvaluator`.

Each measurement runs in its own Python process (so peak RSS, ``getrusage(RUSAGE_SELF).ru_maxrss``, belongs
to one evaluator), on the same synthetic test set: features clustered by identity (``num_ids`` identities,
``dim``-d float32, seeded), query and gallery cameras drawn at random, fed to the evaluator in batches of
1,024 through ``process`` and scored by ``evaluate`` exactly as ``DefaultTrainer.test`` does. Reported per
evaluator and size: evaluation seconds (``evaluate`` only), peak RSS of the process, RSS before ``evaluate``
(interpreter, torch, fast-reid and the features), and the metrics; and the ratios ours / fast-reid's.
Default sizes end at MSMT17's test set: 11,659 queries x 82,161 gallery images, 3,060 identities, 768-d.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

__all__ = ["MSMT17_TEST", "SWEEP", "measure", "run_benchmark"]

#: (queries, gallery, identities) of MSMT17's test set.
MSMT17_TEST = (11659, 82161, 3060)
#: Sizes of the default sweep, growing to MSMT17's.
SWEEP = ((1000, 7000, 260), (3000, 21000, 790), (6000, 42000, 1575), MSMT17_TEST)
EVALUATORS = ("fastreid", "blockwise")
#: Per-dimension noise around each identity centre (unit normal): Rank-1 near 90%, mAP near 50% at MSMT17 size.
NOISE = 2.5


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _cpu_jaccard(build_dist):
    """fast-reid's ``build_dist`` with its CPU neighbour search for "jaccard" (its default moves to CUDA)."""
    from fastreid.utils.compute_dist import compute_jaccard_distance

    def patched(feat_1, feat_2, metric="euclidean", **kwargs):
        if metric != "jaccard":
            return build_dist(feat_1, feat_2, metric, **kwargs)
        import torch

        features = torch.cat((feat_1, feat_2), dim=0)
        dist = compute_jaccard_distance(features, k1=kwargs["k1"], k2=kwargs["k2"], search_option=3)
        return dist[: feat_1.size(0), feat_1.size(0):]

    return patched


def measure(evaluator: str, num_query: int, num_gallery: int, num_ids: int, dim: int = 768, seed: int = 0,
            block_size: int = 128, rerank: bool = False) -> dict:
    """Build the synthetic test set and run one evaluator on it in this process.

    With ``rerank``, ``TEST.RERANK`` is on (k1 20, k2 6, lambda 0.3, fast-reid's defaults); fast-reid's
    evaluator then uses its own CPU neighbour search (``search_option`` 3; its default needs CUDA).

    Returns:
        ``{"evaluator", "num_query", "num_gallery", "seconds", "peak_rss_mb", "rss_before_mb", "metrics"}``.

    Raises:
        ValueError: unknown evaluator name.
    """
    import numpy as np
    import torch
    from fastreid.evaluation.reid_evaluation import ReidEvaluator

    from ...config import load_config
    from ...evaluation.blockwise import BlockwiseReidEvaluator
    from .ablation import DEMO

    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator {evaluator!r}: expected one of {EVALUATORS}")
    cfg = load_config(os.path.join(DEMO, "dmf_finetune.yml"), ["TEST.BLOCKWISE.QUERIES", block_size,
                                                               "TEST.RERANK.ENABLED", bool(rerank)])
    if rerank and evaluator == "fastreid":
        from fastreid.evaluation import reid_evaluation

        reid_evaluation.build_dist = _cpu_jaccard(reid_evaluation.build_dist)
    rng = np.random.default_rng(seed)
    centres = torch.from_numpy(rng.normal(size=(num_ids, dim)).astype(np.float32))
    pids = np.concatenate((rng.integers(0, num_ids, num_query), rng.integers(0, num_ids, num_gallery)))
    cams = rng.integers(0, 15, num_query + num_gallery)
    cls = ReidEvaluator if evaluator == "fastreid" else BlockwiseReidEvaluator
    scorer = cls(cfg, num_query)
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(pids), 1024):
        stop = min(start + 1024, len(pids))
        batch_pids = torch.as_tensor(pids[start:stop])
        feats = centres[batch_pids] + NOISE * torch.randn(stop - start, dim, generator=generator)
        scorer.process({"targets": batch_pids, "camids": torch.as_tensor(cams[start:stop])}, feats)
    before = _rss_mb()
    start_time = time.perf_counter()
    metrics = scorer.evaluate()
    seconds = time.perf_counter() - start_time
    return {"evaluator": evaluator, "num_query": num_query, "num_gallery": num_gallery, "num_ids": num_ids,
            "dim": dim, "rerank": bool(rerank), "seconds": round(seconds, 2), "peak_rss_mb": round(_rss_mb(), 1),
            "rss_before_mb": round(before, 1), "metrics": {k: float(v) for k, v in metrics.items()}}


#: Largest N = queries + gallery at which fast-reid's dense re-ranking (three N x N float32) is run: ~15 GB.
DENSE_RERANK_LIMIT = 36000


def run_benchmark(sizes=SWEEP, dim: int = 768, block_size: int = 128, log=print, rerank: bool = False
                  ) -> list[dict]:
    """Both evaluators at every size, each in a fresh process (``python -m`` this module).

    Returns:
        One dict per size: ``{"size", "fastreid", "blockwise", "time_ratio", "memory_ratio", "same_metrics"}``
        (ratios = ours / fast-reid's; ``same_metrics``: every metric equal as printed with 2 decimals, and
        the values' largest absolute difference).

    Raises:
        RuntimeError: a measurement process failed (its stderr tail in the message).
    """
    rows = []
    for num_query, num_gallery, num_ids in sizes:
        row: dict = {"size": [num_query, num_gallery, num_ids]}
        for evaluator in EVALUATORS:
            if rerank and evaluator == "fastreid" and num_query + num_gallery > DENSE_RERANK_LIMIT:
                log(f"{num_query} x {num_gallery}: fast-reid's dense re-ranking skipped (needs ~"
                    f"{3 * 4 * (num_query + num_gallery) ** 2 / 1e9:.0f} GB)")
                continue
            cmd = [sys.executable, "-m", __name__, evaluator, str(num_query), str(num_gallery), str(num_ids),
                   str(dim), str(block_size), str(int(rerank))]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
            row[evaluator] = json.loads(done.stdout.strip().splitlines()[-1])
            log(f"{num_query} x {num_gallery}: {evaluator} {row[evaluator]['seconds']} s, "
                f"peak RSS {row[evaluator]['peak_rss_mb']:.0f} MB")
        if "fastreid" not in row:
            rows.append(row)
            continue
        ours, theirs = row["blockwise"], row["fastreid"]
        row["time_ratio"] = round(ours["seconds"] / max(theirs["seconds"], 1e-9), 3)
        row["memory_ratio"] = round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3)
        row["same_metrics"] = all(f"{ours['metrics'][k]:.2f}" == f"{v:.2f}" for k, v in theirs["metrics"].items())
        row["max_abs_metric_diff"] = max(abs(ours["metrics"][k] - v) for k, v in theirs["metrics"].items())
        rows.append(row)
    return rows


if __name__ == "__main__":
    name, q, g, ids, d, block, rerank_flag = sys.argv[1:8]
    print(json.dumps(measure(name, int(q), int(g), int(ids), int(d), block_size=int(block),
                             rerank=bool(int(rerank_flag)))))
