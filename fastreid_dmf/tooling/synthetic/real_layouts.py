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
                   and ``FineGPR/attributes.csv`` (the writer of
                   :func:`~.layouts.generate_benchmark`)
=================  ============================================  ==============================

Both CUHK03 trees hold the same identities, split and pixels (the release's
running number ``n`` in ``<pid4>_c<view>_<n>.png`` is the image's 1-based
index in the ``.mat`` file's ``filelist``), so both routes load the same
dataset. Each tree gets a ``README.txt`` whose first line is
:data:`~.layouts.README_MARKER`; only such folders are ever replaced.

Every test identity has query images in distinct cameras and gallery images in
at least two cameras, so every query has a gallery match in another camera
(fast-reid's evaluation needs that). Images come from
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

from ...data.finegpr_format import ILLUMINATIONS, WEATHERS, write_attribute_file
from . import layouts
from .layouts import _MSMT_DATES, _MSMT_PERIODS, JPEG_QUALITY, README_MARKER, _rng, _train_cameras, _viewpoint
from .render import Environment, Identity, sample_identity

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


# --------------------------------------------------------------------------- images

#: One image to write: where (relative to its tree folder), who, how, and its seed key.
_Shot = layouts._Job


def _encode(shot: _Shot, cache: dict[tuple, bytes]) -> bytes:
    """Render ``shot`` (once per key and format) and return the encoded file bytes."""
    fmt = "PNG" if shot.path.lower().endswith(".png") else "JPEG"
    cache_key = (shot.key, fmt)
    if cache_key not in cache:
        img = layouts._render_image(shot)
        buffer = io.BytesIO()
        img.save(buffer, fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
        cache[cache_key] = buffer.getvalue()
    return cache[cache_key]


def _people(seed: int, tree: str, pids: Sequence[int], stream: int = 0) -> list[Identity]:
    return [sample_identity(_rng(seed, _CODE[tree], 0, stream, i), int(pid)) for i, pid in enumerate(pids)]


def _test_cameras(rng: np.random.Generator, n_query: int, n_gallery: int, n_cams: int) -> tuple[list[int], list[int]]:
    """Distinct query cameras; gallery cameras span two or more cameras (each query has a cross-camera match)."""
    pool = [int(c) for c in rng.permutation(np.arange(1, n_cams + 1))]
    query = pool[: min(n_query, n_cams)]
    span = pool[: min(n_cams, max(2, len(query) + int(rng.integers(0, 2))))]
    gallery = [span[0], span[-1]] + [int(rng.choice(span)) for _ in range(n_gallery - 2)]
    return query, gallery


# --------------------------------------------------------------------------- Market-1501 / DukeMTMC-reID

def _market(size: LookalikeSize, seed: int) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
    code = _CODE["Market1501"]
    lrng = _rng(seed, code, 2)
    pids = [int(p) for p in lrng.choice(np.arange(1, 1502), size.train_ids + size.test_ids, replace=False)]
    train_pids, test_pids = sorted(pids[: size.train_ids]), sorted(pids[size.train_ids:])
    people = _people(seed, "Market1501", train_pids + test_pids)
    train_people, test_people = people[: size.train_ids], people[size.train_ids:]
    shots: list[_Shot] = []
    used: set[str] = set()

    def add(sub: str, pid: int, cam: int, ident: Identity | None, kind: str = "person") -> None:
        while True:
            seq, frame, box = int(lrng.integers(1, 7)), int(lrng.integers(1, 200000)), int(lrng.integers(1, 4))
            box = 0 if sub == "query" else box  # Market-1501 query boxes were drawn by hand: "_00"
            name = f"{pid:04d}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg" if pid >= 0 else \
                f"{pid}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"
            if name not in used:
                break
        used.add(name)
        env = Environment(viewpoint=_viewpoint(lrng), camera=cam)
        shots.append(_Shot(f"{sub}/{name}", ident, env, "synth_market", (seed, code, 1, len(shots)), kind))

    for ident in train_people:
        for cam in _train_cameras(lrng, size.train_images_per_id, 6):
            add("bounding_box_train", ident.pid, cam, ident)
    for ident in test_people:
        query, gallery = _test_cameras(lrng, size.query_per_id, size.gallery_per_id, 6)
        for cam in query:
            add("query", ident.pid, cam, ident)
        for cam in gallery:
            add("bounding_box_test", ident.pid, cam, ident)
    strangers = _people(seed, "Market1501", range(size.distractors), stream=1)
    for i, stranger in enumerate(strangers):  # 0000: background or a stranger cut by a bad box
        add("bounding_box_test", 0, int(lrng.integers(1, 7)), stranger, "background" if i % 2 == 0 else "partial")
    for _ in range(size.junk):  # -1: a piece of a test identity
        add("bounding_box_test", -1, int(lrng.integers(1, 7)), test_people[int(lrng.integers(0, len(test_people)))],
            "partial")
    counts = {"train_ids": size.train_ids, "train_images": size.train_ids * size.train_images_per_id,
              "test_ids": size.test_ids, "query_images": size.test_ids * size.query_per_id,
              "gallery_images": size.test_ids * size.gallery_per_id + size.distractors + size.junk,
              "distractor_images": size.distractors, "junk_images": size.junk}
    return shots, {}, counts


def _duke(size: LookalikeSize, seed: int) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
    code = _CODE["DukeMTMC"]
    lrng = _rng(seed, code, 2)
    n_all = size.train_ids + size.test_ids + size.distractors
    pids = [int(p) for p in lrng.choice(np.arange(1, 7141), n_all, replace=False)]
    train_pids = sorted(pids[: size.train_ids])
    test_pids = sorted(pids[size.train_ids: size.train_ids + size.test_ids])
    extra_pids = sorted(pids[size.train_ids + size.test_ids:])
    people = _people(seed, "DukeMTMC", train_pids + test_pids + extra_pids)
    shots: list[_Shot] = []
    used: set[str] = set()

    def add(sub: str, ident: Identity, cam: int) -> None:
        while True:
            name = f"{ident.pid:04d}_c{cam}_f{int(lrng.integers(1, 230000)):07d}.jpg"
            if name not in used:
                break
        used.add(name)
        env = Environment(viewpoint=_viewpoint(lrng), camera=(cam - 1) % 6 + 1)  # the renderer draws 6 camera looks
        shots.append(_Shot(f"{sub}/{name}", ident, env, "synth_market", (seed, code, 1, len(shots))))

    for ident in people[: size.train_ids]:
        for cam in _train_cameras(lrng, size.train_images_per_id, 8):
            add("bounding_box_train", ident, cam)
    for ident in people[size.train_ids: size.train_ids + size.test_ids]:
        query, gallery = _test_cameras(lrng, size.query_per_id, size.gallery_per_id, 8)
        for cam in query:
            add("query", ident, cam)
        for cam in gallery:
            add("bounding_box_test", ident, cam)
    for ident in people[size.train_ids + size.test_ids:]:  # DukeMTMC-reID's gallery-only distractor identities
        add("bounding_box_test", ident, int(lrng.integers(1, 9)))
    counts = {"train_ids": size.train_ids, "train_images": size.train_ids * size.train_images_per_id,
              "test_ids": size.test_ids, "query_images": size.test_ids * size.query_per_id,
              "gallery_images": size.test_ids * size.gallery_per_id + size.distractors,
              "distractor_ids": size.distractors}
    return shots, {}, counts


# --------------------------------------------------------------------------- MSMT17

def _msmt(size: LookalikeSize, seed: int, version: str) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
    code = _CODE["MSMT17"]
    lrng = _rng(seed, code, 2)
    train_dir, test_dir = _MSMT_DIRS[version]
    people = _people(seed, "MSMT17", list(range(size.train_ids)) + list(range(size.test_ids)))
    shots: list[_Shot] = []
    lists: dict[str, list[str]] = {"train": [], "val": [], "query": [], "gallery": []}

    def add(split_dir: str, ident: Identity, idx: int, cam: int) -> str:
        period = str(lrng.choice(tuple(_MSMT_PERIODS)))
        date = str(lrng.choice(_MSMT_DATES))
        rel = f"{ident.pid:04d}/{ident.pid:04d}_{idx:03d}_{cam:02d}_{date}{period}_" \
              f"{int(lrng.integers(0, 10000)):04d}_{int(lrng.integers(0, 3))}.jpg"
        env = Environment(viewpoint=_viewpoint(lrng), illumination=_MSMT_PERIODS[period], camera=cam)
        shots.append(_Shot(f"{split_dir}/{rel}", ident, env, "synth_msmt", (seed, code, 1, len(shots))))
        return f"{rel} {ident.pid}"

    val_pids = {int(p) for p in lrng.choice(size.train_ids, size.val_ids, replace=False)}
    for ident in people[: size.train_ids]:
        extra = 1 if ident.pid in val_pids else 0
        lines = [add(train_dir, ident, i, cam)
                 for i, cam in enumerate(_train_cameras(lrng, size.train_images_per_id + extra, 15))]
        if extra:
            lists["val"].append(lines.pop(int(lrng.integers(0, len(lines)))))
        lists["train"].extend(lines)
    for ident in people[size.train_ids:]:
        query, gallery = _test_cameras(lrng, size.query_per_id, size.gallery_per_id, 15)
        for i, cam in enumerate(query + gallery):
            lists["query" if i < len(query) else "gallery"].append(add(test_dir, ident, i, cam))
    files = {f"list_{split}.txt": "".join(line + "\n" for line in lines).encode() for split, lines in lists.items()}
    counts = {"train_ids": size.train_ids, "train_images": len(lists["train"]), "val_images": len(lists["val"]),
              "test_ids": size.test_ids, "query_images": len(lists["query"]),
              "gallery_images": len(lists["gallery"])}
    return shots, files, counts


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
    lrng = _rng(seed, code, 2)
    pids = sorted(int(p) for p in lrng.choice(np.arange(1, 1468), size.train_ids + size.test_ids, replace=False))
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
                                   viewpoint=_viewpoint(lrng)))
    return plan


def _cuhk_shot(item: _CuhkImage, box: str, path: str, seed: int) -> _Shot:
    camera = 2 * (item.pair - 1) + item.view  # the 10 cameras of CUHK03's 5 pairs, drawn with 6 camera looks
    env = Environment(viewpoint=item.viewpoint, camera=(camera - 1) % 6 + 1)
    return _Shot(path, item.identity, env, "synth_market",
                 (seed, _CODE["CUHK03NP"], 1 + _CUHK_BOXES.index(box), item.index))


def _cuhk_counts(plan: list[_CuhkImage]) -> dict[str, int]:
    def n(split: str) -> int:
        return sum(1 for item in plan if item.split == split)

    return {"train_ids": len({i.pid for i in plan if i.split == "train"}), "train_images": n("train"),
            "test_ids": len({i.pid for i in plan if i.split != "train"}), "query_images": n("query"),
            "gallery_images": n("gallery"), "box_types": len(_CUHK_BOXES)}


def _cuhk_release(size: LookalikeSize, seed: int) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
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


def _cuhk_mat(size: LookalikeSize, seed: int) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
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

def _randperson(size: LookalikeSize, seed: int) -> tuple[list[_Shot], dict[str, bytes], dict[str, int]]:
    code = _CODE["RandPerson"]
    lrng = _rng(seed, code, 2)
    people = _people(seed, "RandPerson", range(size.train_ids))
    shots: list[_Shot] = []
    pairs: set[tuple[int, int]] = set()
    for ident in people:
        scene = int(lrng.integers(0, len(_RANDPERSON_CAMERAS)))
        frames = sorted(int(f) for f in lrng.choice(np.arange(0, 400000, 12), size.train_images_per_id,
                                                    replace=False))
        for frame in frames:
            cam = int(lrng.integers(0, _RANDPERSON_CAMERAS[scene]))
            pairs.add((scene, cam))
            env = Environment(viewpoint=_viewpoint(lrng), weather=str(lrng.choice(WEATHERS)),
                              illumination=str(lrng.choice(ILLUMINATIONS)), scene=1 + scene % 9)
            name = f"{ident.pid:06d}_s{scene:02d}_c{cam:02d}_f{frame:06d}.jpg"
            shots.append(_Shot(f"randperson_subset/{name}", ident, env, "finegpr", (seed, code, 1, len(shots))))
    counts = {"train_ids": size.train_ids, "train_images": len(shots), "cameras": len(pairs)}
    return shots, {}, counts


# --------------------------------------------------------------------------- writing

def _readme(tree: str, folder: str, seed: int, size: LookalikeSize, counts: dict[str, int]) -> bytes:
    lines = [
        README_MARKER,
        "",
        f"{folder}: a tiny synthetic look-alike made by fastreid-dmf (fastreid_dmf.tooling.synthetic.real_layouts,",
        "tools/make_lookalike_data.py). Every image is procedurally drawn; no real person is shown.",
        f"This is NOT the real dataset; it only copies its folder layout and file names ({tree}).",
        f"Read by: {_LOADERS[tree]}.",
        "",
        f"seed: {seed}",
        *(f"{k}: {v}" for k, v in counts.items()),
        f"size: {dataclasses.asdict(size)}",
        "",
        f"Regenerate: python tools/make_lookalike_data.py --root <root> --seed {seed} --only {tree} --overwrite",
    ]
    return ("\n".join(lines) + "\n").encode()


def _check_destination(folder: str, overwrite: bool) -> None:
    """Raise FileExistsError unless ``folder`` may be (re)written (same policy as ``generate_benchmark``)."""
    if not os.path.exists(folder):
        return
    if not os.path.isdir(folder):
        raise FileExistsError(f"{folder!r} exists and is not a folder; move it away to generate the look-alike there")
    if not os.listdir(folder):
        return
    if not layouts._is_generated(folder):
        raise FileExistsError(f"dataset folder {folder!r} was not generated by fastreid-dmf (its README.txt does not "
                              f"start with {README_MARKER!r}); refusing to replace it, even with overwrite=True - "
                              "move it away by hand or leave this tree out (--only)")
    if not overwrite:
        raise FileExistsError(f"dataset folder {folder!r} already exists (generated by fastreid-dmf); pass "
                              "overwrite=True (tools/make_lookalike_data.py --overwrite) to replace it, or leave "
                              "this tree out (--only)")


def _write_tree(root: str, folder: str, shots: list[_Shot], files: dict[str, bytes], readme: bytes,
                cache: dict[tuple, bytes], empty_dirs: Sequence[str] = ()) -> None:
    """Write a tree into ``.<folder>.partial`` and move it into place (:func:`layouts._replace_folder`)."""
    def fill(tmp: str) -> None:
        outputs = [(shot.path, _encode(shot, cache)) for shot in shots]
        outputs += list(files.items()) + [("README.txt", readme)]
        for rel, content in outputs:
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(content)
        for rel in empty_dirs:
            os.makedirs(os.path.join(tmp, rel), exist_ok=True)

    layouts._replace_folder(root, folder, fill)


def _write_finegpr(root: str, size: LookalikeSize, seed: int) -> dict[str, int]:
    """FineGPR through :mod:`.layouts`' own FineGPR job list, renderer call and attribute writer."""
    preset = dataclasses.replace(layouts.PRESETS["tiny"], source_ids=size.finegpr_ids,
                                 source_images_per_id=size.finegpr_images_per_id)
    jobs, identities = layouts._finegpr_jobs(preset, seed)
    counts = {"identities": len(identities), "images": len(jobs)}

    def fill(tmp: str) -> None:
        for job in jobs:
            layouts._render_job(job, tmp)
        write_attribute_file(os.path.join(tmp, "attributes.csv"), {i.pid: dict(i.attributes) for i in identities})
        with open(os.path.join(tmp, "README.txt"), "wb") as handle:
            handle.write(_readme("FineGPR", "FineGPR", seed, size, counts))

    layouts._replace_folder(root, "FineGPR", fill)
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
            :func:`~.layouts.generate_benchmark` (README marker); any other
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
        _check_destination(os.path.join(root, folder), overwrite)
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
        empty = {"Market1501": ("bounding_box_train", "query", "bounding_box_test"),
                 "DukeMTMC": ("bounding_box_train", "query", "bounding_box_test"),
                 "MSMT17": _MSMT_DIRS[msmt17_version]}.get(tree, ())
        _write_tree(root, folders[tree], shots, files, _readme(tree, folders[tree], seed, size, counts[tree]),
                    cache, empty)
    return counts
