"""mmtpspike: TP-Spikformer token pruning for Spike-Driven Transformer V3
in OpenMMLab detection (mmdet) and segmentation (mmseg).

Importing the package (or ``custom_imports=dict(imports=['mmtpspike'])`` in a
config) registers its models and hooks into the registries of mmdet and / or
mmseg, whichever is installed (the mini ADE20K dataset needs mmseg), and
makes mmengine load checkpoints of every scheme with the safe allow-list
loader.
"""
from .utils import register_safe_loaders
from .version import __version__

register_safe_loaders()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .models import attach_img_shapes  # noqa: E402

__all__ = ['__version__', 'attach_img_shapes']
