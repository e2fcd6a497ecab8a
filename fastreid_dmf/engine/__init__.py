"""Training entry points of fastreid-dmf (fast-reid's DefaultTrainer, extended)."""

from .trainer import DMFTrainer, setup_cfg

__all__ = ["DMFTrainer", "setup_cfg"]
