#!/usr/bin/env python
"""Time MMET's training iteration per task (visual, textual, visual-textual) against DMF's, and MMET's masking.

In one process, on the demo configs by default: MMET's iteration on a batch of each task and DMF's on an
image, a text (cached features) and a 50/50 batch of the same P x K items; reading the MMET batch without
masks and drawing its Masked Multimodal Modeling masks (target: masks <= 10% of the task's iteration).
Measurements are interleaved round-robin for --iters rounds after --warmup rounds; the report gives
median and interquartile range per measurement and every iteration as a multiple of DMF's image iteration
(see :mod:`fastreid_dmf.tooling.benchmarks.mmet_speed`). Writes mmet_speed.json and mmet_speed.md into
--out (never over an existing report) and prints the table.

Example::

    .venv/bin/python tools/benchmark_mmet_speed.py --out output/mmet_speed --iters 20 --warmup 2

Trailing KEY VALUE pairs override both configs (e.g. MODEL.DEVICE cuda).
"""

from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import fastreid_dmf  # noqa: E402,F401  (fast-reid compat patches before fastreid.data is imported)
from fastreid_dmf.tooling.benchmarks.mmet_speed import (  # noqa: E402
    DEFAULT_DMF_CONFIG,
    DEFAULT_MMET_CONFIG,
    check_new_report,
    markdown_report,
    report_paths,
    run_benchmark,
)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, write the report and print its table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmet-config", default=DEFAULT_MMET_CONFIG, help="MMET config (default: demo pre-training)")
    parser.add_argument("--dmf-config", default=DEFAULT_DMF_CONFIG, help="DMF config (default: demo pre-training)")
    parser.add_argument("--iters", type=int, default=20, help="timed rounds, every measurement once per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--out", required=True, help="folder for mmet_speed.json + mmet_speed.md (no report yet)")
    parser.add_argument("--datasets", default=os.environ.get("FASTREID_DATASETS", os.path.join(REPO, "datasets")),
                        help="dataset root (default: $FASTREID_DATASETS or datasets/)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides of both configs")
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error(f"--iters must be >= 1, got {args.iters}")
    if args.warmup < 0:
        parser.error(f"--warmup must be >= 0, got {args.warmup}")
    try:
        check_new_report(args.out)
    except (FileExistsError, NotADirectoryError) as err:
        parser.error(str(err))
    report = run_benchmark(args.out, mmet_config=args.mmet_config, dmf_config=args.dmf_config, iters=args.iters,
                           warmup=args.warmup, opts=args.opts, datasets_root=args.datasets,
                           progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(markdown_report(report))
    print("Report: " + ", ".join(report_paths(args.out)) + f" ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
