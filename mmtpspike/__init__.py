"""mmtpspike: TP-Spikformer token pruning for Spike-Driven Transformer V3
in OpenMMLab detection (mmdet) and segmentation (mmseg).

Importing the package (or ``custom_imports=dict(imports=['mmtpspike'])`` in a
config) registers its models and hooks into the mmdet and mmseg registries
and makes mmengine load local checkpoints with the safe allow-list loader.
"""
from .utils import register_safe_local_loader
from .version import __version__

register_safe_local_loader()

from . import datasets, engine, models  # noqa: E402,F401

__all__ = ['__version__']
