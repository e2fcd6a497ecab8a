"""Small look-alike trees in the exact on-disk layouts of the real Re-ID datasets.

:func:`generate_real_layout_trees` writes, under one fast-reid dataset root,
tiny synthetic stand-ins (persons drawn by :mod:`.render`, 64 x 128 pixels)
for the datasets DMF trains and tests on, with the real folder and file names,
so that the real loaders can be run end to end without the real data:

=================  ============================================  ==============================
tree key           folder and file names                         read by
=================  ============================================  ==============================
``Market1501``     ``Market-1501-v15.09.15/{bounding_box_train,   fast-reid ``Market1501``
                   query,bounding_box_test}/``
                   ``0002_c1s1_000451_01.jpg`` (query ``..._00``);
                   the gallery also holds distractors ``0000_...``
                   and junk ``-1_c3s1_...`` (as in Market-1501)
``DukeMTMC``       ``DukeMTMC-reID/{bounding_box_train,query,     fast-reid ``DukeMTMC``
                   bounding_box_test}/0001_c2_f0046182.jpg``,
                   cameras c1..c8, gallery-only distractor ids
``MSMT17``         ``MSMT17_V1/{train,test}/<pid4>/``             fast-reid ``MSMT17``,
                   ``0000_000_01_0303morning_0015_0.jpg`` and     ``MSMT17All``
                   ``list_{train,val,query,gallery}.txt``
                   (``MSMT17_V2/{mask_train_v2,mask_test_v2}/``
                   with ``msmt17_version="V2"``)
``CUHK03NP``       ``cuhk03-np/{detected,labeled}/{bounding_box_  ``CUHK03NP``,
                   train,query,bounding_box_test}/0001_c1_1.png`` ``CUHK03NPLabeled``
``CUHK03NP-mat``   ``cuhk03/images_{detected,labeled}/            ``CUHK03NP(layout="mat")``
                   1_001_1_01.png`` and ``cuhk03/cuhk03_new_
                   protocol_config_{detected,labeled}.mat``
``RandPerson``     ``randperson_subset/randperson_subset/         ``RandPerson``
                   000000_s00_c00_f000228.jpg``
``FineGPR``        ``FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg``  ``FineGPR``
                   and ``FineGPR/attributes.csv`` (the planner
                   of :func:`~.benchmark.generate_benchmark`)
=================  ============================================  ==============================

Both CUHK03 trees hold the same identities, split and pixels (the release's
running number ``n`` in ``<pid4>_c<view>_<n>.png`` is the image's 1-based
index in the ``.mat`` file's ``filelist``), so both routes load the same
dataset. Each tree gets a ``README.txt`` whose first line is
:data:`~.tree_writing.README_MARKER`; only such folders are ever replaced.

Every test identity has query images in distinct cameras and gallery images in
at least two cameras, so every query has a gallery match in another camera
(fast-reid's evaluation needs that). The Market-1501, DukeMTMC-reID, MSMT17
and FineGPR trees are planned with :mod:`.tree_plans`, as the bundled
benchmark's (:mod:`.benchmark`), and every tree is written with
:mod:`.tree_writing`. Images come from
``numpy.random.Generator`` s seeded with ``(seed, tree, item)``; JPEGs are
saved at quality 92, PNGs losslessly, and the ``.mat`` header text is fixed,
so the same seed and size give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from fastreid.data.datasets.msmt17 import TEST_DIR_KEY, TRAIN_DIR_KEY, VERSION_DICT

from ...data.finegpr_format import ILLUMINATIONS, WEATHERS
from .benchmark import PRESETS
from .identities import Identity
from .styles import Environment
from .tree_plans import (
    MARKET_FOLDERS,
    MarketStylePlan,
    Shot,
    SplitSizes,
    draw_pid_groups,
    draw_viewpoint,
    market_file_name,
    msmt17_list_files,
    plan_finegpr,
    plan_msmt17,
    sample_population,
    seeded_rng,
)
from .tree_writing import check_destination, readme_bytes, write_finegpr_tree, write_tree

__all__ = ["LookalikeSize", "TREES", "tree_folder", "generate_real_layout_trees"]

#: Keys of the trees :func:`generate_real_layout_trees` can write, in writing order.
TREES: tuple[str, ...] = ("Market1501", "DukeMTMC", "MSMT17", "CUHK03NP", "CUHK03NP-mat", "RandPerson", "FineGPR")
_FOLDERS = {"Market1501": "Market-1501-v15.09.15", "DukeMTMC": "DukeMTMC-reID", "CUHK03NP": "cuhk03-np",
            "CUHK03NP-mat": "cuhk03", "RandPerson": "randperson_subset", "FineGPR": "FineGPR"}
#: MSMT17 version -> (train folder, test folder), from fast-reid's own table.
_MSMT_DIRS = {name.split("_")[1]: (dirs[TRAIN_DIR_KEY], dirs[TEST_DIR_KEY]) for name, dirs in VERSION_DICT.items()}
_LOADERS = {"Market1501": "fast-reid Market1501", "DukeMTMC": "fast-reid DukeMTMC",
            "MSMT17": "fast-reid MSMT17 and fastreid_dmf MSMT17All", "CUHK03NP": "CUHK03NP / CUHK03NPLabeled",
            "CUHK03NP-mat": "CUHK03NP / CUHK03NPLabeled with layout='mat'", "RandPerson": "RandPerson",
            "FineGPR": "FineGPR"}
_CODE = {tree: 11 + i for i, tree in enumerate(TREES)}  # tree code in the seed keys
_CUHK_BOXES = ("detected", "labeled")
#: Cameras per scene of the RandPerson subset (differences of QAConv's camera offsets; 19 cameras in 11 scenes).
_RANDPERSON_CAMERAS = (2, 2, 2, 2, 1, 1, 2, 1, 1, 1, 4)
_MAT_HEADER = b"MATLAB 5.0 MAT-file, synthetic look-alike written by fastreid-dmf"
_GALLERY_SPREAD = (0, 1)  # a test identity's gallery uses its query cameras plus 0..1 more (two at least)


@dataclass(frozen=True)
class LookalikeSize:
    """Sizes of the look-alike trees (the same for every tree unless noted).

    The defaults (~500 files, ~5 MB, ~3 s on 2 cores) give enough identities
    for a P x K sampler with batch 16 = 4 identities x 4 images.

    Attributes:
        train_ids: training identities per tree (also RandPerson's identities).
        train_images_per_id: images per training identity (2..10; spread over
            2..4 cameras, CUHK03 over its 2 views).
        test_ids: test identities (Market/Duke/MSMT17/CUHK03).
        query_per_id: query images per test identity, one per camera (1..6;
            CUHK03-NP always has one per view, i.e. 2).
        gallery_per_id: gallery images per test identity (2..8), in at least
            two cameras.
        distractors: Market-1501 ``0000`` distractor images; DukeMTMC
            gallery-only identities.
        junk: Market-1501 ``-1`` junk images.
        val_ids: MSMT17 training identities with one extra image in
            ``list_val.txt``.
        finegpr_ids / finegpr_images_per_id: FineGPR identities / images each.
    """

    train_ids: int = 8
    train_images_per_id: int = 4
    test_ids: int = 6
    query_per_id: int = 2
    gallery_per_id: int = 3
    distractors: int = 3
    junk: int = 2
    val_ids: int = 2
    finegpr_ids: int = 8
    finegpr_images_per_id: int = 4

    def check(self) -> None:
        """Raise ValueError naming the first field outside its range."""
        ranges = {"train_ids": (1, 1000), "train_images_per_id": (2, 10), "test_ids": (1, 1000),
                  "query_per_id": (1, 6), "gallery_per_id": (2, 8), "distractors": (0, 1000), "junk": (0, 1000),
                  "val_ids": (0, 1000), "finegpr_ids": (1, 9999), "finegpr_images_per_id": (1, 100)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"LookalikeSize.{name} must be an integer in {low}..{high}, got {value!r}")
        if self.val_ids > self.train_ids:
            raise ValueError(f"LookalikeSize.val_ids ({self.val_ids}) must not exceed train_ids ({self.train_ids})")


def tree_folder(tree: str, msmt17_version: str = "V1") -> str:
    """Folder (relative to the dataset root) of one tree.

    Args:
        tree: a key of :data:`TREES`.
        msmt17_version: ``"V1"`` or ``"V2"`` (only for ``"MSMT17"``).

    Returns:
        e.g. ``"Market-1501-v15.09.15"`` or ``"MSMT17_V2"``.

    Raises:
        ValueError: unknown tree or version.
    """
    if tree not in TREES:
        raise ValueError(f"unknown look-alike tree {tree!r}; expected one of {', '.join(TREES)}")
    if msmt17_version not in _MSMT_DIRS:
        raise ValueError(f"unknown MSMT17 version {msmt17_version!r}; expected one of {', '.join(_MSMT_DIRS)}")
    return f"MSMT17_{msmt17_version}" if tree == "MSMT17" else _FOLDERS[tree]


def _people(seed: int, tree: str, pids: Sequence[int], stream: int = 0) -> list[Identity]:
    return sample_population(seed, _CODE[tree], pids, stream)


def _split_sizes(size: LookalikeSize) -> SplitSizes:
    return SplitSizes(size.train_images_per_id, size.query_per_id, size.gallery_per_id, _GALLERY_SPREAD)


# --------------------------------------------------------------------------- Market-1501 / DukeMTMC-reID

def _market_name(rng: np.random.Generator, split: str, pid: int, camera: int) -> str:
    """Market-1501 file name with sequence 1..6 and box 01..03 (query boxes were drawn by hand: ``00``)."""
    seq, frame, box = int(rng.integers(1, 7)), int(rng.integers(1, 200000)), int(rng.integers(1, 4))
    return market_file_name(pid, camera, seq, frame, 0 if split == "query" else box)


def _duke_name(rng: np.random.Generator, split: str, pid: int, camera: int) -> str:
    """DukeMTMC-reID file name ``<pid4>_c<camera>_f<frame7>.jpg``."""
    return f"{pid:04d}_c{camera}_f{int(rng.integers(1, 230000)):07d}.jpg"


def _market(size: LookalikeSize, seed: int) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    plan = MarketStylePlan(seed, _CODE["Market1501"], 6, _market_name)
    train_pids, test_pids = draw_pid_groups(plan.rng, 1501, (size.train_ids, size.test_ids))
    people = _people(seed, "Market1501", train_pids + test_pids)
    test_people = people[size.train_ids:]
    plan.add_identities(people[: size.train_ids], test_people, _split_sizes(size))
    plan.add_distractors(_people(seed, "Market1501", range(size.distractors), stream=1))  # 0000
    for _ in range(size.junk):  # -1: a piece of a test identity (camera drawn first, then who)
        camera = plan.random_camera()
        plan.add("gallery", -1, camera, test_people[int(plan.rng.integers(0, len(test_people)))], "partial")
    return plan.shots, {}, {**plan.counts(), "distractor_images": size.distractors, "junk_images": size.junk}


def _duke(size: LookalikeSize, seed: int) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    plan = MarketStylePlan(seed, _CODE["DukeMTMC"], 8, _duke_name)
    groups = draw_pid_groups(plan.rng, 7140, (size.train_ids, size.test_ids, size.distractors))
    people = _people(seed, "DukeMTMC", [pid for group in groups for pid in group])
    n_labelled = size.train_ids + size.test_ids
    plan.add_identities(people[: size.train_ids], people[size.train_ids: n_labelled], _split_sizes(size))
    for ident in people[n_labelled:]:  # DukeMTMC-reID's gallery-only distractor identities
        plan.add("gallery", ident.pid, plan.random_camera(), ident)
    return plan.shots, {}, {**plan.counts(), "distractor_ids": size.distractors}


# --------------------------------------------------------------------------- MSMT17

def _msmt(size: LookalikeSize, seed: int, version: str) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    train_dir, test_dir = _MSMT_DIRS[version]
    people = _people(seed, "MSMT17", list(range(size.train_ids)) + list(range(size.test_ids)))
    shots, lists, counts = plan_msmt17(seed, _CODE["MSMT17"], people[: size.train_ids], people[size.train_ids:],
                                       _split_sizes(size), val_ids=size.val_ids, extra_val_image=True,
                                       train_dir=train_dir, test_dir=test_dir)
    return shots, msmt17_list_files(lists), counts


# --------------------------------------------------------------------------- CUHK03-NP (both forms)

@dataclass(frozen=True)
class _CuhkImage:
    index: int  # 1-based position in the .mat filelist (= the release's running number)
    pid: int
    pair: int
    pair_pid: int
    view: int
    img: int  # 1..5 in view 1, 6..10 in view 2 (as fast-reid's CUHK03 extraction)
    split: str  # "train", "query" or "gallery"
    identity: Identity
    viewpoint: int

    def extracted_name(self) -> str:
        return f"{self.pair}_{self.pair_pid:03d}_{self.view}_{self.img:02d}.png"

    def release_name(self) -> str:
        return f"{self.pid:04d}_c{self.view}_{self.index}.png"


def _cuhk_plan(size: LookalikeSize, seed: int) -> list[_CuhkImage]:
    """Identities, views and split of the CUHK03-NP look-alike (shared by both forms)."""
    code = _CODE["CUHK03NP"]
    lrng = seeded_rng(seed, code, 2)
    pids = draw_pid_groups(lrng, 1467, (size.train_ids + size.test_ids,))[0]
    test_pids = {int(p) for p in lrng.choice(pids, size.test_ids, replace=False)}
    people = _people(seed, "CUHK03NP", pids)
    plan: list[_CuhkImage] = []
    per_pair: dict[int, int] = {}
    for i, ident in enumerate(people):
        pair = 1 + i * 5 // len(people)  # labels run over (camera pair, person) as in CUHK03
        per_pair[pair] = per_pair.get(pair, 0) + 1
        if ident.pid in test_pids:
            extra = [1 + k % 2 for k in range(size.gallery_per_id)]  # gallery in both views
            views = [(1, "query"), (2, "query")] + [(v, "gallery") for v in extra]
        else:
            views = [(1 + k % 2, "train") for k in range(size.train_images_per_id)]
        taken = {1: 0, 2: 0}
        for view, split in sorted(views, key=lambda vs: vs[0]):
            taken[view] += 1
            plan.append(_CuhkImage(index=len(plan) + 1, pid=ident.pid, pair=pair, pair_pid=per_pair[pair], view=view,
                                   img=taken[view] + (5 if view == 2 else 0), split=split, identity=ident,
                                   viewpoint=draw_viewpoint(lrng)))
    return plan


def _cuhk_shot(item: _CuhkImage, box: str, path: str, seed: int) -> Shot:
    camera = 2 * (item.pair - 1) + item.view  # the 10 cameras of CUHK03's 5 pairs, drawn with 6 camera looks
    env = Environment(viewpoint=item.viewpoint, camera=(camera - 1) % 6 + 1)
    return Shot(path, item.identity, env, "synth_market",
                 (seed, _CODE["CUHK03NP"], 1 + _CUHK_BOXES.index(box), item.index))


def _cuhk_counts(plan: list[_CuhkImage]) -> dict[str, int]:
    def n(split: str) -> int:
        return sum(1 for item in plan if item.split == split)

    return {"train_ids": len({i.pid for i in plan if i.split == "train"}), "train_images": n("train"),
            "test_ids": len({i.pid for i in plan if i.split != "train"}), "query_images": n("query"),
            "gallery_images": n("gallery"), "box_types": len(_CUHK_BOXES)}


def _cuhk_release(size: LookalikeSize, seed: int) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    plan = _cuhk_plan(size, seed)
    sub = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    shots = [_cuhk_shot(item, box, f"{box}/{sub[item.split]}/{item.release_name()}", seed)
             for box in _CUHK_BOXES for item in plan]
    return shots, {}, _cuhk_counts(plan)


def _mat_bytes(fields: dict[str, np.ndarray]) -> bytes:
    """A MATLAB v5 file of ``fields`` with a fixed header text (scipy writes the creation time there)."""
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, fields, format="5", oned_as="column")
    data = buffer.getvalue()
    return _MAT_HEADER.ljust(116, b" ") + data[116:]


def _cuhk_mat(size: LookalikeSize, seed: int) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    plan = _cuhk_plan(size, seed)
    shots = [_cuhk_shot(item, box, f"images_{box}/{item.extracted_name()}", seed) for box in _CUHK_BOXES
             for item in plan]
    filelist = np.empty((len(plan), 1), dtype=object)
    for row, item in enumerate(plan):
        filelist[row, 0] = item.extracted_name()
    fields = {
        "filelist": filelist,
        "labels": np.array([[float(i.pid)] for i in plan]),
        "camId": np.array([[float(i.view)] for i in plan]),
        **{f"{split}_idx": np.array([[float(i.index)] for i in plan if i.split == split])
           for split in ("train", "query", "gallery")},
    }
    content = _mat_bytes(fields)
    files = {f"cuhk03_new_protocol_config_{box}.mat": content for box in _CUHK_BOXES}
    return shots, files, _cuhk_counts(plan)


# --------------------------------------------------------------------------- RandPerson

def _randperson(size: LookalikeSize, seed: int) -> tuple[list[Shot], dict[str, bytes], dict[str, int]]:
    code = _CODE["RandPerson"]
    lrng = seeded_rng(seed, code, 2)
    people = _people(seed, "RandPerson", range(size.train_ids))
    shots: list[Shot] = []
    pairs: set[tuple[int, int]] = set()
    for ident in people:
        scene = int(lrng.integers(0, len(_RANDPERSON_CAMERAS)))
        frames = sorted(int(f) for f in lrng.choice(np.arange(0, 400000, 12), size.train_images_per_id,
                                                    replace=False))
        for frame in frames:
            cam = int(lrng.integers(0, _RANDPERSON_CAMERAS[scene]))
            pairs.add((scene, cam))
            env = Environment(viewpoint=draw_viewpoint(lrng), weather=str(lrng.choice(WEATHERS)),
                              illumination=str(lrng.choice(ILLUMINATIONS)), scene=1 + scene % 9)
            name = f"{ident.pid:06d}_s{scene:02d}_c{cam:02d}_f{frame:06d}.jpg"
            shots.append(Shot(f"randperson_subset/{name}", ident, env, "finegpr", (seed, code, 1, len(shots))))
    counts = {"train_ids": size.train_ids, "train_images": len(shots), "cameras": len(pairs)}
    return shots, {}, counts


# --------------------------------------------------------------------------- writing

def _readme(tree: str, folder: str, seed: int, size: LookalikeSize, counts: dict[str, int]) -> bytes:
    about = [f"{folder}: a tiny synthetic look-alike made by fastreid-dmf "
             "(fastreid_dmf.tooling.synthetic.lookalike_trees,",
             "tools/make_lookalike_data.py). Every image is procedurally drawn; no real person is shown.",
             f"This is NOT the real dataset; it only copies its folder layout and file names ({tree}).",
             f"Read by: {_LOADERS[tree]}."]
    return readme_bytes(about, {"seed": seed, **counts, "size": dataclasses.asdict(size)},
                        f"Regenerate: python tools/make_lookalike_data.py --root <root> --seed {seed} --only {tree} "
                        "--overwrite")


def _write_finegpr(root: str, size: LookalikeSize, seed: int) -> dict[str, int]:
    """FineGPR through the benchmark's own FineGPR planner (its ``tiny`` preset's shared attributes)."""
    shots, identities = plan_finegpr(seed, size.finegpr_ids, size.finegpr_images_per_id,
                                     PRESETS["tiny"].shared_fraction)
    counts = {"identities": len(identities), "images": len(shots)}
    write_finegpr_tree(root, _FOLDERS["FineGPR"], shots, identities, _readme("FineGPR", "FineGPR", seed, size, counts))
    return counts


def generate_real_layout_trees(root: str, seed: int = 0, overwrite: bool = False, size: LookalikeSize | None = None,
                               trees: Sequence[str] | None = None,
                               msmt17_version: str = "V1") -> dict[str, dict[str, int]]:
    """Write small look-alike trees in the real datasets' layouts under ``root`` (table in the module docstring).

    Args:
        root: fast-reid dataset root (``FASTREID_DATASETS``); created if missing.
        seed: non-negative integer; the same seed, size and trees give
            byte-identical files.
        overwrite: replace tree folders made earlier by this generator or by
            :func:`~.benchmark.generate_benchmark` (README marker); any other
            non-empty folder is never touched.
        size: a :class:`LookalikeSize`; default sizes when ``None``.
        trees: keys of :data:`TREES` to write; all when ``None``.
        msmt17_version: ``"V1"`` (``MSMT17_V1/`` with ``train``/``test``) or
            ``"V2"`` (``MSMT17_V2/`` with ``mask_train_v2``/``mask_test_v2``).
            fast-reid reads ``MSMT17_V1`` first when both exist.

    Returns:
        ``{tree: {count name: value}}`` for each tree written.
        Market1501/DukeMTMC/MSMT17/CUHK03NP counts: ``train_ids``,
        ``train_images``, ``test_ids``, ``query_images``, ``gallery_images``
        (every gallery file, Market-1501's ``distractor_images`` and
        ``junk_images`` included; DukeMTMC's ``distractor_ids`` add one
        gallery image each); MSMT17 also ``val_images``; CUHK03 trees count
        one box type (``box_types`` = 2 are written); RandPerson
        ``train_ids``, ``train_images``, ``cameras``; FineGPR
        ``identities``, ``images``.

    Raises:
        ValueError: negative or non-integer seed, unknown tree or version, a
            size field out of range.
        FileExistsError: a tree folder exists, is not empty and either was
            not generated by fastreid-dmf or ``overwrite`` is False; checked
            for every selected tree before anything is written.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    size = size if size is not None else LookalikeSize()
    if not isinstance(size, LookalikeSize):
        raise ValueError(f"size must be a LookalikeSize, got {type(size).__name__}")
    size.check()
    selected = list(TREES) if trees is None else list(dict.fromkeys(trees))
    folders = {tree: tree_folder(tree, msmt17_version) for tree in selected}  # validates names
    for folder in folders.values():
        check_destination(os.path.join(root, folder), overwrite, tool="tools/make_lookalike_data.py",
                          what="look-alike", alternative="leave this tree out (--only)")
    os.makedirs(root, exist_ok=True)

    counts: dict[str, dict[str, int]] = {}
    cache: dict[tuple, bytes] = {}
    builders = {"Market1501": lambda: _market(size, seed), "DukeMTMC": lambda: _duke(size, seed),
                "MSMT17": lambda: _msmt(size, seed, msmt17_version), "CUHK03NP": lambda: _cuhk_release(size, seed),
                "CUHK03NP-mat": lambda: _cuhk_mat(size, seed), "RandPerson": lambda: _randperson(size, seed)}
    for tree in TREES:
        if tree not in folders:
            continue
        if tree == "FineGPR":
            counts[tree] = _write_finegpr(root, size, seed)
            continue
        shots, files, counts[tree] = builders[tree]()
        empty = {"Market1501": tuple(MARKET_FOLDERS.values()), "DukeMTMC": tuple(MARKET_FOLDERS.values()),
                 "MSMT17": _MSMT_DIRS[msmt17_version]}.get(tree, ())
        files = {**files, "README.txt": _readme(tree, folders[tree], seed, size, counts[tree])}
        write_tree(root, folders[tree], shots, files, cache=cache, empty_dirs=empty)
    return counts
