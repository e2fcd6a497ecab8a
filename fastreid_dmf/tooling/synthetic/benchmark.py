"""Write the bundled synthetic benchmark in the exact on-disk layouts of real Re-ID datasets.

:func:`generate_benchmark` writes three datasets under one root folder:

``FineGPR/`` (source domain, FineGPR layout)
    ``FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg`` with viewpoint, weather,
    illumination and scene codes sampled per image (see
    :mod:`fastreid_dmf.data.finegpr_format`), plus ``FineGPR/attributes.csv``
    written by :func:`~fastreid_dmf.data.finegpr_format.write_attribute_file`.

``synth_market/`` (target domain A, Market-1501 layout)
    ``bounding_box_train/``, ``query/`` and ``bounding_box_test/`` with names
    ``{pid:04d}_c{cam}s1_{frame:06d}_{k:02d}.jpg``, cameras c1..c6, pids in
    1..1501 (train and test disjoint). Query holds one image per (test pid,
    query camera); the gallery holds the test pids' other images (always in
    at least two cameras, so every query has a cross-camera match),
    distractors with pid ``0000`` and junk with pid ``-1`` (e.g.
    ``-1_c3s1_000123_01.jpg``), as in Market-1501. ``descriptions.json``
    (:mod:`fastreid_dmf.data.test_descriptions`) describes each test person's
    query and gallery images by its attributes, for text-to-image retrieval.

``synth_msmt/MSMT17_V1/`` (target domain B, MSMT17_V1 layout)
    ``train/<pid4>/`` and ``test/<pid4>/`` with names
    ``{pid:04d}_{idx:03d}_{cam:02d}_{date}{period}_{frame:04d}_{k}.jpg`` (as
    ``0000_000_01_0303morning_0015_0.jpg``; the third field is the camera
    01..15), and ``list_train.txt``, ``list_val.txt``, ``list_query.txt``,
    ``list_gallery.txt`` with lines ``<pid4>/<file name> <pid>`` relative to
    ``train/`` or ``test/``; train and test pids both start at 0, and
    ``list_val.txt`` is disjoint from ``list_train.txt``, as in MSMT17_V1;
    ``synth_msmt/descriptions.json`` describes the test images.

Target identities are new random identities, not copies of the source ones.
The trees are planned with :mod:`.tree_plans` (shared with the look-alike
trees of :mod:`.lookalike_trees`) and written with :mod:`.tree_writing`:
every image is drawn by :mod:`.render` from a ``numpy.random.Generator``
seeded with ``(seed, dataset, item)``, and saved as JPEG quality 92, so the
same seed and preset give byte-identical files. Each dataset folder also gets
a ``README.txt`` that marks it as synthetic.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...data.descriptions import build_description
from ...data.test_descriptions import DESCRIPTIONS_FILE, encode_test_descriptions
from .tree_plans import (
    MARKET_FOLDERS,
    MarketStylePlan,
    Shot,
    SplitSizes,
    draw_pid_groups,
    market_file_name,
    msmt17_list_files,
    plan_finegpr,
    plan_msmt17,
    sample_population,
)
from .tree_writing import check_destination, readme_bytes, write_finegpr_tree, write_tree

__all__ = ["Preset", "PRESETS", "DATASET_FOLDERS", "generate_benchmark"]

#: Folder (under the root) of each generated dataset, keyed by the name used in the returned counts.
DATASET_FOLDERS: dict[str, str] = {"FineGPR": "FineGPR", "synth_market": "synth_market", "synth_msmt": "synth_msmt"}

_CODE = {"synth_market": 2, "synth_msmt": 3}  # dataset code in the seed keys (FineGPR: tree_plans.FINEGPR_CODE)
_GALLERY_SPREAD = (1, 2)  # a test identity's gallery uses its query cameras plus 1..2 more


@dataclass(frozen=True)
class Preset:
    """Sizes of one benchmark preset (counts of identities and images).

    Attributes:
        source_ids: FineGPR identities.
        source_images_per_id: images per FineGPR identity.
        train_ids: training identities of each target domain.
        train_images_per_id: images per training identity (spread over 2..4 cameras).
        test_ids: test identities of each target domain.
        query_per_id: inclusive range of query images per test identity (one per camera).
        gallery_per_id: gallery images per test identity.
        distractors: SynthMarket gallery distractors (pid ``0000``).
        junk: SynthMarket gallery junk images (pid ``-1``).
        val_ids: SynthMSMT training identities that give one image to ``list_val.txt``.
        shared_fraction: fraction of identities (per dataset, at least one)
            that copy all 13 attributes of another identity and differ only in
            hidden traits.
    """

    source_ids: int
    source_images_per_id: int
    train_ids: int
    train_images_per_id: int
    test_ids: int
    query_per_id: tuple[int, int]
    gallery_per_id: int
    distractors: int
    junk: int
    val_ids: int
    shared_fraction: float


#: ``demo``: ~5.7k images for the quick-start; ``tiny``: ~150 images for unit tests.
PRESETS: dict[str, Preset] = {
    "demo": Preset(source_ids=200, source_images_per_id=16, train_ids=100, train_images_per_id=8, test_ids=50,
                   query_per_id=(2, 3), gallery_per_id=6, distractors=25, junk=15, val_ids=10, shared_fraction=0.2),
    "tiny": Preset(source_ids=12, source_images_per_id=4, train_ids=6, train_images_per_id=4, test_ids=6,
                   query_per_id=(2, 2), gallery_per_id=3, distractors=3, junk=2, val_ids=2, shared_fraction=0.25),
}


def _split_sizes(preset: Preset) -> SplitSizes:
    return SplitSizes(preset.train_images_per_id, preset.query_per_id, preset.gallery_per_id, _GALLERY_SPREAD)


# --------------------------------------------------------------------------- target A: SynthMarket

def _market_name(rng: np.random.Generator, split: str, pid: int, camera: int) -> str:
    """SynthMarket file name: sequence 1, box 01 for persons, 01 or 02 for distractors and junk."""
    frame = int(rng.integers(1, 200000))
    return market_file_name(pid, camera, 1, frame, int(rng.integers(1, 3)) if pid <= 0 else 1)


def _market_plan(preset: Preset, seed: int) -> tuple[list[Shot], dict[str, int]]:
    code = _CODE["synth_market"]
    plan = MarketStylePlan(seed, code, 6, _market_name)
    train_pids, test_pids = draw_pid_groups(plan.rng, 1501, (preset.train_ids, preset.test_ids))
    identities = sample_population(seed, code, train_pids + test_pids, shared_fraction=preset.shared_fraction)
    train_ids, test_ids = identities[: preset.train_ids], identities[preset.train_ids:]
    plan.add_identities(train_ids, test_ids, _split_sizes(preset))
    # pid 0000: background or a stranger cut off by a bad box
    plan.add_distractors(sample_population(seed, code, range(preset.distractors), stream=1, shared_fraction=0.0))
    for _ in range(preset.junk):  # pid -1: a piece of a test identity
        ident = test_ids[int(plan.rng.integers(0, len(test_ids)))]
        plan.add("gallery", -1, plan.random_camera(), ident, "partial")
    return plan.shots, {**plan.counts(), "distractor_images": preset.distractors, "junk_images": preset.junk}


# --------------------------------------------------------------------------- writing

def _test_descriptions(shots: list[Shot], test_folders: tuple[str, ...], not_persons: tuple[str, ...] = ()) -> bytes:
    """``descriptions.json`` of the test images showing a whole test identity.

    Images in ``test_folders`` are described unless they are not a whole person (kind "partial" or
    "background") or their file name starts with one of ``not_persons`` (Market's distractor ``0000_`` and
    junk ``-1_`` labels).

    Each description is the identity's attribute sentence without capture conditions (what a person
    looking for someone would say), so all images of one identity share it.
    """
    texts = {shot.path.replace(os.sep, "/"): build_description(shot.identity.attributes, None, "sentence",
                                                                with_environment=False)
             for shot in shots if shot.kind == "person" and shot.identity is not None
             and shot.path.startswith(test_folders)
             and not (not_persons and os.path.basename(shot.path).startswith(not_persons))}
    return encode_test_descriptions(texts)


def _readme(title: str, layout: str, preset: str, seed: int, counts: dict[str, int]) -> bytes:
    about = [f"{title}: a synthetic person re-identification dataset made by fastreid-dmf",
             "(fastreid_dmf.tooling.synthetic, tools/make_demo_data.py). Every image is procedurally drawn;",
             f"no real person is shown. This is NOT the real dataset whose folder layout it copies ({layout})."]
    return readme_bytes(about, {"preset": preset, "seed": seed, **counts},
                        f"Regenerate: python tools/make_demo_data.py --root <root> --preset {preset} --seed {seed} "
                        "--overwrite")


def generate_benchmark(root: str, preset: str = "demo", seed: int = 0,
                       overwrite: bool = False) -> dict[str, dict[str, int]]:
    """Generate the three synthetic datasets under ``root`` (layouts in the module docstring).

    Args:
        root: folder that receives ``FineGPR/``, ``synth_market/`` and
            ``synth_msmt/`` (created if missing).
        preset: a key of :data:`PRESETS` (``"demo"`` or ``"tiny"``).
        seed: non-negative integer; the same seed and preset give
            byte-identical files.
        overwrite: replace dataset folders that already exist and are not
            empty. Only folders whose ``README.txt`` carries
            :data:`~.tree_writing.README_MARKER` (i.e. made by fastreid-dmf) are ever deleted.

    Returns:
        ``{dataset: {count name: value}}`` for ``"FineGPR"`` (``identities``,
        ``images``, ``shared_attribute_ids``: identities whose 13 attributes
        equal another's), ``"synth_market"`` (``train_ids``, ``train_images``,
        ``test_ids``, ``query_images``, ``gallery_images`` = every file in
        ``bounding_box_test`` including ``distractor_images`` and
        ``junk_images``) and ``"synth_msmt"`` (``train_ids``,
        ``train_images`` in ``list_train.txt``, ``val_images``, ``test_ids``,
        ``query_images``, ``gallery_images``).

    Raises:
        ValueError: unknown preset or negative seed.
        FileExistsError: a dataset folder exists and is not empty while
            ``overwrite`` is False, or it was not generated by fastreid-dmf;
            nothing is written in that case.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    cfg = PRESETS[preset]
    for folder in DATASET_FOLDERS.values():
        check_destination(os.path.join(root, folder), overwrite, tool="tools/make_demo_data.py")
    os.makedirs(root, exist_ok=True)
    counts: dict[str, dict[str, int]] = {}

    # source domain
    shots, identities = plan_finegpr(seed, cfg.source_ids, cfg.source_images_per_id, cfg.shared_fraction)
    signatures = Counter(tuple(i.attributes.values()) for i in identities)
    shared = sum(n for n in signatures.values() if n > 1)
    counts["FineGPR"] = {"identities": len(identities), "images": len(shots), "shared_attribute_ids": shared}
    write_finegpr_tree(root, DATASET_FOLDERS["FineGPR"], shots, identities,
                       _readme("FineGPR (synthetic stand-in)", "FineGPR", preset, seed, counts["FineGPR"]))

    # target A
    shots, counts["synth_market"] = _market_plan(cfg, seed)
    write_tree(root, DATASET_FOLDERS["synth_market"], shots,
               {"README.txt": _readme("SynthMarket", "Market-1501", preset, seed, counts["synth_market"]),
                DESCRIPTIONS_FILE: _test_descriptions(shots, (MARKET_FOLDERS["query"], MARKET_FOLDERS["gallery"]),
                                                    ("0000_", "-1_"))},
               empty_dirs=tuple(MARKET_FOLDERS.values()))

    # target B
    code = _CODE["synth_msmt"]
    identities = sample_population(seed, code, list(range(cfg.train_ids)) + list(range(cfg.test_ids)),
                                   shared_fraction=cfg.shared_fraction)
    shots, lists, counts["synth_msmt"] = plan_msmt17(
        seed, code, identities[: cfg.train_ids], identities[cfg.train_ids:], _split_sizes(cfg), val_ids=cfg.val_ids,
        extra_val_image=False, train_dir=os.path.join("MSMT17_V1", "train"), test_dir=os.path.join("MSMT17_V1", "test"))
    files = {os.path.join("MSMT17_V1", name): content for name, content in msmt17_list_files(lists).items()}
    files["README.txt"] = _readme("SynthMSMT", "MSMT17_V1", preset, seed, counts["synth_msmt"])
    files[DESCRIPTIONS_FILE] = _test_descriptions(shots, (os.path.join("MSMT17_V1", "test"),))
    write_tree(root, DATASET_FOLDERS["synth_msmt"], shots, files,
               empty_dirs=(os.path.join("MSMT17_V1", "train"), os.path.join("MSMT17_V1", "test")))
    return counts
