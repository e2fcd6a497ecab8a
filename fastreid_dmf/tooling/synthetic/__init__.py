"""Bundled synthetic Re-ID benchmark: a procedural pedestrian renderer and dataset writers.

Nothing can be downloaded in some setups, so fastreid-dmf draws its own
FineGPR-like source domain and two target domains in the Market-1501 and
MSMT17 layouts; see :mod:`.render` and :mod:`.layouts`. :mod:`.real_layouts`
writes tiny look-alike trees in the exact layouts of the real datasets
(Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP, RandPerson, FineGPR) for
checking their loaders end to end.
"""

from .layouts import PRESETS, generate_benchmark
from .real_layouts import TREES, LookalikeSize, generate_real_layout_trees
from .render import Environment, Identity, render_distractor, render_person, sample_identity

__all__ = ["generate_benchmark", "PRESETS", "render_person", "render_distractor", "sample_identity", "Identity",
           "Environment", "generate_real_layout_trees", "LookalikeSize", "TREES"]
