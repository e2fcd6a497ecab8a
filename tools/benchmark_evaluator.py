#!/usr/bin/env python
"""fast-reid's ReidEvaluator beside the bounded-memory BlockwiseReidEvaluator: time, peak RSS, metrics.

    python tools/benchmark_evaluator.py --out output/evaluator_benchmark [--sizes Q,G,IDS ...] [--dim 768]
        [--block-size 128]

Default sizes grow to MSMT17's test set (11,659 x 82,161, 3,060 identities; fast-reid needs ~12 GB there).
Each evaluator runs in its own process on the same seeded synthetic features
(``fastreid_dmf/tooling/benchmarks/evaluator_memory.py``). Writes ``results.json`` and ``table.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastreid_dmf  # noqa: E402,F401

# isort: split

from fastreid_dmf.engine.cli import run_cli  # noqa: E402
from fastreid_dmf.tooling.benchmarks.evaluator_memory import SWEEP, run_benchmark  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="new or empty output folder")
    parser.add_argument("--sizes", nargs="+", default=[",".join(map(str, s)) for s in SWEEP],
                        help="queries,gallery,identities per size (default: a sweep up to MSMT17's test set)")
    parser.add_argument("--dim", type=int, default=768, help="feature width (default 768)")
    parser.add_argument("--block-size", type=int, default=128, help="TEST.BLOCKWISE.QUERIES (default 128)")
    parser.add_argument("--rerank", action="store_true",
                        help="TEST.RERANK on (fast-reid's dense re-ranking only where it fits in ~15 GB)")
    args = parser.parse_args()
    if os.path.isdir(args.out) and os.listdir(args.out):
        raise FileExistsError(f"--out {args.out!r} is not empty; give a new folder (nothing is overwritten)")
    try:
        sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes]
        assert all(len(s) == 3 for s in sizes)
    except (ValueError, AssertionError) as err:
        raise ValueError(f"--sizes {args.sizes}: expected entries 'queries,gallery,identities'") from err
    rows = run_benchmark(sizes, args.dim, args.block_size, rerank=args.rerank)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    lines = ["| queries x gallery | fast-reid s | ours s | time ratio | fast-reid peak RSS MB | ours peak RSS MB | "
             "metrics equal (2 dp) | mAP |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for row in rows:
        b = row["blockwise"]
        f = row.get("fastreid", {"seconds": "-", "peak_rss_mb": float("nan")})
        lines.append(f"| {row['size'][0]:,} x {row['size'][1]:,} | {f['seconds']} | {b['seconds']} | "
                     f"{row.get('time_ratio', '-')} | {f['peak_rss_mb']:.0f} | {b['peak_rss_mb']:.0f} | "
                     f"{row.get('same_metrics', '-')} | {b['metrics']['mAP']:.2f} |")
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="benchmark_evaluator.py"))
