"""Config keys of fastreid-dmf (see :func:`add_dmf_config`)."""

from .defaults import add_dmf_config, check_dmf_config, derive_feat_dim, load_config

__all__ = ["add_dmf_config", "check_dmf_config", "derive_feat_dim", "load_config"]
