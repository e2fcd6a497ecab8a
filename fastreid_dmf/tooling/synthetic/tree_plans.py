"""Planning of the synthetic Re-ID trees, shared by the bundled benchmark and the look-alike trees.

A plan is a list of :class:`Shot` s (which image goes to which relative path)
plus the counts and list files of the tree; nothing is drawn or written here
(:mod:`.tree_writing` does that). Both :mod:`.benchmark` and
:mod:`.lookalike_trees` plan with these pieces:

* seeded generators (:func:`seeded_rng`), identity labels
  (:func:`draw_pid_groups`), populations of identities
  (:func:`sample_population`), viewpoints (:func:`draw_viewpoint`);
* camera assignment: :func:`train_cameras` (2..4 cameras per training
  identity) and :func:`test_cameras` (distinct query cameras, a gallery in at
  least two cameras so that every query has a cross-camera match), walked per
  identity by :func:`plan_cameras`;
* the Market-1501 / DukeMTMC-reID layout (:class:`MarketStylePlan`,
  :func:`market_file_name`), the MSMT17 layout (:func:`plan_msmt17`,
  :func:`msmt17_file_name`, :func:`msmt17_list_files`) and the FineGPR
  layout (:func:`plan_finegpr`).

Every random choice comes from ``numpy.random.Generator`` s seeded with
``(seed, tree code, stream, ...)``: code ``c`` uses ``(seed, c, 0, stream,
i)`` for identity ``i``'s appearance, ``(seed, c, 3, stream)`` for which
identities copy another's attributes, ``(seed, c, 2)`` for the layout
(identity labels, cameras, file names, viewpoints) and ``(seed, c, 1, k)``
for the pixels of the ``k``-th image. The draws happen in a fixed order, so
the same seed and sizes give the same plan.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ...data.finegpr_format import (
    ILLUMINATIONS,
    NUM_SCENES,
    NUM_VIEWPOINTS,
    WEATHERS,
    FineGPRCodes,
    format_finegpr_filename,
)
from .identities import Identity, sample_attributes, sample_identity
from .styles import STYLE_CAMERAS, Environment

__all__ = [
    "Shot",
    "SplitSizes",
    "MarketStylePlan",
    "MARKET_FOLDERS",
    "MSMT17_DATES",
    "MSMT17_PERIODS",
    "FINEGPR_CODE",
    "seeded_rng",
    "draw_pid_groups",
    "draw_viewpoint",
    "sample_population",
    "train_cameras",
    "test_cameras",
    "plan_cameras",
    "market_file_name",
    "msmt17_file_name",
    "plan_msmt17",
    "msmt17_list_files",
    "plan_finegpr",
]

#: Sub-folder of each split in the Market-1501 / DukeMTMC-reID layout.
MARKET_FOLDERS: dict[str, str] = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
#: Capture dates used in MSMT17 file names (``<date><period>``, e.g. ``0303morning``).
MSMT17_DATES: tuple[str, ...] = ("0113", "0114", "0302", "0303")
#: MSMT17 period word -> :class:`~.styles.Environment` illumination it is drawn with.
MSMT17_PERIODS: dict[str, str] = {"morning": "forenoon", "noon": "noon", "afternoon": "afternoon"}
#: Tree code of the FineGPR tree in the seed keys (the benchmark's source domain and the look-alike FineGPR).
FINEGPR_CODE = 1


@dataclass(frozen=True)
class Shot:
    """One image to write: where, who, how, and the seed key of its pixels.

    Attributes:
        path: file path relative to the tree folder; ``.png`` is written as
            PNG, anything else as JPEG.
        identity: the person drawn (``None`` for a background-only image).
        env: capture conditions.
        style: renderer style (:data:`~.styles.STYLES`).
        key: seed key of the image's generator; the same key gives the same pixels.
        kind: ``"person"``, ``"background"`` (no person) or ``"partial"``
            (a piece of ``identity``, as a bad detection).
    """

    path: str
    identity: Identity | None
    env: Environment
    style: str
    key: tuple[int, ...]
    kind: str = "person"


@dataclass(frozen=True)
class SplitSizes:
    """Per-identity image counts of a train / query / gallery split.

    Attributes:
        train_images_per_id: images per training identity.
        query_per_id: query images per test identity, one per camera: an
            int, or an inclusive ``(low, high)`` range drawn per identity
            (one generator draw even when ``low == high``).
        gallery_per_id: gallery images per test identity (at least 2 are written).
        extra_gallery_cameras: inclusive ``(low, high)`` range of cameras,
            beyond the query cameras, that the gallery may use (see
            :func:`test_cameras`).
    """

    train_images_per_id: int
    query_per_id: int | tuple[int, int]
    gallery_per_id: int
    extra_gallery_cameras: tuple[int, int] = (0, 1)


def seeded_rng(*key: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded with the integer sequence ``key`` (same key, same draws)."""
    return np.random.default_rng(list(key))


