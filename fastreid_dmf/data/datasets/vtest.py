"""VTestReID: the small real pedestrian test set shipped with the project.

Ten identities cut from OpenCV's sample video ``vtest.avi`` and stored in
Market-1501 layout (the copy bundled in ``fastreid_dmf/data/bundled/vtest_reid``,
1.3 MB; its README.txt says how it was made): 4 train
identities (113 images), 12 queries and 180 gallery images of 6 other
identities, plus 6 junk gallery images (pid -1) that fast-reid's Market-1501
parser skips. It is parsed by fast-reid's own ``Market1501.process_dir``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.market1501 import Market1501

__all__ = ["VTEST_ROOT_ENV", "VTestReID", "default_vtest_root", "resolve_vtest_root"]

#: Environment variable that points at the vtest_reid folder.
VTEST_ROOT_ENV = "FASTREID_DMF_VTEST_ROOT"

_SUBDIRS = ("bounding_box_train", "query", "bounding_box_test")
_LAYOUT = (
    "a Market-1501 layout folder with bounding_box_train/, query/ and bounding_box_test/ holding "
    "{pid:04d}_c{cam}s1_{frame:06d}_{k:02d}.jpg images (pid -1 = junk)"
)


def default_vtest_root() -> Path:
    """The copy of the set shipped inside the package (``fastreid_dmf/data/bundled/vtest_reid``).

    Returns:
        The folder's absolute path. It exists in a checkout and in an
        installed package (``setup.py`` lists it as package data).
    """
    return Path(__file__).resolve().parents[1] / "bundled" / "vtest_reid"


def resolve_vtest_root(root: str = "datasets", vtest_root: str = "") -> str:
    """Find the vtest_reid folder.

    Order: ``vtest_root`` if non-empty; else the environment variable
    ``FASTREID_DMF_VTEST_ROOT`` if set and non-empty; else
    :func:`default_vtest_root` if it exists; else ``<root>/vtest_reid``.
    An explicit ``vtest_root`` or environment variable is used as given (no
    fall-back when it is wrong).

    Args:
        root: fast-reid dataset root (``FASTREID_DATASETS``).
        vtest_root: explicit folder, or "".

    Returns:
        The folder path.

    Raises:
        FileNotFoundError: the chosen folder (or, without explicit choice,
            both default candidates) does not exist or lacks one of
            bounding_box_train/, query/, bounding_box_test/; the message names
            the path(s) tried and the expected layout.
    """
    if vtest_root:
        candidates = [(str(vtest_root), "vtest_root argument")]
    elif os.environ.get(VTEST_ROOT_ENV):
        candidates = [(os.environ[VTEST_ROOT_ENV], f"environment variable {VTEST_ROOT_ENV}")]
    else:
        candidates = [
            (str(default_vtest_root()), "copy bundled with fastreid_dmf"),
            (os.path.join(root, "vtest_reid"), "<root>/vtest_reid"),
        ]
    for path, _ in candidates:
        if os.path.isdir(path):
            missing = [d for d in _SUBDIRS if not os.path.isdir(os.path.join(path, d))]
            if missing:
                raise FileNotFoundError(
                    f"VTestReID folder {path!r} lacks sub-folder(s) {missing}; expected {_LAYOUT}"
                )
            return path
    tried = "; ".join(f"{path!r} ({why})" for path, why in candidates)
    raise FileNotFoundError(
        f"VTestReID folder not found; tried {tried}. Expected {_LAYOUT}. Pass vtest_root=... or set "
        f"{VTEST_ROOT_ENV}."
    )


@DATASET_REGISTRY.register()
class VTestReID(Market1501):
    """Real pedestrian test set from OpenCV's ``vtest.avi`` in Market-1501 layout.

    Parsed by fast-reid's ``Market1501.process_dir`` (train pids/camids become
    ``"vtestreid_<pid>"`` / ``"vtestreid_<cam-1>"``, query/gallery keep integer
    pid and 0-based camid, pid -1 junk images are skipped); the lists are then
    sorted by path so their order does not depend on the file system.

    Note: ``Market1501.process_dir`` searches ``([-\\d]+)_c(\\d)`` in the
    *whole* path, so the folder path itself must not contain such a pattern
    (e.g. ``/data/run1_c2/``).

    Args:
        root: fast-reid dataset root, used only for the last fall-back
            ``<root>/vtest_reid``.
        vtest_root: the folder; "" means :func:`resolve_vtest_root`'s order
            (``FASTREID_DMF_VTEST_ROOT``, then the copy bundled with the
            package, then ``<root>/vtest_reid``).
        **kwargs: passed to ``Market1501`` / ``ImageDataset``.

    Raises:
        FileNotFoundError: folder missing (see :func:`resolve_vtest_root`).
    """

    dataset_name = "vtestreid"
    dataset_dir = ""

    @classmethod
    def kwargs_from_config(cls, cfg) -> dict:
        """``{"vtest_root": DATASETS.VTEST_REID.ROOT}`` (see :func:`~.from_config.dataset_kwargs`)."""
        return {"vtest_root": cfg.DATASETS.VTEST_REID.ROOT}

    def __init__(self, root: str = "datasets", vtest_root: str = "", **kwargs) -> None:
        folder = resolve_vtest_root(root, vtest_root)
        self.vtest_root = folder
        with warnings.catch_warnings():
            # Market1501 warns when its data are not under "Market-1501-v15.09.15/"; irrelevant here.
            warnings.filterwarnings("ignore", message="The current data structure is deprecated")
            super().__init__(root=folder, **kwargs)

    def process_dir(self, dir_path: str, is_train: bool = True) -> list[tuple]:
        """fast-reid's Market-1501 parsing, sorted by image path.

        Args:
            dir_path: one of the three sub-folders.
            is_train: training-set convention (string pid/camid).

        Returns:
            ``[(img_path, pid, camid), ...]`` without junk (pid -1) images.
        """
        return sorted(super().process_dir(dir_path, is_train=is_train), key=lambda item: item[0])
