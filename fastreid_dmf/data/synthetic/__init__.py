"""Bundled synthetic Re-ID benchmark: a procedural pedestrian renderer and dataset writers.

Nothing can be downloaded in some setups, so fastreid-dmf draws its own
FineGPR-like source domain and two target domains in the Market-1501 and
MSMT17 layouts; see :mod:`.render` and :mod:`.layouts`.
"""

from .layouts import PRESETS, generate_benchmark
from .render import Environment, Identity, render_distractor, render_person, sample_identity

__all__ = ["generate_benchmark", "PRESETS", "render_person", "render_distractor", "sample_identity", "Identity",
           "Environment"]