def draw_pid_groups(rng: np.random.Generator, max_pid: int, group_sizes: Sequence[int]) -> list[list[int]]:
    """Distinct identity labels from 1..max_pid, in groups of ``group_sizes`` (each sorted).

    One draw of ``sum(group_sizes)`` labels without replacement, cut into
    consecutive groups (e.g. train, test). ValueError if more labels are
    asked for than exist.
    """
    pids = [int(p) for p in rng.choice(np.arange(1, max_pid + 1), sum(group_sizes), replace=False)]
    groups, start = [], 0
    for n in group_sizes:
        groups.append(sorted(pids[start:start + n]))
        start += n
    return groups


def draw_viewpoint(rng: np.random.Generator) -> int:
    """A body orientation in degrees: a multiple of 10 in 0..350."""
    return 10 * int(rng.integers(0, 36))


def sample_population(seed: int, code: int, pids: Iterable[int], stream: int = 0,
                      shared_fraction: float | None = None) -> list[Identity]:
    """Identities labelled ``pids`` for the tree with seed-key code ``code``.

    Identity ``i`` is drawn from ``seeded_rng(seed, code, 0, stream, i)``;
    ``stream`` separates independent populations of one tree (e.g. 1 for
    Market-1501's distractor strangers).

    Args:
        seed: the tree's seed.
        code: the tree's code in the seed keys.
        pids: identity labels, in order.
        stream: population index within the tree.
        shared_fraction: ``None``: every identity draws its own attributes.
            A number: ``round(n * shared_fraction)`` identities (at least
            one, at most ``n - 1``; none when ``n < 2``) copy all 13
            attributes of an earlier identity and differ only in hidden traits.

    Returns:
        one :class:`~.identities.Identity` per pid, in order.
    """
    pids = [int(pid) for pid in pids]
    n = len(pids)
    copies: dict[int, int] = {}
    if shared_fraction is not None and n >= 2:
        crng = seeded_rng(seed, code, 3, stream)
        n_copies = min(n - 1, max(1, int(round(n * shared_fraction))))
        copy_idx = sorted(int(i) for i in crng.choice(np.arange(1, n), n_copies, replace=False))
        for i in copy_idx:
            originals = [j for j in range(i) if j not in copies]
            copies[i] = originals[int(crng.integers(0, len(originals)))]
    out: list[Identity] = []
    for i, pid in enumerate(pids):
        irng = seeded_rng(seed, code, 0, stream, i)
        attrs = sample_attributes(irng)
        if i in copies:
            attrs = dict(out[copies[i]].attributes)
        out.append(sample_identity(irng, pid, attrs))
    return out


# --------------------------------------------------------------------------- cameras and splits

def train_cameras(rng: np.random.Generator, n_images: int, n_cams: int) -> list[int]:
    """Cameras (1-based) of one training identity's ``n_images`` images.

    Uses 2..4 distinct cameras (fewer if ``n_cams`` or ``n_images`` is
    smaller), each at least once; returns ``n_images`` camera numbers.
    """
    k = min(n_cams, n_images, int(rng.integers(2, 5)))
    cams = [int(c) for c in rng.choice(np.arange(1, n_cams + 1), k, replace=False)]
    return cams + [int(rng.choice(cams)) for _ in range(n_images - k)]


