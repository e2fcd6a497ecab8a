#!/usr/bin/env python
"""Image features of a DMF / MMET checkpoint, written to a .npy (+ .json) or .safetensors file.

    python tools/extract_features.py OUTPUT_DIR/model_final.pth features.npy (--images FOLDER | --dataset NAME)
        [--config-file OUTPUT_DIR/config.yaml] [--batch-size 64] [--num-workers N] [--device cpu|cuda]
        [--overwrite] [KEY VALUE ...]

--images: every .jpg/.jpeg/.png/.bmp below FOLDER (recursive, sorted by path). --dataset: the query then
gallery images of a registered dataset under $FASTREID_DATASETS, with pids, camids and split. The features
(float32, one row per image) are the ones the evaluator scores: fast-reid's test transform, the model's
test feature (MODEL.DMF.TEST_FEAT), flip-averaged when TEST.FLIP.ENABLED. The output suffix picks the format:
.npy writes the array plus <stem>.json with the paths and ids; .safetensors writes tensor "features" with
the same metadata as JSON strings. fastreid_dmf/tooling/features.py describes the files.
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
from fastreid_dmf.tooling.features import extract_features  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="DMF or MMET checkpoint written by fast-reid's Checkpointer (model_*.pth)")
    parser.add_argument("output", help="features file: .npy (plus <stem>.json) or .safetensors")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", default="", help="folder of images (searched recursively)")
    source.add_argument("--dataset", default="", help="registered dataset name (query + gallery)")
    parser.add_argument("--config-file", default="",
                        help="config of the run (default: config.yaml next to the checkpoint)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: %(default)s)")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="image reading processes (default: the config's DATALOADER.NUM_WORKERS)")
    parser.add_argument("--device", default="", help="cpu or cuda (default: the config's MODEL.DEVICE)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides (as fast-reid's)")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the extraction; returns the process exit status (errors: see ``run_cli``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    result = extract_features(args.checkpoint, args.output, images=args.images, dataset=args.dataset,
                              config_file=args.config_file, opts=args.opts, batch_size=args.batch_size,
                              num_workers=args.num_workers, device=args.device, overwrite=args.overwrite,
                              progress=not args.no_progress)
    print(f"features {result['num_images']} x {result['feature_dim']} -> {', '.join(result['outputs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, "extract_features.py"))
