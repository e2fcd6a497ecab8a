"""Bundled synthetic Re-ID data: a procedural pedestrian renderer and dataset-tree writers.

Nothing can be downloaded in some setups, so fastreid-dmf draws its own
data. ``import fastreid_dmf`` never loads this package; the command-line
wrappers are ``tools/make_demo_data.py`` and ``tools/make_lookalike_data.py``.

Modules, by job:

* renderer: :mod:`.render` composes one 64 x 128 crop from :mod:`.identities`
  (who: FineGPR attributes and hidden traits), :mod:`.people` (drawing a
  person), :mod:`.scenes` (backgrounds) and :mod:`.styles` (per-domain
  cameras, capture conditions and finishing pass) on the :mod:`.canvas`;
* trees: :mod:`.benchmark` writes the bundled benchmark (FineGPR-like source
  domain, SynthMarket and SynthMSMT targets in the Market-1501 and MSMT17
  layouts); :mod:`.lookalike_trees` writes tiny look-alikes in the exact
  layouts of the real datasets (Market-1501, DukeMTMC-reID, MSMT17,
  CUHK03-NP, RandPerson, FineGPR) for checking their loaders end to end.
  Both plan with :mod:`.tree_plans` and write with :mod:`.tree_writing`.
"""

from .benchmark import PRESETS, Preset, generate_benchmark
from .canvas import IMAGE_SIZE
from .identities import COLOR_RGB, HiddenTraits, Identity, sample_attributes, sample_identity
from .lookalike_trees import TREES, LookalikeSize, generate_real_layout_trees, tree_folder
from .people import BodyBoxes
from .render import render_distractor, render_person, render_person_with_boxes
from .styles import STYLES, Environment
from .tree_writing import README_MARKER

__all__ = ["generate_benchmark", "PRESETS", "Preset", "render_person", "render_person_with_boxes",
           "render_distractor", "sample_identity", "sample_attributes", "Identity", "HiddenTraits", "Environment",
           "BodyBoxes", "IMAGE_SIZE", "STYLES", "COLOR_RGB", "README_MARKER", "generate_real_layout_trees",
           "LookalikeSize", "TREES", "tree_folder"]
