#!/usr/bin/env python
"""Export a DMF / MMET checkpoint's image feature to ONNX, checked against PyTorch with onnxruntime.

    python tools/export_onnx.py OUTPUT_DIR/model_final.pth model.onnx [--config-file OUTPUT_DIR/config.yaml]
        [--dataset NAME] [--batch-sizes 1 4] [--atol 1e-4] [--opset 18] [--flip-test] [--overwrite] [KEY VALUE ...]

The ONNX graph maps input "images", float32 (batch, 3, H, W) RGB in 0..255 at INPUT.SIZE_TEST, to output
"features", float32 (batch, D), the test feature the evaluator scores; batch is a dynamic axis. Before the
file is written, onnxruntime (CPU) runs it on the same images as PyTorch at each --batch-sizes value: test
images of --dataset (a registered dataset under $FASTREID_DATASETS), else random images. A max abs
difference above --atol fails the command (exit 1) and writes nothing. Writes model.onnx and the report
model.json (opset, input/output names and shapes, max_abs_diff, batch sizes, versions).
fastreid_dmf/tooling/onnx_export.py explains the exporter and opset choice.
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
from fastreid_dmf.tooling.onnx_export import DEFAULT_ATOL, DEFAULT_BATCH_SIZES, ONNX_OPSET, export_onnx  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="DMF or MMET checkpoint written by fast-reid's Checkpointer (model_*.pth)")
    parser.add_argument("output", help="ONNX file to write (.onnx); the report goes beside it as .json")
    parser.add_argument("--config-file", default="",
                        help="config of the run (default: config.yaml next to the checkpoint)")
    parser.add_argument("--dataset", default="",
                        help="check on test images of this registered dataset (default: random images)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES),
                        help="batch sizes of the onnxruntime check, at least two different (default: %(default)s)")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                        help="largest allowed |onnxruntime - PyTorch| (default: %(default)g)")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help="ONNX opset (default: %(default)s)")
    parser.add_argument("--flip-test", action="store_true",
                        help="average each image's feature with its horizontal flip's inside the graph "
                             "(what the evaluator does with TEST.FLIP.ENABLED True)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("opts", nargs="*", default=[], help="KEY VALUE config overrides (as fast-reid's)")
    return parser.parse_intermixed_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the export; returns the process exit status (errors: see ``run_cli``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("onnx_ir", "onnxscript"):  # the exporter's graph passes log every rewrite at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    args = parse_args(argv)
    report = export_onnx(args.checkpoint, args.output, config_file=args.config_file, opts=args.opts,
                         dataset=args.dataset, batch_sizes=args.batch_sizes, atol=args.atol, opset=args.opset,
                         flip_test=args.flip_test, overwrite=args.overwrite)
    shape = report["inputs"][0]["shape"], report["outputs"][0]["shape"]
    print(f"exported {args.checkpoint} -> {args.output} (opset {report['opset']}, "
          f"{report['inputs'][0]['name']} {shape[0]} -> {report['outputs'][0]['name']} {shape[1]})")
    print(f"onnxruntime vs PyTorch: max abs difference {report['max_abs_diff']:.3g} <= --atol {report['atol']:g} "
          f"at batch sizes {report['batch_sizes']} on {report['check_images']}")
    print(f"report: {os.path.splitext(args.output)[0]}.json")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, "export_onnx.py"))
