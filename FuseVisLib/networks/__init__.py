"""The five fusion methods of the FuseVis paper as plain PyTorch modules.

Attribute names follow the authors' notebooks (see
``shared/reference/original-checkpoints.md``) so that their state dicts map
onto ours one to one.
"""
from .deep_fuse import DeepFuse
from .deep_pedestrian import DeepPedestrian
from .fun_fuse_an import FunFuseAn
from .mask_net import MaskNet
from .weighted_averaging import WeightedAveraging

__all__ = ["DeepFuse", "DeepPedestrian", "FunFuseAn", "MaskNet", "WeightedAveraging"]
