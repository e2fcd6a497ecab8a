#!/usr/bin/env python
"""Collect Rank-1 / mAP of the paper-table runs into DMF's table layout, beside the published numbers.

    python tools/paper_table.py [--table "Table 2"] [--base-dir .]

Each row's run is found through its config's OUTPUT_DIR (relative to
--base-dir, where tools/train_net.py was run); results come from results.json
or fast-reid's log.txt. Runs not made yet show "-".
"""

import argparse
import os
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)

from fastreid_dmf.tooling.paper_tables import PAPER_ROWS, paper_table  # noqa: E402


def main() -> None:
    tables = sorted({row.table for row in PAPER_ROWS})
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", choices=tables, action="append", help="table(s) to print (default: all)")
    parser.add_argument("--base-dir", default=".", help="folder the configs' relative OUTPUT_DIRs are under")
    args = parser.parse_args()
    for table in args.table or tables:
        print(f"\n{table} (Rank-1 / mAP, %)\n")
        print(paper_table(table, base_dir=args.base_dir, repo_dir=REPO))


if __name__ == "__main__":
    main()
