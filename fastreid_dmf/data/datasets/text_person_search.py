"""The three standard text-based person search sets: CUHK-PEDES, ICFG-PEDES and RSTPReid.

Text-based person search (text-to-image person retrieval) ranks pedestrian
images for a natural-language description. The sets and their papers:

* ``CUHKPEDES``: CUHK-PEDES, Li et al., "Person Search with Natural Language
  Description", CVPR 2017 (13,003 identities, 40,206 images, two captions per
  image for nearly all images; splits train / val / test).
* ``ICFGPEDES``: ICFG-PEDES, Ding et al., "Semantically Self-Aligned Network
  for Text-to-Image Part-aware Person Re-identification" (SSAN), arXiv
  2107.12666, 2021 (4,102 identities, 54,522 images from MSMT17, one caption
  per image; splits train / test only).
* ``RSTPReid``: RSTPReid, Zhu et al., "DSSL: Deep Surroundings-person
  Separation Learning for Text-based Person Retrieval", ACM MM 2021 (4,101
  identities, 20,505 images, two captions per image; splits train / val / test).

Expected layouts under fast-reid's dataset root (``FASTREID_DATASETS``), as
released and as read by IRRA::

    <root>/CUHK-PEDES/reid_raw.json      # [{"split", "captions", "file_path", "processed_tokens", "id"}, ...]
    <root>/CUHK-PEDES/imgs/<file_path>   # e.g. imgs/CUHK01/0363004.png
    <root>/ICFG-PEDES/ICFG-PEDES.json    # same record fields as CUHK-PEDES; split "train" or "test"
    <root>/ICFG-PEDES/imgs/<file_path>
    <root>/RSTPReid/data_captions.json   # [{"id", "img_path", "captions", "split"}, ...]
    <root>/RSTPReid/imgs/<img_path>

Each annotation file is one JSON list with one record per image: ``id`` (int
identity), ``captions`` (list of str), the image path relative to ``imgs/``
(``file_path``, or ``img_path`` for RSTPReid) and ``split`` ("train", "val" or
"test"). Other fields (``processed_tokens``, ...) are ignored.

Verified against: IRRA (Jiang and Ye, "Cross-Modal Implicit Relation
Reasoning and Aligning for Text-to-Image Person Retrieval", CVPR 2023;
github anosorae/IRRA, ``datasets/cuhkpedes.py``, ``datasets/icfgpedes.py``,
``datasets/rstpreid.py`` and ``datasets/build.py``): the folder names
``CUHK-PEDES`` / ``ICFG-PEDES`` / ``RSTPReid``, the image folder ``imgs/``,
the annotation files ``reid_raw.json`` / ``ICFG-PEDES.json`` /
``data_captions.json``, the record fields ``split``, ``captions``, ``id`` and
``file_path`` (CUHK-PEDES, ICFG-PEDES) or ``img_path`` (RSTPReid), and the
evaluation protocol: every caption of an evaluation-split image is one query
with the image's identity, the gallery is every image of that split, and the
"val" split replaces "test" when validating. IRRA files every record whose
split is neither "train" nor "test" under val, so ICFG-PEDES (train / test
only) has an empty val split there; here asking for it is an error, and an
unknown split name in a record is an error too.

Items (see :class:`TextPersonSearchDataset`):

* ``train``: ``(img_path, "<dataset_name>_<id>", "<dataset_name>_0",
  description)`` per training image, the FineGPR tuple form; the description is
  the image's *first* caption (IRRA trains on every caption; the other
  captions are kept in :attr:`TextPersonSearchDataset.train_captions`).
* ``gallery``: ``(img_path, id, 0)`` per evaluation-split image (int pid; camid
  0, these sets have no camera labels).
* ``query``: empty, the queries are texts: ``text_queries`` lists
  ``(caption, id)`` for every caption of every evaluation-split image.
"""

from __future__ import annotations

import json
import logging
import os

from ... import compat

compat.apply_fastreid_compat()  # fastreid.data needs the torch-2 shims before it is imported