def test_cameras(rng: np.random.Generator, n_query: int, n_gallery: int, n_cams: int,
                 extra_cameras: tuple[int, int] = (0, 1)) -> tuple[list[int], list[int]]:
    """Cameras (1-based) of one test identity's query and gallery images.

    The query cameras are distinct (at most ``n_cams`` of them). The gallery
    draws from the query cameras plus ``low..high`` more (``extra_cameras``,
    inclusive), at least two and at most ``n_cams`` cameras, and always uses
    two different ones, so every query has a gallery match in another camera.

    Returns:
        ``(query cameras, gallery cameras)``; ``max(n_gallery, 2)`` gallery cameras.
    """
    pool = [int(c) for c in rng.permutation(np.arange(1, n_cams + 1))]
    query = pool[: min(n_query, n_cams)]
    low, high = extra_cameras
    span = pool[: min(n_cams, max(2, len(query) + int(rng.integers(low, high + 1))))]
    gallery = [span[0], span[-1]] + [int(rng.choice(span)) for _ in range(n_gallery - 2)]
    return query, gallery


def plan_cameras(rng: np.random.Generator, train: Sequence[Identity], test: Sequence[Identity], sizes: SplitSizes,
                 n_cams: int, extra_train_image_pids: Collection[int] = ()
                 ) -> Iterator[tuple[Identity, list[tuple[str, int]]]]:
    """Walk the identities of a split, yielding each one's ``(split, camera)`` list.

    The cameras of an identity are drawn from ``rng`` only when the caller
    asks for it (a generator), so the caller's own draws for the previous
    identity (file names, viewpoints) come first.

    Args:
        rng: the tree's layout generator.
        train, test: training and test identities.
        sizes: per-identity counts; a ``(low, high)`` ``query_per_id`` is drawn
            before the identity's cameras.
        n_cams: cameras of the tree (numbered 1..n_cams).
        extra_train_image_pids: training pids that get one image more than
            ``sizes.train_images_per_id``.

    Yields:
        ``(identity, [(split, camera), ...])`` with split ``"train"`` for
        every training identity, then ``"query"`` entries followed by
        ``"gallery"`` entries for every test identity.
    """
    for ident in train:
        n_images = sizes.train_images_per_id + (1 if ident.pid in extra_train_image_pids else 0)
        yield ident, [("train", cam) for cam in train_cameras(rng, n_images, n_cams)]
    for ident in test:
        if isinstance(sizes.query_per_id, tuple):
            n_query = int(rng.integers(sizes.query_per_id[0], sizes.query_per_id[1] + 1))
        else:
            n_query = sizes.query_per_id
        query, gallery = test_cameras(rng, n_query, sizes.gallery_per_id, n_cams, sizes.extra_gallery_cameras)
        yield ident, [("query", cam) for cam in query] + [("gallery", cam) for cam in gallery]


# --------------------------------------------------------------------------- Market-1501 / DukeMTMC-reID

def market_file_name(pid: int, camera: int, sequence: int, frame: int, box: int) -> str:
    """Market-1501 file name ``<pid4>_c<camera>s<sequence>_<frame6>_<box2>.jpg``.

    ``pid`` 0 is written ``0000`` (distractor), a negative pid as is (junk,
    e.g. ``-1_c3s1_000123_01.jpg``).
    """
    head = f"{pid:04d}" if pid >= 0 else f"{pid}"
    return f"{head}_c{camera}s{sequence}_{frame:06d}_{box:02d}.jpg"


