#!/usr/bin/env python
"""DMF Table 1 at demo scale: no / text-only / image-only / text + image pre-training, identical
fine-tuning, fast-reid baselines and the colour-histogram matcher, over several seeds.

    .venv/bin/python tools/benchmark_pretraining_ablation.py --out output/ablation --seeds 0 1 2

Every run is ``tools/train_net.py`` on the demo configs (``configs/demo``) and the bundled benchmark
(``$FASTREID_DATASETS``, default ``datasets``; ``tools/make_demo_data.py`` makes it). Writes
``results.json``, ``table.md`` (mean ± std) and ``chart.png`` into ``--out``.
Trailing ``KEY VALUE`` pairs are passed to every run.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fastreid_dmf.tooling.benchmarks.ablation import ABLATION_VARIANTS, VARIANTS, run_ablation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="new or empty output folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="values of SEED (default 0 1 2)")
    parser.add_argument("--variants", nargs="+", default=list(ABLATION_VARIANTS), choices=list(VARIANTS),
                        help="table rows, in order (default: the Table 1 ablation with baselines)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted benchmark in --out: finished runs are reused, not repeated")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides for every run")
    args = parser.parse_args()
    report = run_ablation(args.out, args.seeds, args.variants, args.opts, resume=args.resume)
    with open(os.path.join(args.out, "table.md")) as handle:
        print(handle.read())
    print(f"{len(report['seeds'])} seed(s) in {report['seconds']:.0f} s; results.json, table.md and chart.png in "
          f"{args.out}")


if __name__ == "__main__":
    main()
