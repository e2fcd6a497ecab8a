#!/usr/bin/env python
"""Run every paper-table config for a few iterations on look-alike data (see fastreid_dmf/tooling/smoke.py).

    python tools/smoke_paper_configs.py --workdir output/smoke [--datasets-root DIR] [--config PATH ...]

Without --datasets-root, small look-alike trees in the real layouts (Market-1501,
DukeMTMC-reID, MSMT17_V1, cuhk03-np, RandPerson, FineGPR) are generated under
WORKDIR/datasets first. Prints one line per config and the collected paper
tables; exits 1 if any config failed.
"""

import argparse
import logging
import os
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

import fastreid_dmf  # noqa: E402,F401  (patches fastreid, registers DMF components)

# isort: split
from fastreid_dmf.tooling.paper_tables import PAPER_ROWS, paper_configs, paper_table  # noqa: E402
from fastreid_dmf.tooling.smoke import run_smoke_suite  # noqa: E402
from fastreid_dmf.tooling.synthetic.lookalike_trees import generate_real_layout_trees  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="new or empty folder for outputs")
    parser.add_argument("--datasets-root", help="existing dataset root (default: generate look-alike trees)")
    parser.add_argument("--config", action="append", help="config(s) to run (default: all paper configs, in order)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    configs = args.config or [os.path.join(REPO, c) for c in paper_configs()]
    workdir = os.path.abspath(args.workdir)
    if os.path.isdir(workdir) and os.listdir(workdir):
        parser.error(f"--workdir {workdir} is not empty")
    root = args.datasets_root
    if root is None:
        root = os.path.join(workdir, "datasets")
        generate_real_layout_trees(root)
    outcomes = run_smoke_suite(configs, os.path.join(workdir, "runs"), datasets_root=root)
    for outcome in outcomes:
        tests = ", ".join(f"{name} R1 {m['Rank-1']:.1f} mAP {m['mAP']:.1f}" for name, m in outcome.results.items())
        print(f"{'ok ' if outcome.ok else 'FAIL'} {outcome.seconds:6.1f} s  {os.path.relpath(outcome.config, REPO)}"
              f"  {tests}")
        if not outcome.ok:
            print(outcome.error)
    for table in sorted({row.table for row in PAPER_ROWS}):
        print(f"\n{table} (look-alike data, a few iterations: checks the plumbing, not accuracy)\n")
        print(paper_table(table, base_dir=os.path.join(workdir, "runs"), repo_dir=REPO))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
