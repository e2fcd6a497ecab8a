"""RandPerson: synthetic persons with random 3D characters, the subset used by QAConv and TransMatcher.

Source: Wang et al., "Surpassing Real-World Source Training Data: Random 3D
Characters for Generalizable Person Re-Identification", ACM MM 2020
(github VideoObjectSearch/RandPerson). The experiments use its released
subset (8,000 identities, 132,145 images, 11 scenes); QAConv
(github ShengcaiLiao/QAConv, ``reid/datasets/randperson.py``) and
TransMatcher read it as one flat folder of images and use it for training only.

Expected layout under fast-reid's dataset root (the downloaded archive
unpacked into a folder of the same name, as in QAConv/TransMatcher)::

    <root>/randperson_subset/randperson_subset/000000_s00_c00_f000228.jpg

or the images directly in ``<root>/randperson_subset/``. File names are
``<pid6>_s<scene2>_c<camera2>_f<frame6>.jpg``: person, scene, camera within
the scene, frame. The project README writes the example with the camera
first (``000000_c00_s00_f000264.jpg``) while QAConv's parser and the files
put the scene first; both orders are read, since the fields are tagged.

Cameras are the (scene, camera) pairs, as in QAConv, which offsets the
camera number by the scene's first camera; here the pair is encoded as
``scene * 100 + camera`` so that the id does not depend on which files are
present. Training pids/camids are fast-reid strings ``"randperson_<pid>"`` /
``"randperson_<scene*100+camera>"``; ``query`` and ``gallery`` are empty.
"""

from __future__ import annotations

import os
import re

from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

__all__ = ["RandPerson", "parse_randperson_name"]

_NAME = re.compile(r"^(\d+)_(?:s(\d+)_c(\d+)|c(\d+)_s(\d+))_f(\d+)\.(jpe?g|png)$", re.IGNORECASE)
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
_LAYOUT = ("<root>/randperson_subset/randperson_subset/<pid6>_s<scene2>_c<camera2>_f<frame6>.jpg "
           "(or the images directly in <root>/randperson_subset/), e.g. 000000_s00_c00_f000228.jpg")


def parse_randperson_name(name: str) -> tuple[int, int, int, int]:
    """Fields of a RandPerson file name.

    Args:
        name: base name such as ``000000_s00_c00_f000228.jpg`` (scene first,
            as the files and QAConv) or ``000000_c00_s00_f000264.jpg``
            (camera first, as the project README writes it).

    Returns:
        ``(pid, scene, camera, frame)``.

    Raises:
        ValueError: the name does not follow either order.
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"RandPerson file name {name!r} does not follow <pid6>_s<scene2>_c<camera2>_f<frame6>.jpg "
                         "(e.g. 000000_s00_c00_f000228.jpg)")
    pid, s1, c1, c2, s2, frame = match.groups()[:6]
    scene, camera = (int(s1), int(c1)) if s1 is not None else (int(s2), int(c2))
    return int(pid), scene, camera, int(frame)


@DATASET_REGISTRY.register()
class RandPerson(ImageDataset):
    """RandPerson subset as a training-only fast-reid dataset (layout in the module docstring).

    Images are listed in sorted name order. Train items are
    ``(path, "randperson_<pid>", "randperson_<scene*100+camera>")``.

    Args:
        root: fast-reid dataset root.
        **kwargs: passed to fast-reid's ``ImageDataset``.

    Attributes:
        data_dir: the folder holding the images.
        num_scenes / num_cameras: distinct scenes / (scene, camera) pairs.

    Raises:
        FileNotFoundError: ``<root>/randperson_subset`` is missing.
        ValueError: an image whose name does not parse (the message names
            it), or no image in either candidate folder.
    """

    dataset_name = "randperson"
    dataset_dir = "randperson_subset"

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        self.root = root
        outer = os.path.join(root, self.dataset_dir)
        if not os.path.isdir(outer):
            raise FileNotFoundError(f"RandPerson folder {outer!r} not found (root={root!r}); expected {_LAYOUT}")
        nested = os.path.join(outer, self.dataset_dir)
        self.data_dir = nested if os.path.isdir(nested) else outer
        train = []
        pairs = set()
        with os.scandir(self.data_dir) as entries:  # file type from the directory listing: no stat per image
            files = sorted(entry.name for entry in entries if entry.is_file())
        for name in files:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in _IMAGE_EXTENSIONS:
                continue
            path = os.path.join(self.data_dir, name)
            try:
                pid, scene, camera, _ = parse_randperson_name(name)
            except ValueError as err:
                raise ValueError(f"{err} (in folder {self.data_dir!r})") from None
            pairs.add((scene, camera))
            train.append((path, f"{self.dataset_name}_{pid}", f"{self.dataset_name}_{scene * 100 + camera}"))
        if not train:
            raise ValueError(f"no RandPerson images in {self.data_dir!r}; expected {_LAYOUT}")
        self.num_scenes = len({scene for scene, _ in pairs})
        self.num_cameras = len(pairs)
        super().__init__(train, [], [], **kwargs)
