"""FineGPR as a fast-reid training dataset with one text description per image.

FineGPR (Xiang et al., "Less is More: Learning from Synthetic Data with
Fine-grained Attributes for Person Re-Identification", github
JeremyXSC/FineGPR) is the pre-training source of DMF (Xiang et al., arXiv
2211.00933, Sec. 4.1: 11 random images per identity, 12,650 in all). It has
no query/gallery split here: it is only used for (pre-)training.

Expected layout under fast-reid's dataset root (``FASTREID_DATASETS``)::

    <root>/FineGPR/
        attributes.csv                 # per-identity attributes (format: finegpr_format)
        0001/0001_c01_w01_l01_p01.jpg  # <pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg
        0001/...
        0002/...

``tools/make_demo_data.py`` writes a small demo tree in this layout.

Scanning rules (files are listed in sorted order, so results do not depend on
the file system's listing order):

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
"""

from __future__ import annotations

import logging
import os
import random
import re

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from ..descriptions import build_description, check_description_mode
from ..finegpr_format import FineGPRCodes, parse_finegpr_filename, read_attribute_file

__all__ = ["IMAGE_EXTENSIONS", "FineGPR"]

logger = logging.getLogger(__name__)

#: File extensions treated as images while scanning (compared in lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

_PID_DIR_RE = re.compile(r"^\d{4}$")
_LAYOUT = "<root>/FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg plus the attribute file (e.g. <root>/FineGPR/attributes.csv)"