from fastreid.data.datasets import DATASET_REGISTRY  # noqa: E402
from fastreid.data.datasets.bases import ImageDataset  # noqa: E402
from tabulate import tabulate  # noqa: E402

__all__ = ["TEXT_SPLITS", "CUHKPEDES", "ICFGPEDES", "RSTPReid", "TextPersonSearchDataset"]

logger = logging.getLogger(__name__)

#: Evaluation splits that ``DATASETS.TEXT_SPLIT`` may choose.
TEXT_SPLITS: tuple[str, ...] = ("test", "val")

_RECORD_SPLITS = ("train", "val", "test")
_MAX_EXAMPLES = 5


def _examples(items: list[str]) -> str:
    return ", ".join(repr(i) for i in items[:_MAX_EXAMPLES]) + (", ..." if len(items) > _MAX_EXAMPLES else "")


class TextPersonSearchDataset(ImageDataset):
    """Base of the text-based person search sets: one JSON annotation list plus an ``imgs/`` folder.

    Not registered itself; subclasses set the class attributes below. All
    checks run in the constructor, before any image is used (images are only
    checked to exist, never opened).

    Class attributes:
        dataset_dir: folder under the root (e.g. ``"CUHK-PEDES"``).
        dataset_name: prefix of training pid/camid strings (e.g. ``"cuhkpedes"``).
        annotation_file: JSON file inside ``dataset_dir``.
        path_field: record field holding the image path relative to ``imgs/``.
        eval_splits: evaluation splits the set has (subset of ``("test", "val")``).
        layout: the expected layout, quoted in error messages.

    Args:
        root: fast-reid dataset root; the set is in ``<root>/<dataset_dir>/``.
        split: evaluation split, ``"test"`` or ``"val"`` (``DATASETS.TEXT_SPLIT``).
        **kwargs: passed to fast-reid's ``ImageDataset`` (``mode``, ``verbose``, ...).

    Attributes:
        train: ``[(img_path: str, pid: str, camid: str, description: str)]``
            for the "train" records in file order; ``pid = "<dataset_name>_<id>"``,
            ``camid = "<dataset_name>_0"`` (one camera label for the whole set),
            ``description`` = the record's first caption.
        train_captions: ``[list[str]]``, all captions of each train item (same order).
        gallery: ``[(img_path: str, pid: int, camid: int)]``, one entry per
            evaluation-split image in file order, ``camid`` 0.
        query: ``[]`` (queries are texts).
        text_queries: ``[(caption: str, pid: int)]``, every caption of every
            evaluation-split image, in file order; each pid is a gallery pid.
        split: the evaluation split.
        dataset_path / img_dir / annotation_path: the resolved paths.

    Raises:
        ValueError: ``split`` is not one of the set's evaluation splits (the
            message names ``DATASETS.TEXT_SPLIT``); the annotation file is not
            valid JSON or not a list; a record is not an object, lacks a field
            or has a field of the wrong type (``id`` a non-negative int,
            ``captions`` a list of str, the image path a non-empty relative
            path, ``split`` one of "train" / "val" / "test"; the message names
            the record index and field); a record of the splits used has no
            caption or an empty one; the evaluation split has no record; the
            same image is listed twice in the evaluation split with two ids.
        FileNotFoundError: the dataset folder, its ``imgs/`` folder or the
            annotation file is missing (the message names the path and the
            expected layout); images of the splits used (train and the
            evaluation split) are listed but not on disk (the message names
            them and the record).
    """

    dataset_dir: str = ""
    dataset_name: str = ""
    annotation_file: str = ""
    path_field: str = "file_path"
    eval_splits: tuple[str, ...] = TEXT_SPLITS
    layout: str = ""

    @classmethod
    def kwargs_from_config(cls, cfg) -> dict:
        """``{"split": DATASETS.TEXT_SPLIT}`` (see :func:`~.from_config.dataset_kwargs`)."""
        return {"split": cfg.DATASETS.TEXT_SPLIT}

    def __init__(self, root: str = "datasets", split: str = "test", **kwargs) -> None:
        name = type(self).__name__
        if split not in TEXT_SPLITS:
            raise ValueError(f"{name}: split must be one of {TEXT_SPLITS} (DATASETS.TEXT_SPLIT), got {split!r}")
        if split not in self.eval_splits:
            raise ValueError(
                f"{name} has no {split!r} split (its evaluation splits: {self.eval_splits}); set "
                f"DATASETS.TEXT_SPLIT to one of them"
            )
        self.root = root
        self.split = split
        self.dataset_path = os.path.join(root, self.dataset_dir)
        self.img_dir = os.path.join(self.dataset_path, "imgs")
        self.annotation_path = os.path.join(self.dataset_path, self.annotation_file)
        for path, what in ((self.dataset_path, "dataset folder"), (self.img_dir, "image folder")):
            if not os.path.isdir(path):
                raise FileNotFoundError(f"{name} {what} {path!r} not found (root={root!r}); expected layout "
                                        f"{self.layout}")
        if not os.path.isfile(self.annotation_path):
            raise FileNotFoundError(f"{name} annotation file {self.annotation_path!r} not found; expected layout "
                                    f"{self.layout}")

        records = self._read_records()
        used = ("train", split)
        self._check_used_records(records, used)

        train, self.train_captions = self._train_items(records)
        gallery, self._text_queries = self._eval_items(records)
        super().__init__(train, [], gallery, **kwargs)

    @property
    def text_queries(self) -> list[tuple[str, int]]:
        """``[(caption, pid)]``: every caption of every evaluation-split image, in file order (``DATASETS.TEXT_TESTS``).

        A property, so that ``hasattr(cls, "text_queries")`` marks the class as a text-to-image test set.
        """
        return self._text_queries

    # -- reading and checking -------------------------------------------------------------------------------------

    def _read_records(self) -> list[tuple[int, dict]]:
        """``[(record index, record)]`` of the annotation file, every record's fields and types checked."""
        path = self.annotation_path
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{type(self).__name__} annotation file {path!r} is not valid JSON ({err}); expected "
                             f"one JSON list of records, layout {self.layout}") from None
        if not isinstance(data, list):
            raise ValueError(f"{type(self).__name__} annotation file {path!r} holds a JSON {type(data).__name__}, "
                             f"expected a list of records (layout {self.layout})")
        fields = ("id", "captions", self.path_field, "split")
        for index, record in enumerate(data):
            where = f"record {index} of {path!r}"
            if not isinstance(record, dict):
                raise ValueError(f"{where} is a JSON {type(record).__name__}, expected an object with fields "
                                 f"{fields}")
            missing = [f for f in fields if f not in record]
            if missing:
                raise ValueError(f"{where} lacks field(s) {missing}; expected fields {fields} (layout {self.layout})")
            pid, captions, image, split = (record[f] for f in fields)
            if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
                raise ValueError(f"{where}: field 'id' must be a non-negative integer, got {pid!r}")
            if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
                raise ValueError(f"{where}: field 'captions' must be a list of strings, got {captions!r:.200}")
            if not isinstance(image, str) or not image or os.path.isabs(image):
                raise ValueError(f"{where}: field {self.path_field!r} must be an image path relative to "
                                 f"{self.img_dir!r}, got {image!r}")
            if split not in _RECORD_SPLITS:
                raise ValueError(f"{where}: field 'split' must be one of {_RECORD_SPLITS}, got {split!r}")
        return list(enumerate(data))

    def _check_used_records(self, records: list[tuple[int, dict]], used: tuple[str, ...]) -> None:
        """Non-empty captions, an existing image per record of the splits used, and records in the evaluation split."""
        path = self.annotation_path
        missing_images: list[str] = []
        first_missing = -1
        count = 0
        for index, record in records:
            if record["split"] not in used:
                continue
            count += record["split"] == self.split
            captions = record["captions"]
            image = record[self.path_field]
            if not captions:
                raise ValueError(f"record {index} of {path!r} (image {image!r}, split {record['split']!r}): field "
                                 "'captions' is empty; expected at least one caption")
            for k, caption in enumerate(captions):
                if not caption.strip():
                    raise ValueError(f"record {index} of {path!r} (image {image!r}, split {record['split']!r}): "
                                     f"caption {k} of field 'captions' is empty")
            if not os.path.isfile(os.path.join(self.img_dir, image)):
                if not missing_images:
                    first_missing = index
                missing_images.append(os.path.join(self.img_dir, image))
        if missing_images:
            raise FileNotFoundError(
                f"{len(missing_images)} image(s) listed in {path!r} (splits {list(used)}) are not on disk, "
                f"first in record {first_missing}: {_examples(missing_images)}; expected layout {self.layout}"
            )
        if count == 0:
            per_split = {s: sum(r["split"] == s for _, r in records) for s in _RECORD_SPLITS}
            raise ValueError(f"{type(self).__name__} annotation file {path!r} has no record of split "
                             f"{self.split!r} (DATASETS.TEXT_SPLIT); records per split: {per_split}")

    # -- items ----------------------------------------------------------------------------------------------------

    def _train_items(self, records: list[tuple[int, dict]]) -> tuple[list[tuple], list[list[str]]]:
        """Train items ``(img_path, pid_label, camid_label, first caption)`` and all captions of each."""
        camid = f"{self.dataset_name}_0"
        labels: dict[int, str] = {}
        train, captions = [], []
        for _, record in records:
            if record["split"] != "train":
                continue
            pid = record["id"]
            label = labels.get(pid)
            if label is None:
                label = labels[pid] = f"{self.dataset_name}_{pid}"
            train.append((os.path.join(self.img_dir, record[self.path_field]), label, camid, record["captions"][0]))
            captions.append(list(record["captions"]))
        return train, captions

    def _eval_items(self, records: list[tuple[int, dict]]) -> tuple[list[tuple], list[tuple[str, int]]]:
        """Gallery ``(img_path, pid, 0)`` per evaluation image and text queries ``(caption, pid)`` per caption."""
        gallery: list[tuple] = []
        queries: list[tuple[str, int]] = []
        seen: dict[str, tuple[int, int]] = {}  # image path -> (record index, pid)
        merged = 0
        for index, record in records:
            if record["split"] != self.split:
                continue
            pid = record["id"]
            img_path = os.path.join(self.img_dir, record[self.path_field])
            if img_path in seen:
                first, first_pid = seen[img_path]
                if first_pid != pid:
                    raise ValueError(
                        f"image {record[self.path_field]!r} is listed in records {first} and {index} of "
                        f"{self.annotation_path!r} (split {self.split!r}) with ids {first_pid} and {pid}; "
                        "expected one id per image"
                    )
                merged += 1
            else:
                seen[img_path] = (index, pid)
                gallery.append((img_path, pid, 0))
            queries.extend((caption, pid) for caption in record["captions"])
        if merged:
            logger.info("%s: %d repeated image record(s) of split %r merged (one gallery entry per image, all their "
                        "captions kept as queries)", type(self).__name__, merged, self.split)
        return gallery, queries

    # -- summary --------------------------------------------------------------------------------------------------

    def show_test(self) -> None:
        """Log a table of the evaluation split: text queries, gallery images and identities of each."""
        rows = [
            [f"{self.split} text queries", len({pid for _, pid in self.text_queries}), len(self.text_queries)],
            [f"{self.split} gallery images", len({item[1] for item in self.gallery}), len(self.gallery)],
        ]
        table = tabulate(rows, headers=["subset", "# ids", "# items"], tablefmt="pipe", numalign="left")
        logger.info(f"=> Loaded {type(self).__name__} (text-to-image retrieval): \n{table}")


