"""Datasets registered in fast-reid's DATASET_REGISTRY on import.

* ``FineGPR``: the synthetic pre-training source with attribute texts.
* ``SynthMarket`` / ``SynthMSMT``: bundled synthetic target domains in the
  Market-1501 / MSMT17 layouts, read by fast-reid's own parsers.
* ``VTestReID``: the small real pedestrian test set (Market-1501 layout).
* ``CUHK03NP`` / ``CUHK03NPLabeled``: CUHK03 new protocol (767 / 700
  identities), detected / labeled boxes, from the ``cuhk03-np/`` release tree
  or from ``cuhk03/images_*`` plus the protocol's ``.mat`` split file.
* ``MSMT17All``: MSMT17 train + val + query + gallery (4,101 identities) as
  one training set (DMF Table 3 "MSMT17(all)").
* ``RandPerson``: the synthetic RandPerson subset (``randperson_subset/``),
  training only.
* ``HeldOutValidation``: query/gallery of the identities held out of the
  training sets (``DATASETS.HOLDOUT``), for choosing recipes without a test set.
* ``CUHKPEDES`` / ``ICFGPEDES`` / ``RSTPReid``: the text-based person search
  sets (CUHK-PEDES, ICFG-PEDES, RSTPReid) in IRRA's layouts: training images
  with their first caption, and for the evaluation split (``DATASETS.TEXT_SPLIT``)
  a gallery of images plus ``text_queries``, one per caption.

Market-1501, DukeMTMC-reID and MSMT17 themselves are fast-reid's own
``Market1501``, ``DukeMTMC`` and ``MSMT17``.
"""

from .cuhk03np import CUHK03NP, CUHK03NPLabeled
from .finegpr import FineGPR
from .holdout import HeldOutValidation
from .msmt17_all import MSMT17All
from .randperson import RandPerson
from .synthetic_targets import SynthMarket, SynthMSMT
from .text_person_search import CUHKPEDES, ICFGPEDES, RSTPReid
from .vtest import VTestReID

__all__ = ["FineGPR", "SynthMarket", "SynthMSMT", "VTestReID", "CUHK03NP", "CUHK03NPLabeled", "MSMT17All",
           "RandPerson", "HeldOutValidation", "CUHKPEDES", "ICFGPEDES", "RSTPReid"]
