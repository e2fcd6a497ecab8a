"""Datasets registered in fast-reid's DATASET_REGISTRY on import.

* ``FineGPR``: the synthetic pre-training source with attribute texts.
* ``SynthMarket`` / ``SynthMSMT``: bundled synthetic target domains in the
  Market-1501 / MSMT17 layouts, read by fast-reid's own parsers.
* ``VTestReID``: the small real pedestrian test set (Market-1501 layout).
"""

from .finegpr import FineGPR
from .synthetic_targets import SynthMarket, SynthMSMT
from .vtest import VTestReID

__all__ = ["FineGPR", "SynthMarket", "SynthMSMT", "VTestReID"]
