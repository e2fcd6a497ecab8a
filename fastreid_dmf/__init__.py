"""fastreid-dmf: DMF multimodal pre-training for generalizable person Re-ID, as a fast-reid plugin.

Importing this package

1. patches fastreid 1.4.0 for torch 2 / Python 3.11 / numpy 2 / CPU-only
   machines (:mod:`fastreid_dmf.compat`), makes its ``Checkpointer`` read with
   ``weights_only=True`` and write atomically (:mod:`fastreid_dmf.engine.checkpoint`), and
2. registers in fast-reid's registries: META_ARCH ``DMF``, BACKBONE
   ``build_dmf_backbone``, META_ARCH ``MMET`` / BACKBONE ``build_mmet_backbone``, DATASETs ``FineGPR``,
   ``CUHK03NP``, ``CUHK03NPLabeled``, ``MSMT17All``, ``RandPerson``, ``SynthMarket``, ``SynthMSMT``,
   ``VTestReID``, ``HeldOutValidation`` and the text-based person search sets ``CUHKPEDES``,
   ``ICFGPEDES``, ``RSTPReid`` (``DATASETS.TEXT_TESTS``).

Config keys: :func:`fastreid_dmf.config.add_dmf_config`. The mixed-modality
sampler (``DATALOADER.SAMPLER_TRAIN: MultimodalIdentitySampler``) is built by
:class:`fastreid_dmf.engine.DMFTrainer`.
"""

from .compat import apply_fastreid_compat

apply_fastreid_compat()

from . import data, modeling  # noqa: E402  (registration needs the patches above)
from .config import add_dmf_config  # noqa: E402
from .engine.checkpoint import install_checkpoint_safety  # noqa: E402

install_checkpoint_safety()

__all__ = ["add_dmf_config", "data", "modeling", "apply_fastreid_compat"]
__version__ = "0.1.0"
