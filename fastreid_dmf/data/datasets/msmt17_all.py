"""MSMT17(all): every MSMT17 image and identity as a training set.

Source: MSMT17 is from Wei et al., "Person Transfer GAN to Bridge Domain Gap
for Person Re-Identification", CVPR 2018 (4,101 identities, 15 cameras: 1,041
training identities with 32,621 images, 3,060 test identities with 11,659
query and 82,161 gallery images). DMF (Xiang et al., arXiv 2211.00933,
Table 3, "MSMT17(all)") trains on all of it, as is usual for generalization
to other domains. Testing on MSMT17 uses fast-reid's own ``MSMT17``.

Layout (read through fast-reid's ``MSMT17`` rules: the same version folders,
list files and ``MSMT17.process_dir`` parsing)::

    <root>/MSMT17_V1/train/<pid4>/<pid4>_<idx3>_<cam2>_<date><period>_<frame4>_<k>.jpg
    <root>/MSMT17_V1/test/<pid4>/...
    <root>/MSMT17_V1/list_train.txt   # lines "<pid4>/<file name> <pid>", relative to train/
    <root>/MSMT17_V1/list_val.txt     # training identities' images left out of list_train.txt
    <root>/MSMT17_V1/list_query.txt   # relative to test/
    <root>/MSMT17_V1/list_gallery.txt

or ``<root>/MSMT17_V2/`` with ``mask_train_v2/`` and ``mask_test_v2/`` (faces
blurred); like fast-reid, ``MSMT17_V1`` wins when both exist. The camera is
the third ``_`` field of the file name (01..15).
"""

from __future__ import annotations

import logging
import os

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset
from fastreid.data.datasets.msmt17 import MSMT17, TEST_DIR_KEY, TRAIN_DIR_KEY, VERSION_DICT

__all__ = ["MSMT17All", "MSMT17_ALL_IDS"]

logger = logging.getLogger(__name__)

#: Identities of the real MSMT17 (1,041 train + 3,060 test).
MSMT17_ALL_IDS = 4101

_LAYOUT = (
    "<root>/MSMT17_V1/{train,test}/<pid4>/<pid4>_<idx3>_<cam2>_<date><period>_<frame4>_<k>.jpg with "
    "<root>/MSMT17_V1/list_{train,val,query,gallery}.txt holding lines '<pid4>/<file name> <pid>' "
    "(or MSMT17_V2/ with mask_train_v2/ and mask_test_v2/)"
)


def find_msmt17_version(root: str) -> str:
    """The MSMT17 version folder under ``root`` that fast-reid's ``MSMT17`` would read.

    Args:
        root: fast-reid dataset root.

    Returns:
        ``"MSMT17_V1"`` or ``"MSMT17_V2"`` (checked in that order, as in
        fast-reid's ``VERSION_DICT``).

    Raises:
        FileNotFoundError: neither folder exists; the message gives the layout.
    """
    for version in VERSION_DICT:
        if os.path.isdir(os.path.join(root, version)):
            return version
    tried = " nor ".join(repr(os.path.join(root, v)) for v in VERSION_DICT)
    raise FileNotFoundError(f"MSMT17 not found under root {root!r}: neither {tried} exists; expected {_LAYOUT}")


def check_list_file(list_path: str, image_dir: str) -> int:
    """Check one MSMT17 list file before fast-reid parses it.

    Every line must be ``<relative image path> <integer pid>`` (one space, as
    fast-reid's ``MSMT17.process_dir`` splits on it), the third ``_`` field of
    the path a camera number 1..15, and the image must exist under
    ``image_dir``.

    Args:
        list_path: the list file.
        image_dir: folder the paths are relative to (``train``/``test`` or
            ``mask_train_v2``/``mask_test_v2``).

    Returns:
        The number of images listed.

    Raises:
        ValueError: a malformed line (the message names file, line number and text).
        FileNotFoundError: listed images are missing (count and examples).
    """
    listed: dict[str, set[str]] = {}
    count = 0
    with open(list_path, encoding="utf-8-sig") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, 1):
        fields = line.rstrip("\r\n").split(" ")
        ok = len(fields) == 2 and fields[1].strip().isdigit()
        parts = fields[0].split("_") if ok else []
        if ok and not (len(parts) >= 3 and parts[2].isdigit() and 1 <= int(parts[2]) <= 15):
            ok = False
        if not ok:
            raise ValueError(f"line {number} of MSMT17 list file {list_path!r} is {line.rstrip()!r}; expected "
                             "'<pid4>/<pid4>_<idx3>_<cam 01..15>_<date><period>_<frame4>_<k>.jpg <pid>'")
        folder, _, name = fields[0].rpartition("/")
        listed.setdefault(folder, set()).add(name)
        count += 1
    missing = []
    for folder, names in sorted(listed.items()):
        path = os.path.join(image_dir, folder)
        present = set(os.listdir(path)) if os.path.isdir(path) else set()
        missing.extend(f"{folder}/{n}" if folder else n for n in sorted(names - present))
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) listed in {list_path!r} are missing under {image_dir!r}, "
                                f"e.g. {missing[:3]}")
    return count


