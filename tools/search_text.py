#!/usr/bin/env python
"""Search people by description with a trained DMF / MMET model (text-to-image person search).

    python tools/search_text.py --checkpoint OUTPUT_DIR/model_final.pth --out FOLDER
        (--text "a woman in a red coat" [--text ...] | --text-file FILE | --dataset-queries N)
        (--images GALLERY_FOLDER | --dataset NAME) [--config-file CFG] [--k 10] [--batch-size 64]
        [--cell-height 128] [--device cpu|cuda] [--overwrite] [KEY VALUE ...]

Each description is encoded by the model's text branch and compared, by TEST.METRIC, with the gallery
images' test features (what fast-reid's evaluator scores) through a faiss index
(``fastreid_dmf/tooling/text_search.py``). Prints the top-k per description and writes into --out (new or
empty; --overwrite replaces an earlier search's files): ``query_<nn>.png`` per description (the
description, then the top-k images; green = the description's identity, red = another, blue = identity
unknown), ``contact_sheet.png`` and ``search.json``. With ``--dataset NAME --dataset-queries N`` the queries
are the first N descriptions of that dataset's text-to-image protocol (identities known).

A description longer than MODEL.DMF.TEXT_ENCODER.MAX_TOKENS tokens is refused (it would be cut). Errors end
with exit code 1 and one line. KEY VALUE pairs placed after a list option need a ``--`` before them.
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
from fastreid_dmf.tooling.text_search import read_descriptions, search_by_text  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="fast-reid checkpoint (OUTPUT_DIR/model_final.pth)")
    parser.add_argument("--config-file", default="", help="config of the run (default: config.yaml beside it)")
    parser.add_argument("--text", action="append", default=[], help="a description (repeatable)")
    parser.add_argument("--text-file", default="", help="file with one description per line")
    parser.add_argument("--dataset-queries", type=int, default=0,
                        help="use the first N descriptions of --dataset's text-to-image protocol")
    parser.add_argument("--images", default="", help="gallery: a folder of images (searched recursively)")
    parser.add_argument("--dataset", default="", help="gallery: a registered dataset's gallery")
    parser.add_argument("--out", required=True, help="output folder (new or empty unless --overwrite)")
    parser.add_argument("--k", type=int, default=10, help="images per description (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--cell-height", type=int, default=128, help="image height in the PNGs (default 128)")
    parser.add_argument("--device", default="", help="cpu or cuda (default: the config's MODEL.DEVICE)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier search's files in --out")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides (as fast-reid's)")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the search and print the rankings; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    texts = list(args.text) + (read_descriptions(args.text_file) if args.text_file else [])
    report = search_by_text(args.checkpoint, args.out, texts=texts, images=args.images, dataset=args.dataset,
                            dataset_queries=args.dataset_queries, config_file=args.config_file, opts=args.opts,
                            k=args.k, batch_size=args.batch_size, cell_height=args.cell_height,
                            overwrite=args.overwrite, device=args.device)
    for number, query in enumerate(report["queries"], start=1):
        known = "" if query["pid"] is None else f" (id {query['pid']})"
        print(f"[{number}] {query['description']}{known}")
        for hit in query["results"]:
            mark = {True: " match", False: "", None: ""}[hit["match"]]
            pid = "" if hit["pid"] is None else f" id {hit['pid']}"
            print(f"  #{hit['rank']:<3} d={hit['distance']:.4g}{pid}  {hit['path']}{mark}")
    print(f"wrote {len(report['queries'])} ranking(s) of {report['gallery_size']} gallery images to {args.out} "
          "(query_<nn>.png, contact_sheet.png, search.json)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="search_text.py"))
