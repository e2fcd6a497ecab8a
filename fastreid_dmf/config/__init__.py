"""Config keys of fastreid-dmf (see :func:`add_dmf_config`)."""

from .defaults import add_dmf_config, check_dmf_config

__all__ = ["add_dmf_config", "check_dmf_config"]
