"""FineGPR as a fast-reid training dataset with one text description per image.

FineGPR (Xiang et al., "Less is More: Learning from Synthetic Data with
Fine-grained Attributes for Person Re-Identification", github
JeremyXSC/FineGPR) is the pre-training source of DMF (Xiang et al., arXiv
2211.00933, Sec. 4.1: 11 random images per identity, 12,650 in all). It has
no query/gallery split here: it is only used for (pre-)training. As
distributed it holds 1,150 identities x 1,764 images (36 viewpoints x 7
weathers x 7 illuminations) = 2,028,600 images; ``images_per_identity=11``
(``DATASETS.FINEGPR.IMAGES_PER_ID``) selects the paper's 12,650-image subset.

Expected layout under fast-reid's dataset root (``FASTREID_DATASETS``)::

    <root>/FineGPR/
        attributes.csv                 # per-identity attributes (format: finegpr_format)
        captions.csv                   # per-image captions, text mode "caption" only (format: finegpr_format)
        0001/0001_c01_w01_l01_p01.jpg  # <pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg
        0001/...
        0002/...

``tools/make_demo_data.py`` writes a small demo tree in this layout;
``tools/convert_finegpr_annotations.py`` converts the download's annotations
to the attribute and caption files.

Scanning rules (:func:`scan_finegpr_tree`; names are sorted, so results do not
depend on the file system's listing order):

* entries whose name starts with "." are ignored everywhere;
* in ``<root>/FineGPR/`` the folders named by exactly four digits are identity
  folders; other folders and all files (the attribute file, a README, ...)
  are ignored;
* in an identity folder every *image* file (extension .jpg, .jpeg, .png, .bmp,
  .gif, .tif, .tiff, .webp, any case) must be named
  ``<pid4>_cXX_wXX_lXX_pXX.jpg`` with the folder's pid, otherwise
  construction fails (so e.g. a stray ``.png`` is reported, not skipped);
  other files (``.txt``, ``Thumbs.db``, ...) are ignored, and a sub-folder is
  an error.

Scanning uses ``os.scandir`` and never stats or opens an image file (the
file type comes from the directory entry), so it costs one directory read
per identity plus a name check per file; see
``tools/benchmark_finegpr_scan.py`` for measured times at full scale.
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from ..descriptions import DESCRIPTION_MODES, check_description_mode, describe_images
from ..finegpr_format import (
    is_valid_finegpr_filename,
    parse_finegpr_filename,
    read_attribute_file,
    read_caption_file,
)

__all__ = ["IMAGE_EXTENSIONS", "TEXT_MODES", "FineGPR", "FineGPRTree", "scan_finegpr_tree",
           "select_identity_subset"]

logger = logging.getLogger(__name__)

#: File extensions treated as images while scanning (compared in lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

#: Text modes of the dataset: the description modes of ``descriptions`` plus "caption" (caption file).
TEXT_MODES: tuple[str, ...] = (*DESCRIPTION_MODES, "caption")

_PID_DIR_RE = re.compile(r"^\d{4}$")
_LAYOUT = ("<root>/FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg plus the attribute file "
           "(e.g. <root>/FineGPR/attributes.csv)")
_MAKE_DEMO = "Run tools/make_demo_data.py to create a small demo dataset in this layout."


@dataclass
class FineGPRTree:
    """Result of :func:`scan_finegpr_tree`.

    Attributes:
        dataset_dir: the scanned ``FineGPR`` folder.
        names: ``{int pid: sorted image file names}`` for every identity
            folder that holds images (names are valid FineGPR names with the
            folder's pid).
        stray_images: image files lying directly in ``dataset_dir`` (ignored).
        ignored_dirs: folders of ``dataset_dir`` not named by a 4-digit pid.
    """

    dataset_dir: str
    names: dict[int, list[str]] = field(default_factory=dict)
    stray_images: list[str] = field(default_factory=list)
    ignored_dirs: list[str] = field(default_factory=list)

    def path(self, pid: int, name: str) -> str:
        """Path of image ``name`` of identity ``pid``: ``<dataset_dir>/<pid4>/<name>``."""
        return os.path.join(self.dataset_dir, f"{pid:04d}", name)

    def num_images(self) -> int:
        """Number of images found."""
        return sum(len(names) for names in self.names.values())


def _list_dir(folder: str) -> list[tuple[str, bool]]:
    """``[(name, is_dir)]`` of a folder, sorted by name; file types from the directory entries (no stat)."""
    with os.scandir(folder) as entries:
        listing = [(entry.name, entry.is_dir()) for entry in entries]
    listing.sort()
    return listing


def _scan_identity_dir(folder: str, folder_pid: int) -> list[str]:
    """Sorted image names of one identity folder, all checked (see the module docstring)."""
    prefix = f"{folder_pid:04d}_"
    found = []
    for name, is_dir in _list_dir(folder):
        if name.startswith("."):
            continue
        if is_dir:
            raise ValueError(
                f"unexpected sub-folder {os.path.join(folder, name)!r} in FineGPR identity folder {folder!r}; "
                "an identity folder holds only <pid4>_cXX_wXX_lXX_pXX.jpg images"
            )
        if name.startswith(prefix) and is_valid_finegpr_filename(name):  # fast path: nearly every file
            found.append(name)
            continue
        if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            codes = parse_finegpr_filename(name)
        except ValueError as err:
            raise ValueError(f"{err} (in folder {folder!r})") from None
        raise ValueError(
            f"FineGPR image {os.path.join(folder, name)!r} has pid {codes.pid:04d} but lies in the folder of "
            f"identity {folder_pid:04d}; expected <pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg with the same pid"
        )
    return found


def scan_finegpr_tree(dataset_dir: str) -> FineGPRTree:
    """List and check every image of a FineGPR folder (rules in the module docstring).

    Nothing is opened or stat-ed besides the directories themselves.

    Args:
        dataset_dir: the ``FineGPR`` folder (``<root>/FineGPR``).

    Returns:
        A :class:`FineGPRTree` with at least one image.

    Raises:
        FileNotFoundError: ``dataset_dir`` is not a folder.
        ValueError: a bad image file name, a file whose pid differs from its
            folder, a sub-folder inside an identity folder, or no images at
            all (with hints about images lying in the wrong place); messages
            name the path and the expected layout.
    """
    if not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"FineGPR dataset folder {dataset_dir!r} not found; expected layout {_LAYOUT}")
    tree = FineGPRTree(dataset_dir)
    for name, is_dir in _list_dir(dataset_dir):
        if name.startswith("."):
            continue
        if not is_dir:
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                tree.stray_images.append(name)
            continue
        if not _PID_DIR_RE.match(name):
            tree.ignored_dirs.append(name)
            continue
        found = _scan_identity_dir(os.path.join(dataset_dir, name), int(name))
        if found:
            tree.names[int(name)] = found
    if not tree.names:
        hints = []
        if tree.stray_images:
            hints.append(f"{len(tree.stray_images)} image file(s) lie directly in the folder "
                         f"(e.g. {tree.stray_images[0]!r}); they must be inside <pid4>/ identity folders")
        if tree.ignored_dirs:
            hints.append(f"folders not named by a 4-digit pid were ignored: {tree.ignored_dirs[:5]}")
        raise ValueError(
            f"no FineGPR images found in {dataset_dir!r}; expected layout {_LAYOUT}"
            + ("; " + "; ".join(hints) if hints else "")
            + f". {_MAKE_DEMO}"
        )
    return tree


def select_identity_subset(pid: int, names: list[str], images_per_identity: int, seed: int = 0) -> list[str]:
    """Reproducible draw of ``images_per_identity`` image names of one identity (DMF: 11 per identity).

    The draw uses a generator seeded by ``(seed, pid)`` over the sorted names,
    so it does not depend on the listing order or on the other identities.

    Args:
        pid: the identity.
        names: its image file names (any order).
        images_per_identity: how many to keep; 0 keeps all.
        seed: seed of the draw (``DATASETS.FINEGPR.SUBSET_SEED``).

    Returns:
        The chosen names in sorted order; all of them (with a logged warning)
        when the identity has fewer than ``images_per_identity``.

    Raises:
        ValueError: ``images_per_identity`` is negative.
    """
    if images_per_identity < 0:
        raise ValueError(f"images_per_identity must be >= 0 (0 = all images), got {images_per_identity!r}")
    ordered = sorted(names)
    if images_per_identity == 0 or len(ordered) <= images_per_identity:
        if len(ordered) < images_per_identity:
            logger.warning(
                "FineGPR identity %04d has %d images, fewer than images_per_identity=%d; keeping all",
                pid, len(ordered), images_per_identity,
            )
        return ordered
    rng = random.Random(f"finegpr-subset:{seed}:{pid}")
    chosen = sorted(rng.sample(range(len(ordered)), images_per_identity))
    return [ordered[i] for i in chosen]


def _examples(items: list[str], limit: int = 5) -> str:
    return ", ".join(repr(i) for i in items[:limit]) + (", ..." if len(items) > limit else "")


@DATASET_REGISTRY.register()
class FineGPR(ImageDataset):
    """FineGPR training set with a text description per image (DMF pre-training source).

    Train items are 4-tuples ``(img_path, pid, camid, description)``:
    ``pid = "finegpr_<int pid>"`` and ``camid = "finegpr_<viewpoint code>"``
    (e.g. ``"finegpr_1"`` for ``c01``) are strings, fast-reid's convention for
    training sets (see ``Market1501.process_dir`` with ``is_train``).
    ``description`` comes from :func:`fastreid_dmf.data.descriptions.build_description`
    (text modes "sentence" and "keywords") or from the caption file (text mode
    "caption", FineGPR-C captions). ``query`` and ``gallery`` are empty. All
    checks run in the constructor; images are never opened here (see
    ``DATASETS.VERIFY_IMAGES`` in ``fastreid_dmf.data.build``).

    Args:
        root: fast-reid dataset root; the data are in ``<root>/FineGPR/``.
        attribute_file: attribute CSV (format in ``finegpr_format``); a relative
            path is relative to ``<root>/FineGPR/``, an absolute one is used as
            is. Needed in text modes "sentence" and "keywords"; not read in
            mode "caption".
        text_mode: ``"sentence"`` or ``"keywords"`` (descriptions built from the
            attributes, see ``descriptions``), or ``"caption"`` (one caption per
            image read from ``caption_file``).
        text_environment: put weather/illumination/viewpoint (and scene in
            keyword mode) into the built descriptions; no effect in mode
            "caption" (captions are used as written).
        images_per_identity: if > 0, keep this many images per identity,
            drawn at random from the identity's sorted file list with a
            generator seeded by ``(subset_seed, pid)`` (reproducible, and
            independent of listing order and of the other identities; see
            :func:`select_identity_subset`); an identity with fewer images
            keeps all of them (a warning is logged). 0 keeps everything. DMF
            uses 11.
        subset_seed: seed of that draw.
        caption_file: caption CSV (format in ``finegpr_format``, "FineGPR
            caption file"), relative to ``<root>/FineGPR/`` or absolute; read
            in mode "caption" only. Every image used (after the subset draw)
            needs a caption; captions of images that are not on disk are
            ignored (their count is logged).
        **kwargs: passed to fast-reid's ``ImageDataset`` (``mode``,
            ``combineall``, ``verbose``, ...).

    Attributes:
        dataset_dir: ``<root>/FineGPR``.
        attribute_path: resolved attribute file path (None in mode "caption").
        caption_path: resolved caption file path (None in other modes).
        attributes: ``{int pid: {attribute: value}}`` for the identities in
            ``train`` only (see also :meth:`identity_attributes`); empty in
            mode "caption".

    Raises:
        FileNotFoundError: ``<root>/FineGPR``, the attribute file (modes
            "sentence"/"keywords") or the caption file (mode "caption") is
            missing.
        ValueError: unknown ``text_mode``; negative ``images_per_identity``;
            a bad image file name, a file whose pid differs from its folder,
            a sub-folder inside an identity folder, an identity without a row
            in the attribute file, a bad attribute or caption file (from
            ``read_attribute_file`` / ``read_caption_file``), images without a
            caption (mode "caption": the count and the first names); no images
            found. Messages name the offending path or value and what was
            expected.
    """

    dataset_name = "finegpr"
    dataset_dir = "FineGPR"

    @classmethod
    def kwargs_from_config(cls, cfg) -> dict:
        """Constructor arguments from ``DATASETS.FINEGPR.*`` (see :func:`~.from_config.dataset_kwargs`)."""
        fine = cfg.DATASETS.FINEGPR
        return {"attribute_file": fine.ATTRIBUTE_FILE, "text_mode": fine.TEXT_MODE,
                "text_environment": fine.TEXT_ENVIRONMENT, "images_per_identity": fine.IMAGES_PER_ID,
                "subset_seed": fine.SUBSET_SEED, "caption_file": fine.CAPTION_FILE}

    def __init__(
        self,
        root: str = "datasets",
        attribute_file: str = "attributes.csv",
        text_mode: str = "sentence",
        text_environment: bool = True,
        images_per_identity: int = 0,
        subset_seed: int = 0,
        caption_file: str = "captions.csv",
        **kwargs,
    ) -> None:
        self.root = root
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        check_description_mode(text_mode, TEXT_MODES)
        self.text_mode = text_mode
        self.text_environment = bool(text_environment)
        if not isinstance(images_per_identity, int) or images_per_identity < 0:
            raise ValueError(
                f"images_per_identity must be an integer >= 0 (0 = all images), got {images_per_identity!r}")
        self.images_per_identity = int(images_per_identity)
        self.subset_seed = int(subset_seed)

        if not os.path.isdir(self.dataset_dir):
            raise FileNotFoundError(
                f"FineGPR dataset folder {self.dataset_dir!r} not found (root={root!r}); expected layout "
                f"{_LAYOUT}. {_MAKE_DEMO}"
            )
        self.attribute_path: str | None = None
        self.caption_path: str | None = None
        all_attributes: dict[int, dict[str, str]] = {}
        captions: dict[str, str] = {}
        if self.text_mode == "caption":
            self.caption_path = os.path.join(self.dataset_dir, caption_file)
            if not os.path.isfile(self.caption_path):
                raise FileNotFoundError(
                    f"FineGPR caption file {self.caption_path!r} not found (caption_file={caption_file!r}, relative "
                    f"paths are relative to {self.dataset_dir!r}); text mode 'caption' needs a CSV 'image,caption' "
                    "with one row per image. Convert FineGPR-C captions or generate template captions with "
                    "tools/convert_finegpr_annotations.py, or use text mode 'sentence'"
                )
            captions = read_caption_file(self.caption_path)
        else:
            self.attribute_path = os.path.join(self.dataset_dir, attribute_file)
            if not os.path.isfile(self.attribute_path):
                raise FileNotFoundError(
                    f"FineGPR attribute file {self.attribute_path!r} not found (attribute_file={attribute_file!r}, "
                    f"relative paths are relative to {self.dataset_dir!r}); expected layout {_LAYOUT}"
                )
            all_attributes = read_attribute_file(self.attribute_path)

        tree = scan_finegpr_tree(self.dataset_dir)
        self._camid_labels: dict[int, str] = {}
        chosen = {pid: select_identity_subset(pid, names, self.images_per_identity, self.subset_seed)
                  for pid, names in tree.names.items()}
        if self.text_mode == "caption":
            train = self._caption_items(tree, chosen, captions)
        else:
            train = self._described_items(chosen, all_attributes)
        self.attributes: dict[int, dict[str, str]] = {
            pid: dict(all_attributes[pid]) for pid in sorted(chosen) if pid in all_attributes
        }
        super().__init__(train, [], [], **kwargs)

    def _camid(self, camera: int) -> str:
        """``"finegpr_<camera>"``, one shared string per viewpoint code (2M items share 36 strings)."""
        label = self._camid_labels.get(camera)
        if label is None:
            label = self._camid_labels[camera] = f"{self.dataset_name}_{camera}"
        return label

    def _described_items(self, chosen: dict[int, list[str]], all_attributes: dict[int, dict[str, str]]) -> list[tuple]:
        """Train items with descriptions built from the attributes (modes "sentence" and "keywords")."""
        for pid in sorted(chosen):
            if pid not in all_attributes:
                raise ValueError(
                    f"identity {pid} (folder {os.path.join(self.dataset_dir, f'{pid:04d}')!r}) has no row in "
                    f"the attribute file {self.attribute_path!r}; expected a row with pid {pid}"
                )
        train = []
        for pid in sorted(chosen):
            attrs = all_attributes[pid]
            folder = os.path.join(self.dataset_dir, f"{pid:04d}", "")
            pid_label = f"{self.dataset_name}_{pid}"  # one string per identity, shared by its items
            for name, codes, text in describe_images(attrs, chosen[pid], self.text_mode, self.text_environment):
                train.append((folder + name, pid_label, self._camid(codes.camera), text))
        return train

    def _caption_items(self, tree: FineGPRTree, chosen: dict[int, list[str]],
                       captions: dict[str, str]) -> list[tuple]:
        """Train items whose descriptions are the caption file's captions (mode "caption")."""
        missing = [name for pid in sorted(chosen) for name in chosen[pid] if name not in captions]
        if missing:
            used = sum(len(names) for names in chosen.values())
            raise ValueError(
                f"{len(missing)} of the {used} FineGPR images used have no caption in {self.caption_path!r}, e.g. "
                f"{_examples(missing)}; expected a row 'image,caption' for every image used (after "
                "images_per_identity). Add them (tools/convert_finegpr_annotations.py --generate-captions writes "
                "template captions for a whole tree), or use text mode 'sentence'"
            )
        # File names are unique in the tree and in the caption file, so counting matches avoids a 2M-name set.
        not_on_disk = len(captions) - sum(name in captions for names in tree.names.values() for name in names)
        if not_on_disk:
            logger.info("FineGPR caption file %s: %d of %d captions are for images not on disk (ignored)",
                        self.caption_path, not_on_disk, len(captions))
        train = []
        for pid in sorted(chosen):
            folder = os.path.join(self.dataset_dir, f"{pid:04d}", "")
            pid_label = f"{self.dataset_name}_{pid}"  # one string per identity, shared by its items
            for name in chosen[pid]:
                camid = self._camid(parse_finegpr_filename(name).camera)
                train.append((folder + name, pid_label, camid, captions[name]))
        return train

    def identity_attributes(self) -> dict[int, dict[str, str]]:
        """Attributes of the identities used.

        Returns:
            A copy of ``{int pid: {attribute name: value word}}`` for every
            identity that has images in ``train`` (rows of the attribute file
            for other identities are left out); empty in text mode "caption",
            where the attribute file is not read.
        """
        return {pid: dict(attrs) for pid, attrs in self.attributes.items()}