@DATASET_REGISTRY.register()
class CUHKPEDES(TextPersonSearchDataset):
    """CUHK-PEDES (Li et al., CVPR 2017); IRRA ``datasets/cuhkpedes.py``.

    Layout::

        <root>/CUHK-PEDES/reid_raw.json     # [{"split": "train"|"val"|"test", "captions": [str, ...],
                                            #   "file_path": "CUHK01/0363004.png", "processed_tokens": [...],
                                            #   "id": int}, ...]
        <root>/CUHK-PEDES/imgs/<file_path>

    Items and errors: see :class:`TextPersonSearchDataset`. Training pids are
    ``"cuhkpedes_<id>"`` with the file's ids (IRRA shifts them to start at 0;
    a label string needs no shift), camid ``"cuhkpedes_0"``. ``split`` may be
    "test" or "val".

    Args:
        root: fast-reid dataset root.
        split: evaluation split, "test" or "val" (``DATASETS.TEXT_SPLIT``).
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Raises:
        ValueError / FileNotFoundError: as :class:`TextPersonSearchDataset`.
    """

    dataset_dir = "CUHK-PEDES"
    dataset_name = "cuhkpedes"
    annotation_file = "reid_raw.json"
    path_field = "file_path"
    eval_splits = ("test", "val")
    layout = ("<root>/CUHK-PEDES/reid_raw.json (a JSON list of {'split': 'train'|'val'|'test', 'captions': [str], "
              "'file_path': 'CUHK01/0363004.png', 'id': int, ...}) and the images in "
              "<root>/CUHK-PEDES/imgs/<file_path>")


