#!/usr/bin/env python
"""Time FineGPR dataset construction on a tree of the real size, built from zero-byte files.

FineGPR as distributed holds 1,150 identities x 1,764 images (36 viewpoints x
7 weathers x 7 illuminations) = 2,028,600 images. The dataset constructor
never opens an image, so a tree of empty files with the real names measures
its cost. The tool builds ``--ids`` identity folders of ``--per-id`` real
names (default 100 x 1,764 = 176,400 files) in a new temporary folder under
``--work-dir``, times

* ``scan_finegpr_tree`` (listing and name checks only),
* ``FineGPR(...)`` with ``images_per_identity`` 11 (the paper's subset) and 0
  (everything), text mode "sentence",
* generating a caption file for the whole tree, reading it back, and
  ``FineGPR(...)`` in text mode "caption" with 11 and 0 images per identity,
* ``DATASETS.VERIFY_IMAGES``: ``verify_images`` (opens each image) on
  ``--verify-sample`` real JPEGs of ``--verify-size``,

and extrapolates linearly to 1,150 identities (2,028,600 files; 12,650 for
the 11-per-identity subset). Times are the best of ``--repeats`` runs with a
warm file-system cache; a cold cache on a network or spinning disk adds the
directory reads (and, for verification, the image reads) on top. The
temporary folder is removed at the end unless ``--keep`` is given; nothing
outside it is written.

Example::

    python tools/benchmark_finegpr_scan.py --ids 100 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

#: FineGPR as distributed.
FULL_IDS = 1150
FULL_PER_ID = 36 * 7 * 7  # 1,764
PAPER_PER_ID = 11


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default=tempfile.gettempdir(),
                        help="existing folder in which a new temporary tree is made (default: the system temp dir)")
    parser.add_argument("--ids", type=int, default=100, help="identity folders to create (default 100)")
    parser.add_argument("--per-id", type=int, default=FULL_PER_ID,
                        help=f"images per identity, 1..{FULL_PER_ID} (default {FULL_PER_ID}, the real number)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the best is kept")
    parser.add_argument("--verify-sample", type=int, default=300,
                        help="real JPEGs written to time image verification (0 = skip)")
    parser.add_argument("--verify-size", default="128x256", help="WIDTHxHEIGHT of those JPEGs (default 128x256)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tree")
    parser.add_argument("--json", metavar="FILE", help="also write the results to this (new) JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.ids <= FULL_IDS:
        parser.error(f"--ids must be in 1..{FULL_IDS}, got {args.ids}")
    if not 1 <= args.per_id <= FULL_PER_ID:
        parser.error(f"--per-id must be in 1..{FULL_PER_ID}, got {args.per_id}")
    if args.repeats < 1 or args.verify_sample < 0:
        parser.error("--repeats must be >= 1 and --verify-sample >= 0")
    try:
        width, height = (int(v) for v in args.verify_size.lower().split("x"))
    except ValueError:
        parser.error(f"--verify-size must be WIDTHxHEIGHT, e.g. 128x256, got {args.verify_size!r}")
    args.verify_wh = (width, height)
    if not os.path.isdir(args.work_dir):
        parser.error(f"--work-dir {args.work_dir!r} is not an existing folder")
    if args.json and os.path.exists(args.json):
        parser.error(f"--json {args.json!r} already exists; refusing to overwrite it")
    return args


def image_names(pid: int, per_id: int) -> list[str]:
    """The first ``per_id`` of an identity's 1,764 real names ``<pid4>_cXX_wXX_lXX_pXX.jpg`` in sorted order.

    The scene code (not part of the 36 x 7 x 7 grid) is derived from pid,
    weather and illumination so that all nine occur.
    """
    names = [f"{pid:04d}_c{c:02d}_w{w:02d}_l{light:02d}_p{1 + (pid + w + light) % 9:02d}.jpg"
             for c in range(1, 37) for w in range(1, 8) for light in range(1, 8)]
    return names[:per_id]


def build_tree(root: str, ids: int, per_id: int) -> float:
    """Write ``<root>/FineGPR/<pid4>/<names>`` as zero-byte files plus an attribute file; returns seconds taken."""
    from fastreid_dmf.data.finegpr_format import ATTRIBUTE_VALUES, write_attribute_file

    start = time.perf_counter()
    folder = os.path.join(root, "FineGPR")
    for pid in range(1, ids + 1):
        identity_dir = os.path.join(folder, f"{pid:04d}")
        os.makedirs(identity_dir)
        for name in image_names(pid, per_id):
            with open(os.path.join(identity_dir, name), "xb"):
                pass
    table = {pid: {attr: values[(pid + i) % len(values)] for i, (attr, values) in enumerate(ATTRIBUTE_VALUES.items())}
             for pid in range(1, ids + 1)}
    write_attribute_file(os.path.join(folder, "attributes.csv"), table)
    return time.perf_counter() - start


def best_time(call: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def verification_seconds_per_image(root: str, count: int, size: tuple[int, int]) -> float:
    """Seconds per image of ``fastreid_dmf.data.build.verify_images`` on ``count`` fresh JPEGs of ``size``."""
    import numpy as np
    from PIL import Image

    from fastreid_dmf.data.build import verify_images

    folder = os.path.join(root, "verify")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        path = os.path.join(folder, f"{i:05d}.jpg")
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, "JPEG", quality=90)
        items.append((path, "p", "c"))
    seconds, good = best_time(lambda: verify_images(items, skip_unreadable=False), 2)
    assert len(good) == count
    return seconds / count


def run_benchmark(args: argparse.Namespace, root: str) -> dict[str, object]:
    """Build the tree under ``root`` and take every measurement; returns the results (module docstring)."""
    import fastreid_dmf  # noqa: F401  (fast-reid compat patches, dataset registration)
    from fastreid_dmf.data.datasets.finegpr import FineGPR, scan_finegpr_tree
    from fastreid_dmf.data.finegpr_format import read_caption_file, write_caption_file
    from fastreid_dmf.tooling.finegpr_convert import generate_captions

    files = args.ids * args.per_id
    scale = FULL_IDS / args.ids
    results: dict[str, object] = {"ids": args.ids, "per_id": args.per_id, "files": files,
                                  "full_files": FULL_IDS * FULL_PER_ID, "scale_to_full": round(scale, 3)}
    results["create_tree_s"] = round(build_tree(root, args.ids, args.per_id), 3)
    dataset_dir = os.path.join(root, "FineGPR")
    timings: dict[str, float] = {}

    timings["scan_finegpr_tree"], tree = best_time(lambda: scan_finegpr_tree(dataset_dir), args.repeats)
    assert tree.num_images() == files
    for per_id in (PAPER_PER_ID, 0):
        seconds, data = best_time(lambda n=per_id: FineGPR(root=root, images_per_identity=n, verbose=False),
                                  args.repeats)
        assert len(data.train) == args.ids * (min(per_id, args.per_id) if per_id else args.per_id)
        timings[f"FineGPR_sentence_images_per_id_{per_id}"] = seconds
    del data

    start = time.perf_counter()
    captions = generate_captions(dataset_dir, os.path.join(dataset_dir, "attributes.csv"))
    write_caption_file(os.path.join(dataset_dir, "captions.csv"), captions)
    timings["generate_and_write_captions"] = time.perf_counter() - start
    timings["read_caption_file"], read_back = best_time(
        lambda: read_caption_file(os.path.join(dataset_dir, "captions.csv")), args.repeats)
    assert read_back == captions
    del captions, read_back
    for per_id in (PAPER_PER_ID, 0):
        seconds, data = best_time(
            lambda n=per_id: FineGPR(root=root, text_mode="caption", images_per_identity=n, verbose=False),
            args.repeats)
        timings[f"FineGPR_caption_images_per_id_{per_id}"] = seconds
    del data

    results["measured_s"] = {k: round(v, 3) for k, v in timings.items()}
    results["full_tree_estimate_s"] = {k: round(v * scale, 1) for k, v in timings.items()}
    results["caption_file_mb"] = round(os.path.getsize(os.path.join(dataset_dir, "captions.csv")) / 2**20, 1)
    if args.verify_sample:
        per_image = verification_seconds_per_image(root, args.verify_sample, args.verify_wh)
        results["verify_images"] = {
            "image_size": f"{args.verify_wh[0]}x{args.verify_wh[1]}",
            "ms_per_image_warm_cache": round(per_image * 1000, 3),
            "full_tree_estimate_s": round(per_image * FULL_IDS * FULL_PER_ID, 1),
            "paper_subset_estimate_s": round(per_image * FULL_IDS * PAPER_PER_ID, 1),
        }
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the results as JSON; returns the exit status (0)."""
    args = parse_args(argv)
    root = tempfile.mkdtemp(prefix="finegpr_scan_bench_", dir=args.work_dir)
    try:
        results = run_benchmark(args, root)
    finally:
        if args.keep:
            print(f"kept the tree in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root)
    from fastreid_dmf.tooling.benchmarks.json_report import print_json_report

    print_json_report(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