@DATASET_REGISTRY.register()
class MSMT17All(ImageDataset):
    """MSMT17 train + val + query + gallery, all 4,101 identities, as one training set.

    The list files are parsed by fast-reid's ``MSMT17.process_dir``. Training
    identities keep their pid: ``"msmt17all_<pid>"``. Test identities are
    numbered from 0 again in ``list_query.txt``/``list_gallery.txt``, so they
    would collide with training pids; they get ``"msmt17all_<pid + offset>"``
    with ``offset`` = largest training pid + 1 (1,041 on the real data, the
    same shift fast-reid's ``MSMT17`` applies to its test pids). Camera ids
    are ``"msmt17all_<cam-1>"`` for every image (the 15 cameras are shared).

    ``query`` and ``gallery`` are empty: every test identity is a training
    identity here, so evaluating on them would measure nothing. Test on
    MSMT17 with fast-reid's ``MSMT17``. A warning is logged when the
    identity count is not 4,101 (expected only for small trees).

    Args:
        root: fast-reid dataset root holding ``MSMT17_V1/`` or ``MSMT17_V2/``.
        include_val: also train on ``list_val.txt`` (the training
            identities' images that ``list_train.txt`` leaves out; part of
            "all"). ``False`` reads only the other three lists.
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Attributes:
        main_dir: ``<root>/MSMT17_V1`` or ``<root>/MSMT17_V2``.
        test_pid_offset: the shift added to test pids.
        num_train_ids / num_test_ids: identities from the train / test lists.

    Raises:
        FileNotFoundError: no version folder, a missing image folder or list
            file, or listed images that do not exist.
        ValueError: a malformed list file line (see :func:`check_list_file`);
            no training image.
    """

    dataset_name = "msmt17all"

    def __init__(self, root: str = "datasets", include_val: bool = True, **kwargs) -> None:
        self.root = root
        version = find_msmt17_version(root)
        self.main_dir = os.path.join(root, version)
        self.train_dir = os.path.join(self.main_dir, VERSION_DICT[version][TRAIN_DIR_KEY])
        self.test_dir = os.path.join(self.main_dir, VERSION_DICT[version][TEST_DIR_KEY])
        lists = [("train", self.train_dir), ("query", self.test_dir), ("gallery", self.test_dir)]
        if include_val:
            lists.insert(1, ("val", self.train_dir))
        missing = [p for p in (self.train_dir, self.test_dir) if not os.path.isdir(p)]
        missing += [self._list_path(s) for s, _ in lists if not os.path.isfile(self._list_path(s))]
        if missing:
            raise FileNotFoundError(f"MSMT17 file(s) {', '.join(repr(p) for p in missing)} not found; expected "
                                    f"{_LAYOUT}")
        for split, image_dir in lists:
            check_list_file(self._list_path(split), image_dir)

        parse = MSMT17.process_dir  # fast-reid's list-file parser; it only reads self.dataset_name
        train = []
        for split, image_dir in lists[:-2]:
            train += parse(self, image_dir, self._list_path(split), is_train=True)
        test = []
        for split in ("query", "gallery"):
            test += parse(self, self.test_dir, self._list_path(split), is_train=False)
        if not train:
            raise ValueError(f"no training image listed in {self._list_path('train')!r}; expected {_LAYOUT}")

        prefix = f"{self.dataset_name}_"
        train_pids = {int(pid[len(prefix):]) for _, pid, _ in train}
        self.test_pid_offset = max(train_pids) + 1
        self.num_train_ids = len(train_pids)
        self.num_test_ids = len({pid for _, pid, _ in test})
        train += [(path, f"{prefix}{pid + self.test_pid_offset}", f"{prefix}{camid}") for path, pid, camid in test]
        total = self.num_train_ids + self.num_test_ids
        if total != MSMT17_ALL_IDS:
            logger.warning("MSMT17All (%s): %d identities (%d train + %d test), the real MSMT17 has %d "
                           "(expected only for small or synthetic trees)", self.main_dir, total,
                           self.num_train_ids, self.num_test_ids, MSMT17_ALL_IDS)
        super().__init__(train, [], [], **kwargs)

    def _list_path(self, split: str) -> str:
        return os.path.join(self.main_dir, f"list_{split}.txt")