@DATASET_REGISTRY.register()
class ICFGPEDES(TextPersonSearchDataset):
    """ICFG-PEDES (Ding et al., SSAN, arXiv 2107.12666, 2021); IRRA ``datasets/icfgpedes.py``.

    Layout::

        <root>/ICFG-PEDES/ICFG-PEDES.json   # [{"split": "train"|"test", "captions": [str],
                                            #   "file_path": str, "processed_tokens": [...], "id": int}, ...]
        <root>/ICFG-PEDES/imgs/<file_path>

    Items and errors: see :class:`TextPersonSearchDataset`; training pids are
    ``"icfgpedes_<id>"``, camid ``"icfgpedes_0"``. The set has no validation
    split: ``split="val"`` is refused (a ValueError naming
    ``DATASETS.TEXT_SPLIT``).

    Args:
        root: fast-reid dataset root.
        split: evaluation split, "test" only (``DATASETS.TEXT_SPLIT``).
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Raises:
        ValueError / FileNotFoundError: as :class:`TextPersonSearchDataset`.
    """

    dataset_dir = "ICFG-PEDES"
    dataset_name = "icfgpedes"
    annotation_file = "ICFG-PEDES.json"
    path_field = "file_path"
    eval_splits = ("test",)
    layout = ("<root>/ICFG-PEDES/ICFG-PEDES.json (a JSON list of {'split': 'train'|'test', 'captions': [str], "
              "'file_path': str, 'id': int, ...}) and the images in <root>/ICFG-PEDES/imgs/<file_path>")


