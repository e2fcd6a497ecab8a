"""CUHK03-NP: CUHK03 under the "new protocol" (767 training / 700 test identities).

Source: Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017, which defined the protocol and released it
(github zhunzhong07/person-re-ranking, folder ``CUHK03-NP``) on top of the
images of Li et al., "DeepReID", CVPR 2014. The real split has 767 training
identities (7,365 detected / 7,368 labeled images) and 700 test identities
with 1,400 query images (one per identity and camera) and 5,332 / 5,328
gallery images.

Two on-disk forms are read; both are found under fast-reid's dataset root
(``FASTREID_DATASETS``), shown here for detected boxes (labeled boxes: replace
``detected`` by ``labeled``):

(a) the Market-style release tree of the protocol's authors::

        <root>/cuhk03-np/detected/bounding_box_train/0001_c1_1.png
        <root>/cuhk03-np/detected/query/0003_c1_22.png
        <root>/cuhk03-np/detected/bounding_box_test/0003_c1_21.png

    file names ``<pid4>_c<view>_<n>.png`` (``.jpg`` is accepted too): pid,
    camera view 1 or 2 of the person's camera pair, and a running image
    number;

(b) fast-reid's / torchreid's route: the images extracted from
    ``cuhk-03.mat`` plus the protocol's split file::

        <root>/cuhk03/images_detected/1_001_1_01.png
        <root>/cuhk03/cuhk03_new_protocol_config_detected.mat

    image names ``<pair>_<pid3>_<view>_<img2>.png`` (as written by
    fast-reid's ``CUHK03.preprocess_split``) and a MATLAB file with the
    fields ``filelist`` (image names), ``labels`` (pid per image), ``camId``
    and ``train_idx`` / ``query_idx`` / ``gallery_idx`` (1-based indices into
    ``filelist``), read with ``scipy.io.loadmat`` as in fast-reid's
    ``CUHK03._extract_new_split``.

In both forms the camera id is the view (0 or 1 after fast-reid's 0-based
shift), taken from the file name as fast-reid and torchreid do; ``camId`` is
not used. Training pids/camids are ``"<dataset_name>_<id>"`` strings, query
and gallery pids/camids are ints, and images with pid -1 (junk, as in
Market-1501) are dropped.
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

__all__ = ["CUHK03NP", "CUHK03NPLabeled", "CUHK03NP_TRAIN_IDS", "CUHK03NP_TEST_IDS", "CUHK03NP_LAYOUTS"]

logger = logging.getLogger(__name__)

#: Identity counts of the real protocol (Zhong et al. 2017).
CUHK03NP_TRAIN_IDS = 767
CUHK03NP_TEST_IDS = 700
#: Accepted values of the ``layout`` argument.
CUHK03NP_LAYOUTS: tuple[str, ...] = ("auto", "release", "mat")

_SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_RELEASE_NAME = re.compile(r"^(-1|\d+)_c([12])_(\d+)\.(png|jpe?g)$", re.IGNORECASE)
_EXTRACTED_NAME = re.compile(r"^(\d+)_(\d+)_([12])_(\d+)\.(png|jpe?g)$", re.IGNORECASE)
_MAT_KEYS = ("filelist", "labels", "train_idx", "query_idx", "gallery_idx")

_Item = tuple[str, int | str, int | str]


def _layouts_text(box: str) -> str:
    return (
        f"(a) <root>/cuhk03-np/{box}/{{bounding_box_train,query,bounding_box_test}}/<pid4>_c<view>_<n>.png "
        f"(the CUHK03-NP release), or (b) <root>/cuhk03/images_{box}/<pair>_<pid3>_<view>_<img2>.png plus "
        f"<root>/cuhk03/cuhk03_new_protocol_config_{box}.mat (fast-reid/torchreid route)"
    )


@DATASET_REGISTRY.register()
class CUHK03NP(ImageDataset):
    """CUHK03-NP with detected boxes (new protocol, 767 / 700 identities).

    Layouts, file names and label conventions are in the module docstring.
    With ``layout="auto"`` the release tree (a) is used when
    ``<root>/cuhk03-np/<box>/`` exists, else the ``.mat`` route (b). All
    checks run in the constructor, before any list is built. When the
    identity counts differ from 767 training / 700 test identities a warning
    is logged (small test trees differ; the real data must match).

    Args:
        root: fast-reid dataset root.
        layout: ``"auto"``, ``"release"`` (form a) or ``"mat"`` (form b).
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Attributes:
        layout: the form that was read (``"release"`` or ``"mat"``).
        data_dir: the folder read (``<root>/cuhk03-np/<box>`` or
            ``<root>/cuhk03/images_<box>``).
        split_path: the ``.mat`` file for form (b), else ``""``.

    Raises:
        ValueError: unknown ``layout``; an image name that does not follow
            the form's pattern; a split file that cannot be read, lacks one of
            the fields ``filelist``, ``labels``, ``train_idx``, ``query_idx``,
            ``gallery_idx``, has non-integer or out-of-range indices, or
            ``labels`` of another length than ``filelist``; a split with no
            image. Messages name the file, field or value.
        FileNotFoundError: neither form is present (the message lists
            both); a sub-folder of the release tree, the images folder or the
            split file of the ``.mat`` route is missing; images named by the
            split file are missing.
    """

    dataset_name = "cuhk03np"
    box_type = "detected"
    release_dir = "cuhk03-np"
    extracted_dir = "cuhk03"

    def __init__(self, root: str = "datasets", layout: str = "auto", **kwargs) -> None:
        if layout not in CUHK03NP_LAYOUTS:
            raise ValueError(f"unknown CUHK03-NP layout {layout!r}; expected one of {', '.join(CUHK03NP_LAYOUTS)}")
        self.root = root
        box = self.box_type
        release = os.path.join(root, self.release_dir, box)
        images = os.path.join(root, self.extracted_dir, f"images_{box}")
        split_file = os.path.join(root, self.extracted_dir, f"cuhk03_new_protocol_config_{box}.mat")
        if layout == "auto":
            if os.path.isdir(release):
                layout = "release"
            elif os.path.exists(images) or os.path.exists(split_file):
                layout = "mat"
            else:
                raise FileNotFoundError(
                    f"CUHK03-NP ({box} boxes) not found under root {root!r}: neither {release!r} nor "
                    f"{images!r} / {split_file!r} exists. Expected one of {_layouts_text(box)}."
                )
        self.layout = layout
        if layout == "release":
            self.data_dir, self.split_path = release, ""
            train, query, gallery = self._read_release_tree(release)
        else:
            self.data_dir, self.split_path = images, split_file
            train, query, gallery = self._read_mat_route(images, split_file)
        self._check_counts(train, query, gallery)
        super().__init__(train, query, gallery, **kwargs)

    # ------------------------------------------------------------------ form (a)

    def _read_release_tree(self, folder: str) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """Parse ``<root>/cuhk03-np/<box>/`` (form a)."""
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"CUHK03-NP release folder {folder!r} not found; expected "
                                    f"{_layouts_text(self.box_type)}")
        missing = [d for d in _SPLIT_DIRS.values() if not os.path.isdir(os.path.join(folder, d))]
        if missing:
            raise FileNotFoundError(f"CUHK03-NP release folder {folder!r} lacks sub-folder(s) {missing}; expected "
                                    f"{_layouts_text(self.box_type)}")
        parsed = {split: self._parse_release_dir(os.path.join(folder, sub)) for split, sub in _SPLIT_DIRS.items()}
        return (self._label(parsed["train"], True), self._label(parsed["query"], False),
                self._label(parsed["gallery"], False))

    @staticmethod
    def _parse_release_dir(folder: str) -> list[tuple[str, int, int]]:
        """``[(path, pid, view 1|2), ...]`` of one release sub-folder, sorted by name, junk (-1) dropped."""
        out = []
        for name in sorted(os.listdir(folder)):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in _IMAGE_EXTENSIONS:
                continue  # Thumbs.db, README, hidden files
            match = _RELEASE_NAME.match(name)
            if match is None:
                raise ValueError(f"CUHK03-NP image {os.path.join(folder, name)!r} does not follow the release naming "
                                 "<pid4>_c<view 1|2>_<n>.png (e.g. 0001_c1_1.png)")
            pid, view = int(match.group(1)), int(match.group(2))
            if pid == -1:
                continue
            out.append((os.path.join(folder, name), pid, view))
        if not out:
            raise ValueError(f"no CUHK03-NP images in {folder!r}; expected <pid4>_c<view>_<n>.png files")
        return out

    # ------------------------------------------------------------------ form (b)

    def _read_mat_route(self, images: str, split_file: str) -> tuple[list[_Item], list[_Item], list[_Item]]:
        """Parse ``<root>/cuhk03/images_<box>/`` with the protocol's split file (form b)."""
        box = self.box_type
        if not os.path.isdir(images):
            raise FileNotFoundError(f"CUHK03 images folder {images!r} not found (needed with the split file "
                                    f"{split_file!r}); expected {_layouts_text(box)}")
        if not os.path.isfile(split_file):
            raise FileNotFoundError(f"CUHK03-NP split file {split_file!r} not found (the images are in {images!r}); "
                                    f"expected {_layouts_text(box)}")
        filelist, labels, index = _load_split_file(split_file)
        present = set(os.listdir(images))
        missing = [name for name in filelist if name not in present]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image(s) named in {split_file!r} are missing from {images!r}, "
                                    f"e.g. {missing[:3]}")
        views = []
        for name in filelist:
            match = _EXTRACTED_NAME.match(name)
            if match is None:
                raise ValueError(f"image name {name!r} in field 'filelist' of {split_file!r} does not follow "
                                 "<pair>_<pid3>_<view 1|2>_<img2>.png (e.g. 1_001_1_01.png)")
            views.append(int(match.group(3)))
        out = {}
        for split in ("train", "query", "gallery"):
            rows = [(os.path.join(images, filelist[i]), labels[i], views[i]) for i in index[split] if labels[i] != -1]
            if not rows:
                raise ValueError(f"field '{split}_idx' of {split_file!r} selects no image")
            out[split] = self._label(rows, split == "train")
        return out["train"], out["query"], out["gallery"]

    # ------------------------------------------------------------------ shared

    def _label(self, rows: list[tuple[str, int, int]], is_train: bool) -> list[_Item]:
        """fast-reid's convention: ``"<name>_<pid>"`` / ``"<name>_<view-1>"`` for training, ints otherwise."""
        if is_train:
            return [(p, f"{self.dataset_name}_{pid}", f"{self.dataset_name}_{view - 1}") for p, pid, view in rows]
        return [(p, pid, view - 1) for p, pid, view in rows]

    def _check_counts(self, train: list[_Item], query: list[_Item], gallery: list[_Item]) -> None:
        n_train = len({item[1] for item in train})
        n_test = len({item[1] for item in query} | {item[1] for item in gallery})
        if (n_train, n_test) != (CUHK03NP_TRAIN_IDS, CUHK03NP_TEST_IDS):
            logger.warning(
                "%s (%s, %s): %d training / %d test identities, the real CUHK03-NP protocol has %d / %d "
                "(expected only for small or synthetic trees)", type(self).__name__, self.layout, self.data_dir,
                n_train, n_test, CUHK03NP_TRAIN_IDS, CUHK03NP_TEST_IDS,
            )


