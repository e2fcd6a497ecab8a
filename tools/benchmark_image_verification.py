#!/usr/bin/env python
"""Time image verification (``DATASETS.VERIFY_IMAGES``): old header check vs full decode.

Runs both checks on every image under ``--root`` (default: ``$FASTREID_DATASETS``,
else ``datasets/`` of the repository) in one process, warm cache, best of
``--repeats`` rounds (see :mod:`fastreid_dmf.tooling.benchmarks.image_verification`),
and prints images, seconds, ms per image and the ratio as JSON.

Example::

    python tools/benchmark_image_verification.py --root datasets --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import fastreid_dmf  # noqa: E402,F401  (fast-reid compat patches before fastreid.data is imported)
from fastreid_dmf.tooling.benchmarks.image_verification import compare_checks, list_images  # noqa: E402
from fastreid_dmf.tooling.benchmarks.json_report import print_json_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the comparison, print (and optionally save) the results; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("FASTREID_DATASETS", os.path.join(REPO, "datasets")),
                        help="folder searched for images (default: $FASTREID_DATASETS or datasets/)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of each check; the best is kept")
    parser.add_argument("--json", metavar="FILE", help="also write the results to this (new) JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.json and os.path.exists(args.json):
        parser.error(f"--json {args.json!r} already exists; refusing to overwrite it")
    results = {"root": os.path.abspath(args.root), **compare_checks(list_images(args.root), args.repeats)}
    print_json_report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
