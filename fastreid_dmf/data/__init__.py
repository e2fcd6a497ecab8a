"""Data side of fastreid-dmf: datasets (registered on import), texts, sampler, loaders."""

from . import datasets  # noqa: F401  (registers FineGPR, SynthMarket, SynthMSMT, VTestReID)
from .multimodal_dataset import MultimodalReIDDataset
from .samplers import MultimodalIdentitySampler

__all__ = ["MultimodalReIDDataset", "MultimodalIdentitySampler"]
