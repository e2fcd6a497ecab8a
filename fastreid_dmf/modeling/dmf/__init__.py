"""DMF (Deep Multimodal Fusion): the shared image/text transformer (Eq. 3-5) and its meta-architecture (Eq. 1-2).

Importing registers BACKBONE ``build_dmf_backbone`` and META_ARCH ``DMF`` in fast-reid.
"""

from .backbone import DMFBackbone, build_dmf_backbone
from .meta_arch import DMF

__all__ = ["DMF", "DMFBackbone", "build_dmf_backbone"]
