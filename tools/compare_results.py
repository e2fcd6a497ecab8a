#!/usr/bin/env python
"""Print fast-reid results of several runs side by side.

    python tools/compare_results.py LABEL=output/x/results.json LABEL2=output/y/results.json ...
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from fastreid_dmf.evaluation.report import compare_table, load_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=path/to/results.json, in display order")
    args = parser.parse_args()
    runs = {}
    for spec in args.runs:
        label, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"expected LABEL=PATH, got {spec!r}")
        runs[label] = load_results(path)
    print(compare_table(runs))


if __name__ == "__main__":
    main()