@DATASET_REGISTRY.register()
class FineGPR(ImageDataset):
    """FineGPR training set with a text description per image (DMF pre-training source).

    Train items are 4-tuples ``(img_path, pid, camid, description)``:
    ``pid = "finegpr_<int pid>"`` and ``camid = "finegpr_<viewpoint code>"``
    (e.g. ``"finegpr_1"`` for ``c01``) are strings, fast-reid's convention for
    training sets (see ``Market1501.process_dir`` with ``is_train``);
    ``description`` comes from :func:`fastreid_dmf.data.descriptions.build_description`.
    ``query`` and ``gallery`` are empty. All checks run in the constructor.

    Args:
        root: fast-reid dataset root; the data are in ``<root>/FineGPR/``.
        attribute_file: attribute CSV (format in ``finegpr_format``); a relative
            path is relative to ``<root>/FineGPR/``, an absolute one is used as is.
        text_mode: ``"sentence"`` or ``"keywords"`` (see ``descriptions``).
        text_environment: put weather/illumination/viewpoint (and scene in
            keyword mode) into the descriptions.
        images_per_identity: if > 0, keep this many images per identity,
            drawn at random from the identity's sorted file list with a
            generator seeded by ``(subset_seed, pid)`` (reproducible, and
            independent of listing order and of the other identities); an
            identity with fewer images keeps all of them (a warning is
            logged). 0 keeps everything. DMF uses 11.
        subset_seed: seed of that draw.
        **kwargs: passed to fast-reid's ``ImageDataset`` (``mode``,
            ``combineall``, ``verbose``, ...).

    Attributes:
        dataset_dir: ``<root>/FineGPR``.
        attribute_path: resolved attribute file path.
        attributes: ``{int pid: {attribute: value}}`` for the identities in
            ``train`` only (see also :meth:`identity_attributes`).

    Raises:
        FileNotFoundError: ``<root>/FineGPR`` or the attribute file is missing.
        ValueError: unknown ``text_mode``; negative ``images_per_identity``;
            a bad image file name, a file whose pid differs from its folder,
            a sub-folder inside an identity folder, an identity without a row
            in the attribute file, a bad attribute file (from
            ``read_attribute_file``); no images found. Messages name the
            offending path or value and what was expected.
    """

    dataset_name = "finegpr"
    dataset_dir = "FineGPR"

    def __init__(
        self,
        root: str = "datasets",
        attribute_file: str = "attributes.csv",
        text_mode: str = "sentence",
        text_environment: bool = True,
        images_per_identity: int = 0,
        subset_seed: int = 0,
        **kwargs,
    ) -> None:
        self.root = root
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        self.text_mode = check_description_mode(text_mode)
        self.text_environment = bool(text_environment)
        if not isinstance(images_per_identity, int) or images_per_identity < 0:
            raise ValueError(f"images_per_identity must be an integer >= 0 (0 = all images), got {images_per_identity!r}")
        self.images_per_identity = int(images_per_identity)
        self.subset_seed = int(subset_seed)

        if not os.path.isdir(self.dataset_dir):
            raise FileNotFoundError(
                f"FineGPR dataset folder {self.dataset_dir!r} not found (root={root!r}); expected layout "
                f"{_LAYOUT}. Run tools/make_demo_data.py to create a small demo dataset in this layout."
            )
        self.attribute_path = os.path.join(self.dataset_dir, attribute_file)
        if not os.path.isfile(self.attribute_path):
            raise FileNotFoundError(
                f"FineGPR attribute file {self.attribute_path!r} not found (attribute_file={attribute_file!r}, "
                f"relative paths are relative to {self.dataset_dir!r}); expected layout {_LAYOUT}"
            )
        all_attributes = read_attribute_file(self.attribute_path)

        images = self._scan_images()
        if self.images_per_identity > 0:
            images = {pid: self._select_subset(pid, files) for pid, files in images.items()}

        train = []
        for pid in sorted(images):
            if pid not in all_attributes:
                raise ValueError(
                    f"identity {pid} (folder {os.path.join(self.dataset_dir, f'{pid:04d}')!r}) has no row in "
                    f"the attribute file {self.attribute_path!r}; expected a row with pid {pid}"
                )
            attrs = all_attributes[pid]
            for img_path, codes in images[pid]:
                text = build_description(attrs, codes, self.text_mode, self.text_environment)
                train.append(
                    (img_path, f"{self.dataset_name}_{pid}", f"{self.dataset_name}_{codes.camera}", text)
                )
        self.attributes: dict[int, dict[str, str]] = {pid: dict(all_attributes[pid]) for pid in sorted(images)}
        super().__init__(train, [], [], **kwargs)

    def _scan_images(self) -> dict[int, list[tuple[str, FineGPRCodes]]]:
        """List every image, sorted; ``{pid: [(path, codes), ...]}`` (identities with images only)."""
        images: dict[int, list[tuple[str, FineGPRCodes]]] = {}
        stray_images = []
        ignored_dirs = []
        for name in sorted(os.listdir(self.dataset_dir)):
            path = os.path.join(self.dataset_dir, name)
            if name.startswith("."):
                continue
            if not os.path.isdir(path):
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    stray_images.append(name)
                continue
            if not _PID_DIR_RE.match(name):
                ignored_dirs.append(name)
                continue
            found = self._scan_identity_dir(path, int(name))
            if found:
                images[int(name)] = found
        if not images:
            hints = []
            if stray_images:
                hints.append(f"{len(stray_images)} image file(s) lie directly in the folder (e.g. {stray_images[0]!r}); "
                             "they must be inside <pid4>/ identity folders")
            if ignored_dirs:
                hints.append(f"folders not named by a 4-digit pid were ignored: {ignored_dirs[:5]}")
            raise ValueError(
                f"no FineGPR images found in {self.dataset_dir!r}; expected layout {_LAYOUT}"
                + ("; " + "; ".join(hints) if hints else "")
                + ". Run tools/make_demo_data.py to create a small demo dataset in this layout."
            )
        return images

    @staticmethod
    def _scan_identity_dir(folder: str, folder_pid: int) -> list[tuple[str, FineGPRCodes]]:
        """Parse the images of one identity folder (sorted by file name)."""
        found = []
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.startswith("."):
                continue
            if os.path.isdir(path):
                raise ValueError(
                    f"unexpected sub-folder {path!r} in FineGPR identity folder {folder!r}; "
                    "an identity folder holds only <pid4>_cXX_wXX_lXX_pXX.jpg images"
                )
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                codes = parse_finegpr_filename(name)
            except ValueError as err:
                raise ValueError(f"{err} (in folder {folder!r})") from None
            if codes.pid != folder_pid:
                raise ValueError(
                    f"FineGPR image {path!r} has pid {codes.pid:04d} but lies in the folder of identity "
                    f"{folder_pid:04d}; expected <pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg with the same pid"
                )
            found.append((path, codes))
        return found

    def _select_subset(
        self, pid: int, files: list[tuple[str, FineGPRCodes]]
    ) -> list[tuple[str, FineGPRCodes]]:
        """Reproducible draw of ``images_per_identity`` images of one identity (kept in file order)."""
        wanted = self.images_per_identity
        if len(files) <= wanted:
            if len(files) < wanted:
                logger.warning(
                    "FineGPR identity %04d has %d images, fewer than images_per_identity=%d; keeping all",
                    pid, len(files), wanted,
                )
            return list(files)
        ordered = sorted(files, key=lambda item: os.path.basename(item[0]))
        rng = random.Random(f"finegpr-subset:{self.subset_seed}:{pid}")
        chosen = sorted(rng.sample(range(len(ordered)), wanted))
        return [ordered[i] for i in chosen]

    def identity_attributes(self) -> dict[int, dict[str, str]]:
        """Attributes of the identities used.

        Returns:
            A copy of ``{int pid: {attribute name: value word}}`` for every
            identity that has images in ``train`` (rows of the attribute file
            for other identities are left out).
        """
        return {pid: dict(attrs) for pid, attrs in self.attributes.items()}
