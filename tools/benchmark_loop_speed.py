#!/usr/bin/env python
"""Time DMF's training-loop iteration against its bare forward + backward, its backbone, and its text encoder.

In one process, on the demo DMF pre-training config by default: an iteration of fast-reid's training loop
(``DMFTrainer`` as tools/train_net.py builds it: data loading from the real training set, forward,
backward, optimizer step, hooks) divided by the bare forward + backward of the same model on a prepared
batch, for image-only (DATALOADER.TEXT_RATIO 0) and mixed (0.5) batches (target <= 1.15x); DMF's image
backbone against fast-reid's ViT and timm's ViT of the same shape (train and inference images/s); the
frozen text encoder's descriptions/s with a cold and a warm feature cache. Measurements are interleaved
round-robin for --iters rounds after --warmup rounds, each sample the mean of --steps iterations; the
report gives median and interquartile range (see :mod:`fastreid_dmf.tooling.benchmarks.loop_speed`).
Writes loop_speed.json and loop_speed.md into --out (never over an existing report) and prints the tables.

Example::

    OMP_NUM_THREADS=2 .venv/bin/python tools/benchmark_loop_speed.py --out output/loop_speed --iters 10

Trailing KEY VALUE pairs override both configs (e.g. DATALOADER.NUM_WORKERS 1).
"""

from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import fastreid_dmf  # noqa: E402,F401  (fast-reid compat patches before fastreid.data is imported)
from fastreid_dmf.tooling.benchmarks.loop_speed import (  # noqa: E402
    DEFAULT_BASELINE_CONFIG,
    DEFAULT_CONFIG,
    check_new_report,
    markdown_report,
    report_paths,
    run_benchmark,
)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, write the report and print its tables; returns 0 (2 on a usage error)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="DMF config (default: demo pre-training)")
    parser.add_argument("--baseline-config", default=DEFAULT_BASELINE_CONFIG,
                        help="config building fast-reid's ViT of the same shape (default: demo fast-reid ViT baseline)")
    parser.add_argument("--iters", type=int, default=10, help="timed rounds, every measurement once per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--steps", type=int, default=20,
                        help="iterations averaged into one sample (more than the loader prefetches: steady state)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds slept after each loop measurement, letting the workers refill (optimistic)")
    parser.add_argument("--out", required=True, help="folder for loop_speed.json + loop_speed.md (no report yet)")
    parser.add_argument("--datasets", default=os.environ.get("FASTREID_DATASETS", os.path.join(REPO, "datasets")),
                        help="dataset root (default: $FASTREID_DATASETS or datasets/)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides of both configs")
    args = parser.parse_args(argv)
    for name, value, least in (("--iters", args.iters, 1), ("--warmup", args.warmup, 0), ("--steps", args.steps, 1),
                               ("--settle", args.settle, 0)):
        if value < least:
            parser.error(f"{name} must be >= {least}, got {value}")
    try:
        check_new_report(args.out)
    except (FileExistsError, NotADirectoryError) as err:
        parser.error(str(err))
    report = run_benchmark(args.out, config=args.config, baseline_config=args.baseline_config, iters=args.iters,
                           warmup=args.warmup, steps=args.steps, settle=args.settle, opts=args.opts,
                           datasets_root=args.datasets, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown_report(report))
    print("Report: " + ", ".join(report_paths(args.out)) + f" ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
