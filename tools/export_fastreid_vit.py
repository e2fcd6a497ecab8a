#!/usr/bin/env python
"""Export a DMF checkpoint's image branch as a plain fast-reid Baseline + ViT checkpoint.

    python tools/export_fastreid_vit.py OUTPUT_DIR/model_final.pth exported.pth \\
        [--config-file OUTPUT_DIR/config.yaml] [--test-feat before|after] [--overwrite] [KEY VALUE ...]

Folds the image projection F and LayerScale into fast-reid's ViT weights, drops the text branch and
keeps the BNNeck + classifier (``fastreid_dmf/modeling/export.py`` explains each step). Writes
``exported.yaml`` next to it when fast-reid's ``build_vit_backbone`` can build the shape, and prints the
fast-reid config keys; evaluate with fast-reid's ``tools/train_net.py --config-file exported.yaml --eval-only``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fastreid_dmf  # noqa: E402,F401  (first: patches fastreid, registers DMF components)

# isort: split

from fastreid_dmf.config import load_config  # noqa: E402
from fastreid_dmf.modeling.export import export_fastreid_vit  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="DMF checkpoint written by fast-reid's Checkpointer (model_*.pth)")
    parser.add_argument("output", help="exported fast-reid checkpoint (.pth)")
    parser.add_argument("--config-file", default="",
                        help="DMF config of the run (default: config.yaml next to the checkpoint)")
    parser.add_argument("--test-feat", choices=("before", "after"), default=None,
                        help="DMF test feature fast-reid should reproduce (default: the config's MODEL.DMF.TEST_FEAT)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides (as fast-reid's)")
    return parser.parse_intermixed_args(argv)


def _cli_value(value: object) -> str:
    """A value as fast-reid's ``merge_from_list`` reads it from a shell command line."""
    text = value if isinstance(value, str) else repr(tuple(value)) if isinstance(value, (list, tuple)) else repr(value)
    return shlex.quote(text)


def main(argv: list[str] | None = None) -> int:
    """Run the export; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    config_file = args.config_file or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "config.yaml")
    if not os.path.isfile(config_file):
        print(f"error: DMF config {config_file!r} not found; pass --config-file with the config of the run that "
              "wrote the checkpoint", file=sys.stderr)
        return 2
    try:
        cfg = load_config(config_file, args.opts)
    except (AssertionError, KeyError, ValueError) as error:  # yacs reports bad keys/values with these
        print(f"error: config {config_file} with overrides {args.opts}: {error}", file=sys.stderr)
        return 2
    try:
        report = export_fastreid_vit(args.checkpoint, args.output, cfg, test_feat=args.test_feat,
                                     overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"exported {args.checkpoint} -> {report['output']} (test feature: DMF {report['test_feat']!r})")
    print("folded: " + ", ".join(report["folded"]))
    print("dropped: " + (", ".join(report["dropped"]) or "nothing"))
    if report["config"]:
        print(f"fast-reid config: {report['config']}")
        print("fast-reid keys for your own bagtricks_vit-style config:")
        print(" ".join(f"{key} {_cli_value(value)}" for key, value in report["fastreid_keys"]))
    else:
        print(f"note: {report['reason']}")
        print(f"build the network with fastreid_dmf.modeling.export.build_fastreid_vit({report['vit_kwargs']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