@DATASET_REGISTRY.register()
class RSTPReid(TextPersonSearchDataset):
    """RSTPReid (Zhu et al., DSSL, ACM MM 2021); IRRA ``datasets/rstpreid.py``.

    Layout::

        <root>/RSTPReid/data_captions.json  # [{"id": int, "img_path": str, "captions": [str, ...],
                                            #   "split": "train"|"val"|"test"}, ...]
        <root>/RSTPReid/imgs/<img_path>

    Items and errors: see :class:`TextPersonSearchDataset`; training pids are
    ``"rstpreid_<id>"``, camid ``"rstpreid_0"`` (the protocol uses no
    camera labels). ``split`` may be "test" or "val".

    Args:
        root: fast-reid dataset root.
        split: evaluation split, "test" or "val" (``DATASETS.TEXT_SPLIT``).
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Raises:
        ValueError / FileNotFoundError: as :class:`TextPersonSearchDataset`.
    """

    dataset_dir = "RSTPReid"
    dataset_name = "rstpreid"
    annotation_file = "data_captions.json"
    path_field = "img_path"
    eval_splits = ("test", "val")
    layout = ("<root>/RSTPReid/data_captions.json (a JSON list of {'id': int, 'img_path': str, 'captions': [str], "
              "'split': 'train'|'val'|'test'}) and the images in <root>/RSTPReid/imgs/<img_path>")