class MarketStylePlan:
    """Shots of one tree in the Market-1501 / DukeMTMC-reID layout, planned with one seeded generator.

    Images go to the :data:`MARKET_FOLDERS` (``bounding_box_train/``,
    ``query/``, ``bounding_box_test/``) and are drawn in the
    ``"synth_market"`` style (tree cameras beyond its 6 reuse its camera
    looks cyclically). The layout generator is ``seeded_rng(seed, code, 2)``
    (:attr:`rng`, also for the caller's own draws); image ``k`` gets the
    pixel key ``(seed, code, 1, k)``.

    Args:
        seed: the tree's seed.
        code: the tree's code in the seed keys.
        n_cams: cameras of the tree (1..n_cams).
        draw_name: ``draw_name(rng, split, pid, camera)`` -> a file name; it
            is called again until the name is new in the tree.
    """

    def __init__(self, seed: int, code: int, n_cams: int,
                 draw_name: Callable[[np.random.Generator, str, int, int], str]) -> None:
        self.seed, self.code, self.n_cams = seed, code, n_cams
        self.rng = seeded_rng(seed, code, 2)
        self.shots: list[Shot] = []
        self._draw_name = draw_name
        self._names: set[str] = set()
        self._ids = {"train": 0, "test": 0}
        self._images = {split: 0 for split in MARKET_FOLDERS}

    def random_camera(self) -> int:
        """A camera drawn uniformly from 1..n_cams."""
        return int(self.rng.integers(1, self.n_cams + 1))

    def add(self, split: str, pid: int, camera: int, identity: Identity | None, kind: str = "person") -> None:
        """Plan one image of ``identity`` labelled ``pid`` from ``camera`` in ``split``.

        Raises:
            KeyError: ``split`` is not a key of :data:`MARKET_FOLDERS`.
        """
        while True:
            name = self._draw_name(self.rng, split, pid, camera)
            if name not in self._names:
                break
        self._names.add(name)
        looks = STYLE_CAMERAS["synth_market"]
        env = Environment(viewpoint=draw_viewpoint(self.rng), camera=(camera - 1) % looks + 1)
        self.shots.append(Shot(os.path.join(MARKET_FOLDERS[split], name), identity, env, "synth_market",
                               (self.seed, self.code, 1, len(self.shots)), kind))
        self._images[split] += 1

    def add_identities(self, train: Sequence[Identity], test: Sequence[Identity], sizes: SplitSizes) -> None:
        """Plan the training images, then the query and gallery images, of every identity (:func:`plan_cameras`)."""
        for ident, visits in plan_cameras(self.rng, train, test, sizes, self.n_cams):
            for split, camera in visits:
                self.add(split, ident.pid, camera, ident)
        self._ids["train"] += len(train)
        self._ids["test"] += len(test)

    def add_distractors(self, strangers: Sequence[Identity]) -> None:
        """Plan Market-1501's pid ``0000`` gallery images, one per stranger, each from a random camera.

        Even-numbered ones show background only, odd-numbered ones a piece of
        the stranger cut by a bad box.
        """
        for i, stranger in enumerate(strangers):
            self.add("gallery", 0, self.random_camera(), stranger, "background" if i % 2 == 0 else "partial")

    def counts(self) -> dict[str, int]:
        """``train_ids``, ``train_images``, ``test_ids``, ``query_images`` and
        ``gallery_images`` (every gallery file, distractors included) planned so far."""
        return {"train_ids": self._ids["train"], "train_images": self._images["train"], "test_ids": self._ids["test"],
                "query_images": self._images["query"], "gallery_images": self._images["gallery"]}


# --------------------------------------------------------------------------- MSMT17

def msmt17_file_name(pid: int, index: int, camera: int, date: str, period: str, frame: int, k: int) -> str:
    """MSMT17 file name ``<pid4>_<index3>_<camera2>_<date><period>_<frame4>_<k>.jpg``.

    E.g. ``0000_000_01_0303morning_0015_0.jpg``; ``index`` counts the
    identity's images, ``camera`` is 1..15.
    """
    return f"{pid:04d}_{index:03d}_{camera:02d}_{date}{period}_{frame:04d}_{k}.jpg"


