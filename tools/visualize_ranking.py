#!/usr/bin/env python
"""Top-k ranking lists of a trained DMF / MMET model on a test set (DMF paper Fig. 4).

    python tools/visualize_ranking.py --checkpoint OUTPUT_DIR/model_final.pth --dataset Market1501 --out FOLDER
        [--config-file CFG] [--k 10] [--queries worst|best|random|ids] [--num 8] [--ids PID ...] [--seed 0]
        [--cell-height 128] [--device cpu|cuda] [--overwrite] [KEY VALUE ...]

Query and gallery features come from fast-reid's test loader and the model in eval mode (``TEST.FLIP``
honoured), distances from ``build_dist`` with ``TEST.METRIC`` (plus ``TEST.AQE`` / ``TEST.RERANK`` when on),
AP per query from fast-reid's ``evaluate_rank``; gallery images of the query's identity and camera are
skipped, as the evaluator does (Market-1501 protocol), and each list's caption says how many.

``--queries`` picks the lowest-AP (``worst``, default), highest-AP (``best``) or ``random`` (``--seed``)
``--num`` queries, or every query of the identities ``--ids`` (default when ``--ids`` is given).

Writes into ``--out`` (new or empty folder; ``--overwrite`` replaces an earlier run's files):
``query_<nn>_<row>.png`` per query (the query, then the top-k gallery images framed green = same identity,
red = another, with rank, identity and distance under each, the query's AP in the title), a
``contact_sheet.png`` stacking them, and ``ranking.json`` (paths, pids, camids, distances, match flags, AP).

Image size in pixels, with cell_h = --cell-height and cell_w = round(cell_h * W / H) for
INPUT.SIZE_TEST = (H, W):

    width  = 2 * 8 + (k + 1) * (cell_w + 2 * 4) + k * 4 + 12
    height = 2 * 8 + 32 + (cell_h + 2 * 4) + 30

(margin 8, frame 4, gap 4, extra gap after the query 12, title 32, labels 30; see
``fastreid_dmf/tooling/visualize/figures.py``); the contact sheet is as wide, and as high as all lists together.
KEY VALUE pairs placed after ``--ids`` need a ``--`` before them. Errors end with exit code 1 and one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastreid_dmf  # noqa: E402,F401  (first: patches fastreid, registers DMF components)

# isort: split

from fastreid_dmf.engine.cli import run_cli  # noqa: E402
from fastreid_dmf.tooling.visualize.commands import visualize_ranking  # noqa: E402
from fastreid_dmf.tooling.visualize.ranking import QUERY_MODES  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="fast-reid checkpoint (OUTPUT_DIR/model_final.pth)")
    parser.add_argument("--config-file", default="", help="config of the run (default: config.yaml beside it)")
    parser.add_argument("--dataset", required=True, help="registered fast-reid test set, e.g. Market1501")
    parser.add_argument("--out", required=True, help="output folder (new or empty unless --overwrite)")
    parser.add_argument("--k", type=int, default=10, help="gallery images per ranking list (default 10)")
    parser.add_argument("--queries", choices=QUERY_MODES, default=None,
                        help="which queries: lowest AP, highest AP, random, or --ids (default: worst, or ids "
                             "when --ids is given)")
    parser.add_argument("--num", type=int, default=8, help="queries to draw for worst/best/random (default 8)")
    parser.add_argument("--ids", type=int, nargs="+", default=[], help="identities whose queries to draw")
    parser.add_argument("--seed", type=int, default=0, help="seed of --queries random (default 0)")
    parser.add_argument("--cell-height", type=int, default=128, help="image height in pixels (default 128)")
    parser.add_argument("--device", default="", help="cpu or cuda (default: the config's MODEL.DEVICE)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's files in --out")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides (as fast-reid's)")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Draw the ranking lists; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    summary = visualize_ranking(args.checkpoint, args.dataset, args.out, config_file=args.config_file,
                                opts=args.opts, k=args.k, queries=args.queries, num=args.num, ids=args.ids,
                                seed=args.seed, cell_height=args.cell_height, overwrite=args.overwrite,
                                device=args.device)
    mean_ap = summary["mAP"]
    print(f"wrote {len(summary['queries_drawn'])} ranking list(s) of {summary['dataset']} to {args.out} "
          f"(contact_sheet.png, ranking.json); mAP {'n/a' if mean_ap is None else f'{100 * mean_ap:.2f}%'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="visualize_ranking.py"))
