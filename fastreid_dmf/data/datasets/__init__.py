"""Datasets registered in fast-reid's DATASET_REGISTRY on import.

* ``FineGPR``: the synthetic pre-training source with attribute texts.
* ``VTestReID``: the small real pedestrian test set (Market-1501 layout).
"""

from .finegpr import FineGPR
from .vtest import VTestReID

__all__ = ["FineGPR", "VTestReID"]
