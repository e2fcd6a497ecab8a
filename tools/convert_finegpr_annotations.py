#!/usr/bin/env python
"""Convert FineGPR / FineGPR-C annotations to the attribute and caption files this project reads.

The formats of the FineGPR download's annotations are not published; this
tool accepts the plausible forms (details: fastreid_dmf/tooling/finegpr_convert.py)
and writes the documented CSV files (fastreid_dmf/data/finegpr_format.py):

  --attributes FILE      JSON {pid: {attribute: value}} or a list of records, or
                         CSV/TSV with a header (rename columns with --column-map,
                         leave columns out with --drop-columns); colour codes
                         01..09, yes/no as 1/0 or true/false; numeric gender codes
                         need --gender-codes. Writes <dataset-dir>/attributes.csv.
  --captions FILE        JSON {image: caption}, a list of {"image"|"file_name",
                         "caption"|"text"} records, COCO-style {"images",
                         "annotations"} (first caption per image), plain text lines
                         "image<TAB or space>caption", or CSV/TSV.
                         Writes <dataset-dir>/captions.csv.
  --generate-captions    FineGPR-C-style captions from the attribute file and the
                         image tree (the project's sentence template with the
                         environment), for DATASETS.FINEGPR.TEXT_MODE caption
                         without the FineGPR-C download.

An existing output is never replaced unless --overwrite is given. The output is
read back and checked before it takes its name. Prints the counts as JSON.

Examples::

    python tools/convert_finegpr_annotations.py --attributes download/attributes.json
    python tools/convert_finegpr_annotations.py --attributes attr.tsv --column-map id=pid,sex=gender \\
        --gender-codes 0=male,1=female --output datasets/FineGPR/attributes.csv
    python tools/convert_finegpr_annotations.py --captions FineGPR-C.txt
    python tools/convert_finegpr_annotations.py --generate-captions --images-per-id 11

Exit status: 0 written, 1 refused (output exists) or bad input, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def default_dataset_dir() -> str:
    """``$FASTREID_DATASETS/FineGPR`` (``datasets/FineGPR`` when the variable is not set)."""
    return os.path.join(os.environ.get("FASTREID_DATASETS", "datasets"), "FineGPR")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--attributes", metavar="FILE", help="attribute annotation file to convert")
    task.add_argument("--captions", metavar="FILE", help="caption annotation file to convert")
    task.add_argument("--generate-captions", action="store_true",
                      help="write template captions for the images of --dataset-dir from --attribute-file")
    parser.add_argument("--output", metavar="FILE",
                        help="file to write (default: attributes.csv / captions.csv in --dataset-dir)")
    parser.add_argument("--dataset-dir", default=default_dataset_dir(),
                        help="the FineGPR folder (default: $FASTREID_DATASETS/FineGPR or datasets/FineGPR)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--format", default="auto", dest="input_format",
                        choices=("auto", "json", "coco", "csv", "tsv", "text"),
                        help="input format (default: from the extension, then the content)")
    parser.add_argument("--column-map", default="", metavar="NAME=OURS,...",
                        help="rename input columns/keys, e.g. id=pid,sex=gender or file=image,sentence=caption")
    parser.add_argument("--drop-columns", default="", metavar="NAME,...",
                        help="attribute input columns to ignore")
    parser.add_argument("--gender-codes", default="", metavar="CODE=WORD,...",
                        help="meaning of numeric gender codes, e.g. 0=male,1=female (Market-1501 convention)")
    parser.add_argument("--codes", action="append", default=[], metavar="ATTR:CODE=WORD,...",
                        help="code table of any attribute, e.g. age:0=teenager,1=adult,2=older (repeatable)")
    parser.add_argument("--attribute-file", metavar="FILE",
                        help="--generate-captions: attribute CSV (default: <dataset-dir>/attributes.csv)")
    parser.add_argument("--no-environment", action="store_true",
                        help="--generate-captions: leave weather, illumination and viewpoint out")
    parser.add_argument("--images-per-id", type=int, default=0, metavar="N",
                        help="--generate-captions: only the images DATASETS.FINEGPR.IMAGES_PER_ID N selects "
                             "(0 = all, DMF uses 11)")
    parser.add_argument("--subset-seed", type=int, default=0, metavar="S",
                        help="--generate-captions: DATASETS.FINEGPR.SUBSET_SEED of that selection")
    args = parser.parse_args(argv)
    if args.images_per_id < 0:
        parser.error(f"--images-per-id must be >= 0, got {args.images_per_id}")
    if not args.attributes and (args.gender_codes or args.codes or args.drop_columns):
        parser.error("--gender-codes, --codes and --drop-columns apply to --attributes only")
    if args.generate_captions and (args.column_map or args.input_format != "auto"):
        parser.error("--column-map and --format apply to --attributes and --captions only")
    if not args.generate_captions and (args.attribute_file or args.no_environment or args.images_per_id
                                       or args.subset_seed):
        parser.error("--attribute-file, --no-environment, --images-per-id and --subset-seed apply to "
                     "--generate-captions only")
    return args


def run(args: argparse.Namespace) -> dict[str, object]:
    """Do the conversion chosen by ``args``; returns the summary counts.

    Raises:
        FileExistsError: the output exists and --overwrite was not given.
        FileNotFoundError, ValueError: missing or bad inputs (messages name
            the file, line and what was expected).
    """
    from fastreid_dmf.tooling import finegpr_convert as conv

    if args.attributes:
        code_maps = conv.parse_code_maps(args.codes)
        if args.gender_codes:
            if "gender" in code_maps:
                raise ValueError("gender codes are given twice (--gender-codes and --codes gender:...)")
            code_maps["gender"] = conv.parse_code_map(args.gender_codes, "gender")
        summary = conv.convert_attributes(
            args.attributes, args.output or os.path.join(args.dataset_dir, "attributes.csv"), args.overwrite,
            column_map=conv.parse_column_map(args.column_map),
            code_maps=code_maps,
            drop_columns=[c.strip() for c in args.drop_columns.split(",") if c.strip()],
            input_format=args.input_format,
        )
    elif args.captions:
        summary = conv.convert_captions(
            args.captions, args.output or os.path.join(args.dataset_dir, "captions.csv"), args.overwrite,
            column_map=conv.parse_column_map(args.column_map, ("image", "caption")),
            input_format=args.input_format,
        )
    else:
        summary = conv.write_generated_captions(
            args.dataset_dir, args.output or os.path.join(args.dataset_dir, "captions.csv"),
            attribute_file=args.attribute_file, with_environment=not args.no_environment,
            images_per_identity=args.images_per_id, subset_seed=args.subset_seed, overwrite=args.overwrite,
        )
    return summary.as_dict()


def main(argv: list[str] | None = None) -> int:
    """Run the tool; returns the exit status (0 ok, 1 refused or bad input)."""
    args = parse_args(argv)
    if args.attributes and args.input_format in ("coco", "text"):
        print(f"convert_finegpr_annotations: --format {args.input_format} is for --captions only", file=sys.stderr)
        return 1
    import fastreid_dmf.tooling.finegpr_convert  # noqa: F401  (slow first import of torch/fastreid, not timed)

    start = time.perf_counter()
    try:
        counts = run(args)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"convert_finegpr_annotations: {err}", file=sys.stderr)
        return 1
    print(json.dumps(counts, indent=2))
    print(f"wrote {counts['written']} {counts['kind']} row(s) to {counts['output']} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
