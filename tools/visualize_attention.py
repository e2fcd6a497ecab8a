#!/usr/bin/env python
"""Attention maps of one or two DMF / MMET models side by side (DMF paper Fig. 5), and text-token attention.

    python tools/visualize_attention.py --checkpoint DMF_RUN/model_final.pth [--config-file CFG]
        [--compare-checkpoint NO_TEXT_RUN/model_final.pth [--compare-config CFG2]]
        [--labels "DMF w/o Text" "DMF"] (--images PATH [PATH ...] | --dataset NAME [--num 4])
        [--method gradcam|eigencam|rollout] --out FILE.png [--reference IMAGE] [--text "a description" ...]
        [--device cpu|cuda] [--overwrite] [-- KEY VALUE ...]

Methods (``fastreid_dmf/tooling/visualize/attention.py``):

* ``gradcam`` (default): pytorch-grad-cam's Grad-CAM on the last block's ``norm1``, patch tokens reshaped
  to the patch grid. Re-ID has no class score at test time, so the target is an embedding similarity
  (pytorch-grad-cam tutorial "Pixel Attribution for embeddings"): the projection of the image's test feature
  on its own detached direction, or with ``--reference IMAGE`` the cosine similarity to that image's feature;
* ``eigencam``: pytorch-grad-cam's Eigen-CAM on the same layer (the method the DMF paper cites for Fig. 5);
* ``rollout``: attention rollout (Abnar & Zuidema 2020) of the image [cls] over the patches.

Writes FILE.png (rows: images; columns: input, then each model's map overlaid, titled by ``--labels``, the
model on the left first), FILE.npy (float32 (images, models, H, W) maps in [0, 1] at INPUT.SIZE_TEST),
FILE.json (settings and, with ``--text``, tokens and weights) and, with ``--text``, FILE_text.png: the
rollout of the text [cls] over each description's tokens, one bar chart per description and model (DMF:
through the shared blocks; MMET: through its text encoder). ``--dataset NAME --num N`` takes N query images
of that test set, one per identity first. KEY VALUE overrides apply to every model; put ``--`` before them.
Nothing is overwritten without ``--overwrite``. Errors end with exit code 1 and one line.
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
from fastreid_dmf.tooling.visualize.attention import METHODS  # noqa: E402
from fastreid_dmf.tooling.visualize.commands import visualize_attention  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="fast-reid checkpoint of the (first) model")
    parser.add_argument("--config-file", default="", help="its config (default: config.yaml beside it)")
    parser.add_argument("--compare-checkpoint", default="", help="a second model's checkpoint, drawn beside")
    parser.add_argument("--compare-config", default="", help="its config (default: config.yaml beside it)")
    parser.add_argument("--labels", nargs="+", default=[], help="column titles, one per model")
    parser.add_argument("--images", nargs="+", default=[], help="image files")
    parser.add_argument("--dataset", default="", help="or: a registered fast-reid test set (its query images)")
    parser.add_argument("--num", type=int, default=4, help="images taken from --dataset (default 4)")
    parser.add_argument("--method", choices=METHODS, default="gradcam", help="map method (default gradcam)")
    parser.add_argument("--out", required=True, help="output figure FILE.png (FILE.npy, FILE.json beside it)")
    parser.add_argument("--reference", default="", help="Grad-CAM target: cosine similarity to this image")
    parser.add_argument("--text", nargs="+", default=[], dest="texts", help="descriptions for token attention")
    parser.add_argument("--device", default="", help="cpu or cuda (default: the config's MODEL.DEVICE)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides for every model")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Draw the attention maps; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    summary = visualize_attention(args.checkpoint, args.out, config_file=args.config_file,
                                  compare_checkpoint=args.compare_checkpoint, compare_config=args.compare_config,
                                  labels=args.labels, images=args.images, dataset=args.dataset, num=args.num,
                                  method=args.method, texts=args.texts, reference=args.reference,
                                  overwrite=args.overwrite, opts=args.opts, device=args.device)
    extra = " and token bars" if summary["text"] else ""
    print(f"wrote {summary['method']} maps of {len(summary['images'])} image(s) x {len(summary['labels'])} "
          f"model(s){extra} to {args.out} (+ {summary['maps']}, .json)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="visualize_attention.py"))