def plan_msmt17(seed: int, code: int, train: Sequence[Identity], test: Sequence[Identity], sizes: SplitSizes, *,
                val_ids: int, extra_val_image: bool, train_dir: str, test_dir: str
                ) -> tuple[list[Shot], dict[str, list[str]], dict[str, int]]:
    """Plan a tree in the MSMT17 layout (15 cameras, ``"synth_msmt"`` style).

    Images go to ``<train_dir>/<pid4>/`` and ``<test_dir>/<pid4>/``; the
    list lines are ``<pid4>/<file name> <pid>`` relative to those folders.
    ``min(val_ids, len(train))`` training identities give one image to the
    ``val`` list (disjoint from ``train``): an extra image when
    ``extra_val_image``, else one of their own images if they have at least
    three. Generators as :class:`MarketStylePlan`.

    Args:
        seed, code: the tree's seed and code in the seed keys.
        train, test: training and test identities (labels start at 0 in each).
        sizes: per-identity counts.
        val_ids: training identities with an image in the ``val`` list.
        extra_val_image: give those identities one extra image for ``val``.
        train_dir, test_dir: image folders relative to the tree folder.

    Returns:
        ``(shots, lists, counts)``: ``lists`` maps ``train``, ``val``,
        ``query``, ``gallery`` to list lines; ``counts`` holds ``train_ids``,
        ``train_images`` (in the train list), ``val_images``, ``test_ids``,
        ``query_images``, ``gallery_images``.
    """
    rng = seeded_rng(seed, code, 2)
    shots: list[Shot] = []
    lists: dict[str, list[str]] = {"train": [], "val": [], "query": [], "gallery": []}

    def add(split_dir: str, ident: Identity, index: int, camera: int) -> str:
        period = str(rng.choice(tuple(MSMT17_PERIODS)))
        date = str(rng.choice(MSMT17_DATES))
        frame = int(rng.integers(0, 10000))
        k = int(rng.integers(0, 3))
        rel = f"{ident.pid:04d}/{msmt17_file_name(ident.pid, index, camera, date, period, frame, k)}"
        env = Environment(viewpoint=draw_viewpoint(rng), illumination=MSMT17_PERIODS[period], camera=camera)
        shots.append(Shot(os.path.join(split_dir, rel), ident, env, "synth_msmt", (seed, code, 1, len(shots))))
        return f"{rel} {ident.pid}"

    val_pids = {int(p) for p in rng.choice(len(train), min(val_ids, len(train)), replace=False)}
    extra = val_pids if extra_val_image else ()
    for n, (ident, visits) in enumerate(plan_cameras(rng, train, test, sizes, STYLE_CAMERAS["synth_msmt"], extra)):
        is_train = n < len(train)
        lines = [(split, add(train_dir if is_train else test_dir, ident, i, camera))
                 for i, (split, camera) in enumerate(visits)]
        if is_train and ident.pid in val_pids and len(lines) >= 3:
            lists["val"].append(lines.pop(int(rng.integers(0, len(lines))))[1])
        for split, line in lines:
            lists[split].append(line)
    counts = {"train_ids": len(train), "train_images": len(lists["train"]), "val_images": len(lists["val"]),
              "test_ids": len(test), "query_images": len(lists["query"]), "gallery_images": len(lists["gallery"])}
    return shots, lists, counts


def msmt17_list_files(lists: dict[str, list[str]]) -> dict[str, bytes]:
    """``{"list_<split>.txt": content}`` for the lists of :func:`plan_msmt17` (one line each, ``\\n`` ended)."""
    return {f"list_{split}.txt": "".join(line + "\n" for line in lines).encode() for split, lines in lists.items()}


# --------------------------------------------------------------------------- FineGPR

def plan_finegpr(seed: int, n_ids: int, images_per_id: int,
                 shared_fraction: float | None) -> tuple[list[Shot], list[Identity]]:
    """Plan a tree in the FineGPR layout: ``<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg``.

    Identities are labelled 1..n_ids; each gets ``images_per_id`` distinct
    file names with viewpoint, weather, illumination and scene codes drawn
    uniformly (see :mod:`fastreid_dmf.data.finegpr_format`), drawn in the
    ``"finegpr"`` style. Seed keys use :data:`FINEGPR_CODE`.

    Args:
        seed: the tree's seed.
        n_ids: number of identities.
        images_per_id: images per identity (at most the number of distinct
            code combinations).
        shared_fraction: as :func:`sample_population`.

    Returns:
        ``(shots, identities)``.
    """
    code = FINEGPR_CODE
    identities = sample_population(seed, code, range(1, n_ids + 1), shared_fraction=shared_fraction)
    rng = seeded_rng(seed, code, 2)
    shots: list[Shot] = []
    for ident in identities:
        names: set[str] = set()
        while len(names) < images_per_id:
            codes = FineGPRCodes(pid=ident.pid, camera=int(rng.integers(1, NUM_VIEWPOINTS + 1)),
                                 weather=int(rng.integers(1, len(WEATHERS) + 1)),
                                 illumination=int(rng.integers(1, len(ILLUMINATIONS) + 1)),
                                 scene=int(rng.integers(1, NUM_SCENES + 1)))
            name = format_finegpr_filename(codes)
            if name in names:
                continue
            names.add(name)
            shots.append(Shot(os.path.join(f"{ident.pid:04d}", name), ident, Environment.from_finegpr(codes),
                              "finegpr", (seed, code, 1, len(shots))))
    return shots, identities
