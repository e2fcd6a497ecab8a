"""The bundled synthetic target domains, read by fast-reid's own Market-1501 and MSMT17 parsers.

``SynthMarket`` and ``SynthMSMT`` are written by
:func:`fastreid_dmf.tooling.synthetic.generate_benchmark` (CLI:
``tools/make_demo_data.py``) in the exact layouts of Market-1501 and
MSMT17_V1; these classes only point fast-reid's parsers at them. They are
synthetic stand-ins, not the real datasets.
"""

from __future__ import annotations

import os
import warnings

from ... import compat
from ..test_descriptions import DESCRIPTIONS_FILE, read_test_descriptions, text_queries_from_descriptions

compat.apply_fastreid_compat()  # fastreid.data needs the torch-2 shims before it is imported

from fastreid.data.datasets import DATASET_REGISTRY  # noqa: E402
from fastreid.data.datasets.market1501 import Market1501  # noqa: E402
from fastreid.data.datasets.msmt17 import MSMT17  # noqa: E402

__all__ = ["SynthMarket", "SynthMSMT"]

_MARKET_LAYOUT = (
    "<root>/synth_market/{bounding_box_train,query,bounding_box_test}/{pid:04d}_c{cam}s1_{frame:06d}_{k:02d}.jpg "
    "(Market-1501 layout, cameras c1..c6, pid 0000 = distractor, -1 = junk)"
)
_MSMT_LAYOUT = (
    "<root>/synth_msmt/MSMT17_V1/{train,test}/<pid4>/<pid4>_<idx3>_<cam2>_<date><period>_<frame4>_<k>.jpg plus "
    "MSMT17_V1/list_{train,val,query,gallery}.txt with lines '<pid4>/<file name> <pid>' (MSMT17_V1 layout)"
)
_HOW_TO_MAKE = "Create it with: python tools/make_demo_data.py --root {root} (see --help)."


def _require(paths: list[str], what: str, layout: str, root: str) -> None:
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{what}: {', '.join(repr(p) for p in missing)} not found; expected layout "
                                f"{layout}. {_HOW_TO_MAKE.format(root=root)}")


class _DescribedTestSet:
    """Text queries of a bundled target domain: its ``descriptions.json`` (:mod:`..test_descriptions`)."""

    tree_folder: str
    query: list

    @property
    def text_queries(self) -> list[tuple[str, int]]:
        """``[(description, pid)]``, one per query identity (text-to-image retrieval, ``DATASETS.TEXT_TESTS``).

        Raises:
            FileNotFoundError: no ``descriptions.json`` (trees made before it existed: regenerate).
            ValueError: a query image without description.
        """
        path = os.path.join(self.tree_folder, DESCRIPTIONS_FILE)
        remedy = "Trees made by an older fastreid-dmf lack it; regenerate: " + _HOW_TO_MAKE.format(
            root=os.path.dirname(self.tree_folder)).replace("(see --help)", "--overwrite")
        return text_queries_from_descriptions(self.query, self.tree_folder, read_test_descriptions(path, remedy), path)


@DATASET_REGISTRY.register()
class SynthMarket(_DescribedTestSet, Market1501):
    """Synthetic target domain A in Market-1501 layout (``<root>/synth_market``).

    Parsed by fast-reid's ``Market1501.process_dir``: train pids/camids become
    ``"synthmarket_<pid>"`` / ``"synthmarket_<cam-1>"``, query and gallery keep
    integer pids (distractors have pid 0) and 0-based camids, junk images
    (pid -1) are skipped. Lists are sorted by path so their order does not
    depend on the file system. ``text_queries``: one description per query
    identity, from ``synth_market/descriptions.json`` (``DATASETS.TEXT_TESTS``).

    Args:
        root: fast-reid dataset root (``FASTREID_DATASETS``).
        **kwargs: passed to ``Market1501`` / ``ImageDataset``.

    Raises:
        FileNotFoundError: ``<root>/synth_market`` or one of its three
            sub-folders is missing; the message names the folder, the
            expected layout and ``tools/make_demo_data.py``.
    """

    dataset_dir = "synth_market"
    dataset_name = "synthmarket"

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = self.tree_folder = os.path.join(root, self.dataset_dir)
        _require([folder], "SynthMarket dataset folder", _MARKET_LAYOUT, root)
        _require([os.path.join(folder, d) for d in ("bounding_box_train", "query", "bounding_box_test")],
                 "SynthMarket sub-folder(s)", _MARKET_LAYOUT, root)
        with warnings.catch_warnings():
            # Market1501 warns when its data are not under "Market-1501-v15.09.15/"; that name belongs to the real set.
            warnings.filterwarnings("ignore", message="The current data structure is deprecated")
            super().__init__(root=root, **kwargs)

    def process_dir(self, dir_path: str, is_train: bool = True) -> list[tuple]:
        """fast-reid's Market-1501 parsing, sorted by image path.

        Returns:
            ``[(img_path, pid, camid), ...]`` without junk (pid -1) images.
        """
        return sorted(super().process_dir(dir_path, is_train=is_train), key=lambda item: item[0])


@DATASET_REGISTRY.register()
class SynthMSMT(_DescribedTestSet, MSMT17):
    """Synthetic target domain B in MSMT17_V1 layout (``<root>/synth_msmt``).

    fast-reid's ``MSMT17`` takes its ``root`` as the folder that holds
    ``MSMT17_V1/``; this class passes ``<root>/synth_msmt``. Parsed by
    ``MSMT17.process_dir`` from the list files: train pids/camids become
    ``"synthmsmt_<pid>"`` / ``"synthmsmt_<cam-1>"``; query and gallery pids
    are shifted by the number of training identities, as upstream.
    ``text_queries``: as ``SynthMarket``'s, from ``synth_msmt/descriptions.json``.

    Args:
        root: fast-reid dataset root (``FASTREID_DATASETS``).
        **kwargs: passed to ``MSMT17`` / ``ImageDataset``.

    Raises:
        FileNotFoundError: ``<root>/synth_msmt``, its ``MSMT17_V1`` folder,
            ``train/``, ``test/`` or a list file is missing; the message names
            the path, the expected layout and ``tools/make_demo_data.py``.
    """

    dataset_dir = "synth_msmt"
    dataset_name = "synthmsmt"

    def __init__(self, root: str = "datasets", **kwargs) -> None:
        folder = self.tree_folder = os.path.join(root, type(self).dataset_dir)
        _require([folder], "SynthMSMT dataset folder", _MSMT_LAYOUT, root)
        main = os.path.join(folder, "MSMT17_V1")
        _require([main], "SynthMSMT folder", _MSMT_LAYOUT, root)
        _require([os.path.join(main, n) for n in ("train", "test", "list_train.txt", "list_val.txt",
                                                  "list_query.txt", "list_gallery.txt")],
                 "SynthMSMT file(s)", _MSMT_LAYOUT, root)
        super().__init__(root=folder, **kwargs)