def _as_name(cell: object) -> str:
    """One ``filelist`` entry as loaded by ``scipy.io.loadmat`` (a MATLAB char array in a cell) -> str."""
    while isinstance(cell, np.ndarray):
        if cell.size == 0:
            return ""
        cell = cell.ravel()[0]
    return str(cell).strip()


def _integers(mat: dict, key: str, path: str) -> np.ndarray:
    values = np.asarray(mat[key]).ravel()
    try:
        as_float = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"field {key!r} of {path!r} must hold numbers, got dtype {values.dtype}") from None
    if not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
        bad = as_float[~(np.isfinite(as_float) & (as_float == np.round(as_float)))][0]
        raise ValueError(f"field {key!r} of {path!r} must hold integers, found {bad!r}")
    return as_float.astype(np.int64)


def _load_split_file(path: str) -> tuple[list[str], list[int], dict[str, list[int]]]:
    """Read a ``cuhk03_new_protocol_config_*.mat``.

    Returns:
        ``(filelist, labels, {"train"|"query"|"gallery": 0-based indices})``.

    Raises:
        ValueError: unreadable file, missing field, bad values (see :class:`CUHK03NP`).
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as err:  # scipy raises ValueError, NotImplementedError (v7.3 files), OSError, ...
        raise ValueError(f"cannot read CUHK03-NP split file {path!r} with scipy.io.loadmat: {err}") from None
    missing = [key for key in _MAT_KEYS if key not in mat]
    if missing:
        raise ValueError(f"CUHK03-NP split file {path!r} lacks field(s) {missing}; expected fields "
                         f"{', '.join(_MAT_KEYS)} (and camId) as in cuhk03_new_protocol_config_*.mat")
    filelist = [_as_name(cell) for cell in np.asarray(mat["filelist"], dtype=object).ravel()]
    labels = [int(v) for v in _integers(mat, "labels", path)]
    if len(labels) != len(filelist):
        raise ValueError(f"field 'labels' of {path!r} has {len(labels)} entries but 'filelist' has {len(filelist)}; "
                         "expected one label per image")
    if any(not name for name in filelist):
        raise ValueError(f"field 'filelist' of {path!r} holds an empty image name")
    index = {}
    for split in ("train", "query", "gallery"):
        key = f"{split}_idx"
        idx = _integers(mat, key, path)
        bad = idx[(idx < 1) | (idx > len(filelist))]
        if bad.size:
            raise ValueError(f"field {key!r} of {path!r} holds index {int(bad[0])}, outside 1..{len(filelist)} "
                             "(indices are 1-based into 'filelist')")
        index[split] = [int(i) - 1 for i in idx]
    return filelist, labels, index


@DATASET_REGISTRY.register()
class CUHK03NPLabeled(CUHK03NP):
    """CUHK03-NP with manually labeled boxes (``labeled`` instead of ``detected`` in every path).

    Same layouts, conventions, arguments and errors as :class:`CUHK03NP`:
    ``<root>/cuhk03-np/labeled/...`` or ``<root>/cuhk03/images_labeled/`` with
    ``<root>/cuhk03/cuhk03_new_protocol_config_labeled.mat``. Training labels
    use the prefix ``"cuhk03nplabeled_"``.
    """

    dataset_name = "cuhk03nplabeled"
    box_type = "labeled"
